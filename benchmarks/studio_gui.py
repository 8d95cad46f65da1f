"""The studio's own generation path on this CPU, with studio-mini, measured from the GUI thread.

    python benchmarks/studio_gui.py                        # 20 chunks of studio-mini, 2 torch threads
    python benchmarks/studio_gui.py --chunks 4 --json out.json

What runs is the app itself (magi_studio.studio.Studio, shown offscreen at 1280x820) with the Generate
action triggered: the GenerationController planning the shot, EngineWorker generating in its thread,
each finished chunk written to disk off the GUI thread, committed through the undo stack and
autosaved, the player painting live previews and chunks through GenerationFeed, and every view of
the main window — cards, takes, history, status bar — redrawing as the chunks land. Settings and the
untitled project live in a temporary folder; the user's are never touched.

Prints JSON: time from Generate to the first chunk painted in the player (and to the first chunk
committed to the document), seconds per chunk (overall, and steady once the pipeline is full), the
longest gap between ticks of a 1 ms GUI timer during generation (the worst stall; target < 50 ms)
with its 99th percentile, and the process's resident memory (VmRSS) after 1 and after N chunks. The
1-minute load average before and after is recorded too: on a 2-core machine other processes take the
cores from both the engine and the GUI thread, so figures compare only at a load below 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.gui_timing import TARGET_MS, StallRecorder, wait_for  # noqa: E402

PROMPTS = ("a red ball falls and bounces on white", "the red ball rolls to the right", "the red ball stays still",
           "the red ball grows")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="studio-mini")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CI machines have 2 cores)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def rss_mib() -> float:
    """Resident memory of this process (VmRSS in /proc/self/status), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("VmRSS not found in /proc/self/status")


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication(["studio_gui"])
    from magi_studio import theme
    from magi_studio.dialogs.project_prompts import DISCARD
    from magi_studio.document.commands import AddChunk, SetPrompt, new_chunk
    from magi_engine.events import Failed
    from magi_studio.engine_worker import EngineState
    from magi_studio.player import SlotState
    from magi_studio.settings import Settings
    from magi_studio.studio import Studio

    class DiscardingPrompts:  # a benchmark asks nothing: its untitled project is discarded at the end
        unsaved_changes = offer_recovery = staticmethod(lambda *args, **kwargs: DISCARD)
        confirm_replace = open_path = save_path = staticmethod(lambda *args: None)

    theme.apply_theme(app)
    folder = tempfile.TemporaryDirectory(prefix="studio-gui-")
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(Path(folder.name) / "settings"))
    QCoreApplication.setOrganizationName("MAGI Studio Benchmark")
    os.environ["XDG_DATA_HOME"] = str(Path(folder.name) / "data")
    settings = Settings()
    settings.model, settings.device, settings.welcome_dismissed = args.model, "cpu", True
    errors = []
    studio = Studio(settings, prompts=DiscardingPrompts(), scratch_root=Path(folder.name) / "untitled")
    worker, generation, window = studio.worker, studio.generation, studio.window
    worker.event.connect(lambda job, event: isinstance(event, Failed) and errors.append(event.error))
    generation.errorReported.connect(errors.append)
    studio.start()  # a new project on Settings' model, which starts loading at once
    wait_for(lambda: worker.state == EngineState.READY or errors, 600, "the model to load")
    if errors:
        raise SystemExit(f"could not load {args.model}: {errors[0]}")
    info = worker.model_info

    session = studio.session
    project = session.project
    shot = project.shots[0]
    session.push(SetPrompt(shot.id, shot.chunks[0].id, PROMPTS[0]))
    for i in range(1, args.chunks):
        session.push(AddChunk(shot.id, new_chunk(project, shot.id, i, PROMPTS[i % len(PROMPTS)])))
    window.resize(1280, 820)
    window.show()
    wait_for(window.isVisible, 10, "the window to show")
    player = window.player

    stalls = StallRecorder()
    first_paint: list[float] = []
    committed: list[float] = []
    rss: dict[int, float] = {}
    ended: list[str] = []
    player.view.framePainted.connect(lambda frame: first_paint or (
        player.view.shown_frame.state == SlotState.FRAMES and first_paint.append(time.perf_counter() - started)))

    def on_committed(*_) -> None:
        committed.append(time.perf_counter() - started)
        if len(committed) in (1, args.chunks):
            rss[len(committed)] = rss_mib()

    generation.chunkCommitted.connect(on_committed)
    generation.runEnded.connect(ended.append)
    rss_before = rss_mib()
    load_before = os.getloadavg()[0]
    stalls.start()
    started = time.perf_counter()
    window.action_set["generate.run"].trigger()  # the user presses Generate
    wait_for(lambda: bool(ended), 3600, "the run to end")
    total_s = time.perf_counter() - started
    stalls.stop()
    if errors or ended != ["finished"]:
        raise SystemExit(f"generation did not finish: {ended} {errors}")

    stall = stalls.summary()
    n = args.chunks
    steady = (committed[-1] - committed[min(3, n - 1)]) / (n - 1 - min(3, n - 1)) if n > 4 else None
    result = {
        "app": "Studio main window, Generate action", "model": info.label, "device": info.device,
        "size": f"{info.width}x{info.height}", "chunks": n,
        "steps_per_chunk": info.sampling.num_steps, "window": info.sampling.window, "torch_threads": args.threads,
        "first_chunk_painted_s": round(first_paint[0], 3) if first_paint else None,
        "first_chunk_committed_s": round(committed[0], 3),
        "seconds_per_chunk": round(total_s / n, 3),
        "steady_seconds_per_chunk": round(steady, 3) if steady is not None else None,
        "total_s": round(total_s, 2),
        "max_gui_stall_ms": stall["max_stall_ms"], "p99_gap_ms": stall["p99_gap_ms"], "ticks": stall["ticks"],
        "rss_before_mib": rss_before, "rss_after_1_chunk_mib": rss.get(1), f"rss_after_{n}_chunks_mib": rss.get(n),
        "undo_steps": session.undo_stack.count(),
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=1))
    verdict = "OK" if result["max_gui_stall_ms"] < TARGET_MS else "OVER TARGET"
    print(f"max GUI stall {result['max_gui_stall_ms']} ms: {verdict} (target < {TARGET_MS:.0f} ms)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    studio.dispose()  # discards the untitled project, stops the engine thread
    folder.cleanup()
    return result


if __name__ == "__main__":
    main()
