"""Runs the real `magi-studio` app (magi_studio.app.run_app, as the console script does) and reports on it.

    python tests/packaging/app_driver.py [--device cuda] [--model SPEC] [--free-memory-gib N]

Used by tests/packaging/test_first_run.py in a subprocess with a fresh HOME and XDG folders and
QT_QPA_PLATFORM=offscreen, so it sees what a new user sees: no test fixture, no faked prompts. Options
preset the settings before the app starts, the way a settings file left by an earlier run would
(--free-memory-gib pretends the device has that much free memory, for the memory check).

It polls the app every 100 ms; any modal dialog it meets is recorded and closed (a first run must have
none). Once the engine has settled (a model is ready, or the load failed and the window says so) it
records the window's state, quits through File > Quit like a user, and prints one JSON object on the
last line of stdout, with the exit code of run_app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from PySide6.QtCore import QTimer

SETTLE_TIMEOUT_S = 90


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--device")
    parser.add_argument("--free-memory-gib", type=float)
    options = parser.parse_args()

    from magi_studio.app import create_application, run_app
    from magi_studio.main_window import MainWindow
    from magi_studio.settings import Settings

    app = create_application([])  # the names place the settings file; run_app reuses this application
    if options.model or options.device:
        settings = Settings()
        if options.model:
            settings.model = options.model
        if options.device:
            settings.device = options.device
        settings.store.sync()
    if options.free_memory_gib is not None:
        import magi_engine.loading.memory as memory

        memory.device_memory_bytes = lambda device: int(options.free_memory_gib * 2**30)

    report: dict = {"modal_dialogs": [], "quit_sent": False}
    started = time.monotonic()

    def main_window() -> MainWindow | None:
        return next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()), None)

    def poll() -> None:
        modal = app.activeModalWidget()
        if modal is not None:
            report["modal_dialogs"].append(f"{type(modal).__name__}: {modal.windowTitle()}")
            modal.close()
        window = main_window()
        status = window.engine_status.text() if window is not None else ""
        settled = "ready" in status or "No model loaded" in status and window.error_banner.isVisible()
        if window is not None and not report["quit_sent"] and (settled or time.monotonic() - started > SETTLE_TIMEOUT_S):
            project = window.session.project if window.session is not None else None
            report.update(
                seconds_to_settle=round(time.monotonic() - started, 2),
                title=window.windowTitle(),
                engine_status=status,
                model=project.settings.model if project else None,
                chunks_per_shot=[len(shot.chunks) for shot in project.shots] if project else None,
                welcome_visible=window.welcome.isVisible(),
                welcome_title=window.welcome.title.text(),
                welcome_body=window.welcome.body.text(),
                error_visible=window.error_banner.isVisible(),
                error_title=window.error_banner.title.text(),
                error_body=window.error_banner.body.text(),
                visible_windows=sorted(type(w).__name__ for w in app.topLevelWidgets()
                                       if w.isVisible() and w.isWindow() and w.windowType().name != "Popup"),
                window_alive_after_error=window.isVisible(),
            )
            report["quit_sent"] = True
            window.action_set["file.quit"].trigger()
        QTimer.singleShot(100, poll)

    QTimer.singleShot(0, poll)
    report["exit_code"] = run_app([])
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
