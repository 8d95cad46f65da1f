"""Time from "Add Chunk" to typing in the new chunk, in the real main window (offscreen), per storyboard size.

    python benchmarks/add_chunk_typing.py                       # storyboards of 8 and 120 chunks, 20 tries each
    python benchmarks/add_chunk_typing.py --chunks 60 --tries 50 --json out.json

Each try presses Ctrl+Shift+N on the focused widget (as the keyboard does: the window's shortcut),
types one letter into whatever widget then has the keyboard focus, and runs the event loop until it
is idle (the layout, the scroll to the new card and its paint); it stops when the letter is the new
chunk's prompt in the document. Before the change that gives the new prompt the focus, the letter
went to the previous chunk's prompt or to the player (where "l" toggled Loop). Settings and the
untitled project live in a temporary folder. Prints JSON: median and worst milliseconds per size,
and the 1-minute load average (figures compare only on a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.gui_timing import wait_for  # noqa: E402
from benchmarks.record import publish  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[8, 120], help="storyboard sizes to try")
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def time_one_size(window, chunks: int, tries: int) -> dict:
    from magi_studio.document.commands import AddChunk, new_chunk
    from magi_studio.document_session import DocumentSession

    folder = tempfile.TemporaryDirectory(prefix="add-chunk-")
    session = DocumentSession.new_untitled(Path(folder.name) / "untitled")
    project = session.project
    shot = project.shots[0]
    for i in range(1, chunks):
        session.push(AddChunk(shot.id, new_chunk(project, shot.id, i, f"chunk {i + 1}")))
    window.set_document_session(session)
    app = QApplication.instance()
    app.processEvents()
    times_ms = []
    for _ in range(tries):
        window.timeline.cards()[len(window.timeline.cards()) // 2].prompt.setFocus()  # typing somewhere mid-board
        app.processEvents()
        started = time.perf_counter()
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_N,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        QTest.keyClicks(QApplication.focusWidget(), "l")
        app.processEvents()
        chunk = session.project.shot(session.selected_shot_id).chunk(session.selected_chunk_id)
        if chunk.prompt != "l":
            raise SystemExit(f"the letter did not reach the new chunk's prompt (it reads {chunk.prompt!r})")
        times_ms.append((time.perf_counter() - started) * 1000)
        session.end_edit_burst()
    window.set_document_session(None)
    session.close()
    folder.cleanup()
    return {"chunks": chunks, "tries": tries, "median_ms": round(statistics.median(times_ms), 1),
            "max_ms": round(max(times_ms), 1)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    app = QApplication.instance() or QApplication(["add_chunk_typing"])
    from magi_studio import theme
    from magi_studio.engine_worker import EngineWorker
    from magi_studio.main_window import MainWindow
    from magi_studio.settings import Settings

    theme.apply_theme(app)
    folder = tempfile.TemporaryDirectory(prefix="add-chunk-settings-")
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, folder.name)
    QCoreApplication.setOrganizationName("MAGI Studio Benchmark")
    settings = Settings()
    settings.welcome_dismissed = True
    worker = EngineWorker()
    window = MainWindow(settings, worker)
    window.resize(1280, 820)
    window.show()
    window.activateWindow()
    wait_for(lambda: QApplication.activeWindow() is window, 10, "the window to be active")
    load_before = os.getloadavg()[0]
    sizes = [time_one_size(window, chunks, args.tries) for chunks in args.chunks]
    record = publish(__file__, argv, {"sizes": sizes, "load_1min_before": round(load_before, 2),
                                      "load_1min_after": round(os.getloadavg()[0], 2)}, args.json)
    window.close()
    worker.shutdown()
    return record


if __name__ == "__main__":
    main()
