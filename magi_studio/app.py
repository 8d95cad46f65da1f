"""Starting the desktop app: `magi-studio [PROJECT]` → run_app(argv).

The QApplication gets its names (which also place the settings file), the theme, the bundled font
and the icon; then magi_studio.studio.Studio builds the window, the engine thread and the
controllers, opens PROJECT (or offers crashed untitled work, or reopens the last project, or starts a
new one), and the main window runs on qasync's event loop, so asyncio work (hub downloads with
progress, file work) shares Qt's loop instead of needing a thread of its own. run_app returns once the main window has closed
(after the unsaved-changes question) and the engine thread has stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import qasync
from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication

from magi_engine.errors import ConfigError
from magi_studio import theme
from magi_studio.app_log import install_exception_hook, install_logging
from magi_studio.settings import APPLICATION, ORGANIZATION, Settings

log = logging.getLogger(__name__)

DESKTOP_FILE_NAME = "magi-studio"


def parse_app_args(argv: list[str]) -> argparse.Namespace:
    """The app's arguments; `launch` is the LaunchSpec of --gpus / --ranks for this session (None: Settings')."""
    from magi_studio.cli import _add_parallel_args, launch_spec

    parser = argparse.ArgumentParser(prog="magi-studio", description="MAGI Studio, the storyboard editor.")
    parser.add_argument("project", nargs="?", type=Path, help="project to open")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to the terminal")
    _add_parallel_args(parser)
    args = parser.parse_args(argv)
    try:
        args.launch = launch_spec(args)
    except ConfigError as error:
        parser.error(str(error))
    return args


def create_application(argv: list[str]) -> QApplication:
    """The QApplication with MAGI Studio's names, theme, font and icon (reused if one exists)."""
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "magi-studio", *argv])
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QApplication.setApplicationDisplayName("MAGI Studio")
    QApplication.setDesktopFileName(DESKTOP_FILE_NAME)
    theme.apply_theme(app)
    # The window's closed signal ends the asyncio loop; Qt must not stop its loop underneath it.
    app.setQuitOnLastWindowClosed(False)
    return app


def apply_hub_offline(settings: Settings) -> None:
    """Settings' offline mode → HF_HUB_OFFLINE, which the engine's hub code reads at each download."""
    if settings.hub_offline:
        os.environ["HF_HUB_OFFLINE"] = "1"


async def _run_until_closed(window, when_shown=None) -> int:
    """Show the window and wait for it to close; `when_shown()` runs once the event loop has shown it."""
    loop = asyncio.get_running_loop()
    closed = loop.create_future()
    window.closed.connect(lambda: closed.done() or closed.set_result(0))
    window.show()
    if when_shown is not None:
        QTimer.singleShot(0, when_shown)
    return await closed


def handle_quit_signals(studio) -> QTimer:
    """Ctrl-C in the terminal quits like File > Quit (asking about unsaved changes); SIGTERM ends at
    once with the work autosaved. Returns the timer that must live as long as the app."""
    def on_signal(signum, frame) -> None:
        QTimer.singleShot(0, studio.terminate if signum == signal.SIGTERM else studio.window.close)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Python runs signal handlers only when it gets control back from Qt's C++ loop: a tick gives it that.
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    return tick


def run_app(argv: list[str]) -> int:
    """Start MAGI Studio; returns the process exit code."""
    created = QApplication.instance() is None
    app = create_application(argv)
    # A QApplication we created has removed its own options (-platform, -style, ...) from its arguments.
    args = parse_app_args(app.arguments()[1:] if created else argv)
    installed = install_logging(args.verbose)  # the terminal, and the log file Help › Show Log Folder opens
    from magi_studio.studio import Studio  # imports the engine (torch): after the app exists

    settings = Settings()
    settings.launch_override = args.launch
    apply_hub_offline(settings)
    studio = Studio(settings)
    install_exception_hook(studio.window.report_internal_error)  # a bug in a slot: logged, told, the app goes on
    # PROJECT, else crashed untitled work (offered), the last project, a new one. The model loads once the
    # window is up: torch's import on the engine thread would otherwise compete with the window's first paint.
    studio.start(args.project, load_model=False)
    if created:  # this process ends with the window: quitting need not wait for torch's import to finish
        studio.abandon_load_after_ms = 1000
    signal_tick = handle_quit_signals(studio)
    try:
        code = int(qasync.run(_run_until_closed(studio.window, studio.load_model)) or 0)
    finally:
        signal_tick.stop()
        studio.dispose()  # idempotent: autosaves written, engine thread stopped (or a load left), window deleted
        installed.remove()
    if studio.worker.abandoned:  # the engine thread is still importing torch for a model: nothing of ours
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # returning would destroy the running QThread, which aborts the process
    return code
