"""Hard stops: SIGKILL a process while it saves a project, and while `magi-studio render` generates one.

Two experiments on real projects made with studio-mini (the document's own commands, the real store):

* saves: a child process opens the project, changes a prompt and saves, over and over; it is killed at a
  random moment. After each kill the project must open, its prompt must be one the child wrote (old or
  new, never torn). Kills leave temporary files; the next open or save removes ours once they are older
  than the store's grace age (a younger one may belong to a save still running), so the leftovers are
  aged past it, as a later start would find them, before the project is opened and saved again.
* generation: `magi-studio render` (a child process) generates the storyboard's missing chunks and is
  killed at a random moment. After each kill the project must open; every chunk that was finished before
  stays finished with byte-identical latents (nothing lost, nothing rewritten); the next render resumes
  from the first missing chunk. After the last kill a render runs to the end and exports.

    python benchmarks/kill_runs.py --saves 100 --generations 20 --out benchmarks/results/kill_runs.json
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import publish  # noqa: E402
from magi_studio.document.commands import AddChunk, AddShot, SetPrompt, SetShotStart, new_chunk  # noqa: E402
from magi_studio.document.model import (ChunkState, ProjectSettings, active_path, new_project,  # noqa: E402
                                        new_shot, storyboard_states)
from magi_studio.document.observer import Document  # noqa: E402
from magi_studio.document.store import LEFTOVER_AGE_S, ProjectStore, open_project  # noqa: E402

PROMPTS = ("a red ball falls on a white background", "the red ball bounces", "the red ball rolls to the right",
           "the red ball stays still", "a blue cube slides left on the grass", "the blue cube rises")

SAVE_LOOP = """
import sys
from magi_studio.document.commands import SetPrompt
from magi_studio.document.observer import Document
from magi_studio.document.store import open_project
path = sys.argv[1]
i = 0
while True:
    project, store = open_project(path)
    shot = project.shots[0]
    Document(project).apply(SetPrompt(shot.id, shot.chunks[0].id, f"prompt {i}"))
    store.save(project)
    print(i, flush=True)
    i += 1
