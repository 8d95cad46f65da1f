"""A long storyboard in the studio: opening it, its memory, and the GUI thread while scrolling, zooming and generating.

    python benchmarks/gui_storyboard.py                      # 120 chunks in 6 shots, 1366x768, tiny model
    python benchmarks/gui_storyboard.py --chunks 120 --shots 4 --size 1920x1080 --json out.json
    python benchmarks/gui_storyboard.py --slowest 5 --gaps 5     # and what ran in the run's 5 longest gaps

A project of N generated chunks (synthetic results written by the real planning and store:
tests/magi_studio/document/fakes.py, 64x64 frames with thumbnails) is saved, then opened in the app
itself (magi_studio.studio.Studio, its main window shown offscreen at --size). Measured, with the
1 ms GUI-timer StallRecorder of benchmarks/gui_timing.py:

* open: File > Open (ProjectController.open_project) until the window has painted the storyboard;
  resident memory (VmRSS) before and after;
* scroll: the storyboard scrolled end to end and back by mouse-wheel events on its viewport, one every
  16 ms (a fast wheel), then the overview dragged across; the longest gap (target <= 16 ms quiet);
* zoom: Ctrl+wheel events over the cards, out through every level and back in, 3 times, 120 ms apart
  (the longest gap; target <= 16 ms quiet);
* generate: Regenerate From Chunk (the window's action, Ctrl+R) on the first chunk of the middle shot on the
  tiny model (its chunks and the rest of the shot again), the window idle; the longest gap (target <= 50 ms),
  and the action itself (click_ms, click_gui_cpu_ms: the seed drawn again, the shot queued, the cards redrawn).

The 1-minute load average is recorded before each phase: the machine is shared, and stalls compare only
at a similar load. Each phase also reports the GUI thread's own CPU time (gui_cpu_ms, time.thread_time), which
a loaded machine inflates far less than the wall-clock stalls, and (Linux) the longest stall less the GUI thread's
wait for a core in it (max_stall_less_core_wait_ms, from the scheduler's counters: roughly what a machine with a
core to spare would show, an upper bound). Compare commits by these, run side by side. `--gaps N` splits the
generate phase's N longest gaps the same way (and the rest: mostly waiting for the interpreter lock, which the
engine's thread holds while it runs Python) and lists the GUI events that ran in each; the first gap starts with
the action itself, which is not an event.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QPoint, QPointF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.gui_timing import StallRecorder, wait_for  # noqa: E402
from benchmarks.studio_gui import rss_mib  # noqa: E402

QUIET_TARGET_MS, GENERATING_TARGET_MS = 16.0, 50.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=120)
    parser.add_argument("--shots", type=int, default=6)
    parser.add_argument("--size", default="1366x768", help="the main window's size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the generation phase")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--slowest", type=int, default=0,
                        help="also list the N slowest GUI events of each phase by wall and by the GUI thread's CPU time "
                             "(wall ms, CPU ms, type, receiver): whether a stall is work on the GUI thread or time "
                             "waiting for a core")
    parser.add_argument("--gaps", type=int, default=0,
                        help="also list the generate phase's N longest gaps, each split into the GUI thread's CPU time, "
                             "its wait for a core and the rest, with the GUI events that ran in it (start, wall ms, "
                             "CPU ms, type, receiver)")
    return parser.parse_args(argv)


class TimedApplication(QApplication):
    """A QApplication that times every event it delivers on the GUI thread (the outermost of nested ones;
    the engine's thread delivers its own events through notify too, and is not timed): wall time, and the
    GUI thread's own CPU time (time.thread_time), which on a loaded machine says what the handler costs
    while the wall time also counts waiting for a core or for the interpreter lock."""

    def __init__(self, argv) -> None:
        super().__init__(argv)
        self.events: list[tuple[float, float, str, str]] = []
        #: With `record_all`: every event (start ns, wall ms, CPU ms, type, receiver), to place in the gaps.
        self.record_all, self.timeline = False, []
        self._depth = 0
        self._gui_thread = threading.get_ident()

    def notify(self, receiver, event) -> bool:
        if threading.get_ident() != self._gui_thread:
            return super().notify(receiver, event)
        self._depth += 1
        started, cpu = time.perf_counter_ns(), time.thread_time()
        try:
            return super().notify(receiver, event)
        finally:
            self._depth -= 1
            took = (time.perf_counter_ns() - started) / 1e6
            if self._depth == 0 and took > 4:
                self.events.append((round(took, 1), round((time.thread_time() - cpu) * 1000, 1), event.type().name,
                                    type(receiver).__name__))
            if self._depth == 0 and self.record_all and took > 0.5:
                self.timeline.append((started, round(took, 1), round((time.thread_time() - cpu) * 1000, 1),
                                      event.type().name, _name(receiver)))

    def in_gaps(self, gaps: list[dict]) -> list[dict]:
        """Each gap of StallRecorder.worst with the events that ran in it (start ms after the gap's start)."""
        events, self.timeline = self.timeline, []
        return [{**gap, "events": [(round((start - gap["start_ns"]) / 1e6, 1), *rest) for start, *rest in events
                                   if gap["start_ns"] - 1e9 < start < gap["end_ns"] and start + rest[0] * 1e6 > gap["start_ns"]]}
                for gap in gaps]

    def slowest(self, count: int) -> dict:
        """The `count` slowest events by wall time and by CPU time, each (wall ms, CPU ms, type, receiver)."""
        events, self.events = self.events, []
        return {"by_wall": sorted(events, reverse=True)[:count],
                "by_cpu": sorted(events, key=lambda e: e[1], reverse=True)[:count]}


def _name(receiver) -> str:
    """A receiver's class, and for a plain QWidget or QTimer its parents' (object names too), to tell which it is."""
    name = type(receiver).__name__
    if name not in ("QWidget", "QTimer"):
        return name
    chain, parent = [], receiver
    while parent is not None and len(chain) < 3:
        chain.append(f"{type(parent).__name__}:{parent.objectName()}" if parent.objectName() else type(parent).__name__)
        parent = parent.parent()
    return "/".join(chain)


def build_project(folder: Path, chunks: int, shots: int) -> Path:
    """A saved project of `chunks` generated chunks in `shots` shots (synthetic results)."""
    from magi_studio.document.commands import AddChunk, AddShot, SetPrompt, new_chunk
    from magi_studio.document.model import ProjectSettings, new_project, new_shot
    from magi_studio.document.observer import Document, UndoHistory
    from magi_studio.document.store import ProjectStore
    from tests.magi_studio.document.fakes import fake_generate

    store = ProjectStore.create(folder / "Long.magi")
    project = new_project(ProjectSettings(model="tiny", width=64, height=64, steps=4))
    history = UndoHistory(Document(project))
    per_shot = -(-chunks // shots)
    for s in range(shots):
        if s:
            history.push(AddShot(new_shot(project), s))
        shot = project.shots[s]
        history.push(SetPrompt(shot.id, shot.chunks[0].id, f"shot {s + 1}: a red ball falls"))
        while len(shot.chunks) < min(per_shot, chunks - s * per_shot):
            history.push(AddChunk(shot.id, new_chunk(project, shot.id, len(shot.chunks),
                                                     f"the ball rolls on, part {len(shot.chunks) + 1}")))
        fake_generate(project, store, shot.id, history=history)
    store.save(project)
    return store.path


class Pacer:
    """Runs `steps` (callables) one every `interval_ms` on the event loop, recording the GUI thread's gaps."""

    def __init__(self, steps: list, interval_ms: int) -> None:
        self.steps, self.stalls, self.done = list(steps), StallRecorder(), False
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._next)

    def _next(self) -> None:
        if not self.steps:
            self.timer.stop()
            self.done = True
            return
        self.steps.pop(0)()

    def run(self, timeout_s: float = 600) -> dict:
        cpu = time.thread_time()
        self.stalls.start()
        self.timer.start()
        wait_for(lambda: self.done, timeout_s, "the steps")
        self.stalls.stop()
        return {**self.stalls.summary(), "gui_cpu_ms": round((time.thread_time() - cpu) * 1000)}


def wheel(widget, x: float, delta: int, ctrl: bool = False) -> None:
    pos = QPointF(x, widget.height() / 2)
    modifiers = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(widget, QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(),
                                               QPoint(0, delta), Qt.MouseButton.NoButton, modifiers,
                                               Qt.ScrollPhase.NoScrollPhase, False))


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    timed = args.slowest or args.gaps
    app = QApplication.instance() or (TimedApplication if timed else QApplication)(["gui_storyboard"])
    slowest = (lambda: app.slowest(args.slowest)) if timed else (lambda: None)
    from magi_engine.session import GenerationSession
    from magi_studio import theme
    from magi_studio.dialogs.project_prompts import DISCARD
    from magi_studio.engine_worker import EngineWorker
    from magi_studio.settings import Settings
    from magi_studio.studio import Studio
    from magi_studio.timeline.view import ZOOM_LEVELS
    from tests.engine.factories import tiny_bundle
    from tests.magi_studio.prompts import FakePrompts

    theme.apply_theme(app)
    folder = Path(tempfile.mkdtemp(prefix="gui-storyboard-"))
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder / "settings"))
    QCoreApplication.setOrganizationName("MAGI Studio Benchmark")
    os.environ["XDG_DATA_HOME"], os.environ["XDG_CACHE_HOME"] = str(folder / "data"), str(folder / "cache")
    path = build_project(folder, args.chunks, args.shots)
    settings = Settings()
    settings.model, settings.device, settings.welcome_dismissed = "tiny", "cpu", True
    worker = EngineWorker()
    loaded = worker.use_session(GenerationSession(tiny_bundle()))
    prompts = FakePrompts()
    prompts.unsaved = DISCARD
    studio = Studio(settings, worker=worker, prompts=prompts, scratch_root=folder / "untitled")
    window = studio.window
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    studio.start()
    window.show()
    wait_for(lambda: loaded not in worker.live_jobs, 60, "the tiny model")
    QTest.qWait(200)
    loads, result = {}, {"chunks": args.chunks, "shots": args.shots, "window": args.size}

    # Open -------------------------------------------------------------------------------------
    loads["open"] = os.getloadavg()[0]
    result["rss_before_open_mib"] = rss_mib()
    started, cpu = time.perf_counter(), time.thread_time()
    assert studio.projects.open_project(path), "the project did not open"
    timeline = window.timeline
    QApplication.processEvents()  # the window paints the storyboard
    result["open_s"] = round(time.perf_counter() - started, 3)
    result["open_gui_cpu_ms"] = round((time.thread_time() - cpu) * 1000)
    assert len(timeline.cards()) == args.chunks
    QTest.qWait(300)
    result["rss_after_open_mib"] = rss_mib()

    # Scroll -----------------------------------------------------------------------------------
    viewport, bar = timeline.scroll.viewport(), timeline.scroll.horizontalScrollBar()
    notches = bar.maximum() // 120 + 1
    steps = [lambda: wheel(viewport, 300, -120)] * notches + [lambda: wheel(viewport, 300, 120)] * notches
    overview = timeline.overview
    steps += [lambda i=i: QTest.mouseMove(overview, QPoint(i, 10)) for i in range(0, overview.width(), 8)]
    QTest.mousePress(overview, Qt.MouseButton.LeftButton, pos=QPoint(1, 10))
    loads["scroll"] = os.getloadavg()[0]
    slowest()
    scroll = Pacer(steps, 16).run()
    QTest.mouseRelease(overview, Qt.MouseButton.LeftButton, pos=QPoint(overview.width() - 1, 10))
    result["scroll"] = {**scroll, "wheel_events": 2 * notches, "slowest_events": slowest()}

    # Zoom -------------------------------------------------------------------------------------
    bar.setValue(bar.maximum() // 3)
    levels = len(ZOOM_LEVELS)
    steps = []
    for round_ in range(3):
        x = (200, viewport.width() // 2, viewport.width() - 200)[round_]
        steps += [lambda x=x: wheel(viewport, x, -120, ctrl=True)] * levels
        steps += [lambda x=x: wheel(viewport, x, 120, ctrl=True)] * levels
    loads["zoom"] = os.getloadavg()[0]
    slowest()
    result["zoom"] = {**Pacer(steps, 120).run(), "zoom_events": len(steps), "slowest_events": slowest()}
    timeline.set_zoom(1)

    # Generate ---------------------------------------------------------------------------------
    project = studio.session.project
    shot = project.shots[len(project.shots) // 2]
    ended: list[str] = []
    studio.generation.runEnded.connect(ended.append)
    studio.session.select(shot.id, shot.chunks[0].id)  # its card clicked, then (below) Ctrl+R
    recorder = StallRecorder()
    loads["generate"] = os.getloadavg()[0]
    slowest()
    app.record_all = bool(args.gaps)
    recorder.start()
    started, cpu = time.perf_counter(), time.thread_time()
    studio.window.action_set["generate.regenerate"].trigger()  # Regenerate From Chunk (Ctrl+R), as a user does
    click_ms = ((time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000)
    wait_for(lambda: bool(ended), 600, "the run to end")
    recorder.stop()
    result["generate"] = {**recorder.summary(), "gui_cpu_ms": round((time.thread_time() - cpu) * 1000),
                          "chunks": len(shot.chunks), "run": ended[0],
                          "click_ms": round(click_ms[0], 1), "click_gui_cpu_ms": round(click_ms[1], 1),
                          "seconds": round(time.perf_counter() - started, 2), "slowest_events": slowest()}
    if args.gaps:
        app.record_all = False
        result["generate"]["longest_gaps"] = app.in_gaps(recorder.worst(args.gaps))
    result["rss_after_generate_mib"] = rss_mib()
    result["load_average"] = {k: round(v, 2) for k, v in loads.items()}
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=1))
    phases, own = ("scroll", "zoom", "generate"), "max_stall_less_core_wait_ms"
    print(f"open {result['open_s']} s, RSS {result['rss_after_open_mib']} MiB; longest stall: scrolling "
          f"{scroll['max_stall_ms']} ms, zooming {result['zoom']['max_stall_ms']} ms (targets <= {QUIET_TARGET_MS:.0f} ms "
          f"quiet), generating {result['generate']['max_stall_ms']} ms (<= {GENERATING_TARGET_MS:.0f} ms); "
          f"less the GUI thread's wait for a core: {' / '.join(str(result[k].get(own)) for k in phases)} ms; "
          f"GUI-thread CPU {' / '.join(str(result[k]['gui_cpu_ms']) for k in phases)} ms; "
          f"load {result['load_average']}", file=sys.stderr)
    for gap in result["generate"].get("longest_gaps", []):
        print(f"gap {gap['ms']} ms: GUI CPU {gap['gui_cpu_ms']}, core wait {gap['core_wait_ms']}, rest {gap['rest_ms']}; "
              + "; ".join(f"+{at} {kind} {receiver} ({wall}/{cpu})" for at, wall, cpu, kind, receiver in gap["events"]
                          if cpu >= 1), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    studio.dispose()
    worker.shutdown()
    return result


if __name__ == "__main__":
    main()
