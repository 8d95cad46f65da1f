"""Switching takes on a long shot: SetActiveTake (which puts the take's specs back on every chunk) plus the
chunk states the views recompute, and the takes panel's details text (prompts and differences).

    python benchmarks/take_switch.py [--chunks 120] [--takes 10] [--out results/take_switch.json]

A synthetic document (no files, no engine): one shot of --chunks chunks and a chain of --takes takes,
each regenerated 10 chunks later than its parent, every chunk with a result and a spec.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.record import publish  # noqa: E402
from magi_studio.document.commands import AddChunk, new_chunk  # noqa: E402
from magi_studio.document.model import (ChunkResult, ProjectSettings, Take, TakeSpec, new_id,  # noqa: E402
                                        new_project, resolve_take, storyboard_states)
from magi_studio.document.take_commands import SetActiveTake  # noqa: E402
from magi_studio.takes.specs_text import take_differences, take_prompts  # noqa: E402


def build(chunks: int, takes: int):
    project = new_project(ProjectSettings(model="tiny", width=64, height=64))
    shot = project.shots[0]
    for index in range(1, chunks):
        AddChunk(shot.id, new_chunk(project, shot.id, index, f"chunk {index}")).apply(project)
    for k in range(takes):
        start = min(10 * k, chunks - 1)
        take = Take(new_id(), f"Take {k + 1}", shot.takes[-1].id if shot.takes else None,
                    shot.chunks[start].id if k else None)
        context = [r for r in resolve_take(shot, take.parent_id)[:start] if r]  # what the run was conditioned on
        for chunk in shot.chunks[start:]:
            result = ChunkResult(new_id(), chunk.id, f"v{k} {chunk.prompt}", k, "tiny", {}, 64, 64, tuple(context[-4:]))
            project.results[result.id] = result
            take.results[chunk.id], take.specs[chunk.id] = result.id, TakeSpec(f"v{k} {chunk.prompt}", k)
            context.append(result.id)
        shot.takes.append(take)
    SetActiveTake(shot.id, shot.takes[-1].id).apply(project)  # its specs on the cards: every chunk done
    assert all(s.value == "done" for s in storyboard_states(project)[shot.id])  # a sound document to switch in
    return project, shot


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=120)
    parser.add_argument("--takes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    project, shot = build(args.chunks, args.takes)
    switches, details = [], []
    for i in range(args.repeats):
        take = shot.takes[i % len(shot.takes)]
        start = time.perf_counter()
        SetActiveTake(shot.id, take.id).apply(project)
        storyboard_states(project)
        switches.append(time.perf_counter() - start)
        start = time.perf_counter()
        take_differences(project, shot, take), take_prompts(shot, take)
        details.append(time.perf_counter() - start)
    ms = lambda seconds: round(seconds * 1e3, 2)  # noqa: E731
    return publish(__file__, argv, {
        "chunks": args.chunks, "takes": args.takes, "repeats": args.repeats,
        "switch_and_states_ms": {"median": ms(statistics.median(switches)), "max": ms(max(switches))},
        "details_text_ms": {"median": ms(statistics.median(details)), "max": ms(max(details))},
    }, args.out)


if __name__ == "__main__":
    main()