"""


def make_project(folder: Path, chunks_per_shot: int) -> Path:
    """Two shots of `chunks_per_shot` chunks on studio-mini, the second continuing the first; saved."""
    project = new_project(ProjectSettings(model="studio-mini"))
    document = Document(project)
    first = project.shots[0]
    document.apply(SetPrompt(first.id, first.chunks[0].id, PROMPTS[0]))
    for i in range(1, chunks_per_shot):
        document.apply(AddChunk(first.id, new_chunk(project, first.id, i, PROMPTS[i % len(PROMPTS)])))
    second = new_shot(project, prompt=PROMPTS[4], seed=11)
    document.apply(AddShot(second))
    document.apply(SetShotStart(second.id, "continue"))
    for i in range(1, chunks_per_shot):
        document.apply(AddChunk(second.id, new_chunk(project, second.id, i, PROMPTS[(i + 4) % len(PROMPTS)])))
    store = ProjectStore.create(folder)
    store.save(project)
    return store.path


def our_temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".part")) or ".tmp" in p.name]


def kill_saves(root: Path, rounds: int, rng: random.Random) -> dict:
    path = make_project(root / "saves", 2)
    torn = failed_to_open = kills_that_left_files = leftovers_after_save = 0
    written: set[str] = {PROMPTS[0]}
    for _ in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                                 text=True)
        child.stdout.readline()  # it has saved at least once: the next kill lands in the loop
        time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        lines = child.communicate()[0].split()
        written.update(f"prompt {n}" for n in range(0, int(lines[-1]) + 2 if lines else 2))
        left = our_temporary_files(path)
        kills_that_left_files += bool(left)
        aged = time.time() - 2 * LEFTOVER_AGE_S
        for leftover in left:
            os.utime(leftover, (aged, aged))
        try:
            project, store = open_project(path)
        except Exception:  # noqa: BLE001 — the figure counts any failure to open
            failed_to_open += 1
            continue
        if project.shots[0].chunks[0].prompt not in written:
            torn += 1
        store.save(project)
        leftovers_after_save += len(our_temporary_files(path))
    return {"kills": rounds, "failed_to_open": failed_to_open, "torn": torn,
            "kills_that_left_temporary_files": kills_that_left_files,
            "temporary_files_left_after_next_open_and_save": leftovers_after_save}


def _done_latents(path: Path) -> dict[str, str]:
    """{chunk id: sha256 of its latent file} for every finished chunk of the active paths."""
    project, store = open_project(path)
    states = storyboard_states(project)
    hashes = {}
    for shot in project.shots:
        for chunk, state, result_id in zip(shot.chunks, states[shot.id], active_path(shot)):
            if state is ChunkState.DONE:
                latent = store.read_latent(project.results[result_id])  # readable, not only present
                hashes[chunk.id] = hashlib.sha256(latent.numpy().tobytes()).hexdigest()
    return hashes


def _finished_results(path: Path) -> int:
    return sum(1 for p in (path / "results").iterdir() if not p.name.startswith("."))


def _render(path: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "magi_studio.render", str(path), "-o", str(out), "-q"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_generations(root: Path, rounds: int, chunks_per_shot: int, rng: random.Random) -> dict:
    path = make_project(root / "generation", chunks_per_shot)
    total = 2 * chunks_per_shot
    failed_to_open = lost = rewritten = finished_early = 0
    done_counts = []
    kept: dict[str, str] = {}
    for _ in range(rounds):
        before = len(kept)
        child = _render(path, root / "film.mp4")
        # Kill mid-chunk after 0-1 more chunks have been written, whatever the machine's speed.
        target, deadline = _finished_results(path) + rng.choice((0, 1, 1)), time.monotonic() + 600
        while _finished_results(path) < target and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.0))
        if child.poll() is not None:
            finished_early += 1
        child.send_signal(signal.SIGKILL)
        child.wait()
        try:
            now = _done_latents(path)
        except Exception:  # noqa: BLE001
            failed_to_open += 1
            continue
        lost += sum(1 for cid in kept if cid not in now)
        rewritten += sum(1 for cid, digest in kept.items() if cid in now and now[cid] != digest)
        kept.update(now)
        done_counts.append(len(now))
        if len(now) < before:
            lost += before - len(now)
        if len(now) == total:
            break
    child = _render(path, root / "film.mp4")
    _, err = child.communicate()
    final = _done_latents(path)
    aged = time.time() - 2 * LEFTOVER_AGE_S  # as a later start finds them (see kill_saves)
    for leftover in our_temporary_files(path):
        os.utime(leftover, (aged, aged))
    project, store = open_project(path)  # an open and a save clean what the kills left
    store.save(project)
    return {"kills": len(done_counts) + failed_to_open, "chunks": total, "failed_to_open": failed_to_open,
            "finished_chunks_lost": lost, "finished_chunks_rewritten": rewritten,
            "finished_chunks_after_each_kill": done_counts, "runs_that_ended_before_the_kill": finished_early,
            "final_render_exit": child.returncode, "final_render_error": err.strip()[-300:],
            "chunks_done_after_final_render": len(final),
            "temporary_files_left_after_next_open_and_save": len(our_temporary_files(path)),
            "unchanged_after_final_render": sum(1 for cid, d in kept.items() if final.get(cid) == d)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=100, help="kills during save")
    parser.add_argument("--generations", type=int, default=20, help="kills during render")
    parser.add_argument("--chunks-per-shot", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        saves = kill_saves(Path(tmp), args.saves, rng) if args.saves else None
        generation = kill_generations(Path(tmp), args.generations, args.chunks_per_shot, rng) if args.generations else None
        seconds = round(time.monotonic() - started, 1)
    return publish(__file__, argv, {"saves": saves, "generation": generation, "seconds": seconds,
                                    "cpu_cores": os.cpu_count()}, args.out)


if __name__ == "__main__":
    main()
