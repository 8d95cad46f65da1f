"""The app's log: a file the user can find (Help › Show Log Folder), and the hook that puts a bug in it.

    installed = install_logging(verbose=False)   # stderr (warnings; info with --verbose) and the log file
    install_exception_hook(window.report_internal_error)   # an uncaught exception: logged, told, the app goes on
    ...
    installed.remove()                           # the file handler and the hook go (the process lives on: tests)

The file is magi-studio.log in the app's data folder (`log_folder()`: QStandardPaths' AppDataLocation/logs),
at info level, rotated at 1 MiB with 3 kept. "Details are in the log" (an engine failure's sentence) points
there. An exception that nothing caught (a bug in a slot: PySide hands it to sys.excepthook and carries on)
is logged with its traceback and told to the user in one sentence naming the file.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from magi_studio.settings import app_data_folder

LOG_NAME = "magi-studio.log"
LOG_MAX_BYTES, LOG_BACKUPS = 1 << 20, 3
log = logging.getLogger("magi_studio")


def log_folder() -> Path:
    return app_data_folder() / "logs"


def log_file() -> Path:
    return log_folder() / LOG_NAME


@dataclass
class InstalledLog:
    file: Path | None  # None: the folder could not be written (the log stays on stderr)
    handler: logging.Handler | None
    previous_hook: Callable

    def remove(self) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
        sys.excepthook = self.previous_hook


def install_logging(verbose: bool = False) -> InstalledLog:
    """The terminal at warning level (info when `verbose`), and the log file at info level."""
    root = logging.getLogger()
    if not root.handlers:  # a terminal handler, unless someone (a test run) has one already
        stream = logging.StreamHandler()
        stream.setLevel(logging.INFO if verbose else logging.WARNING)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    root.setLevel(min(root.level, logging.INFO) if root.level else logging.INFO)  # info reaches the file
    handler = None
    try:
        log_folder().mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(log_file(), maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS,
                                                       encoding="utf-8")
    except OSError as error:  # a read-only or full home: the app runs, its log stays on the terminal
        log.warning("the log file cannot be written (%s); logging to the terminal only", error)
    if handler is not None:
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    return InstalledLog(log_file() if handler is not None else None, handler, sys.excepthook)


def install_exception_hook(report: Callable[[str], None]) -> None:
    """An exception nothing caught is logged with its traceback and `report`ed in one sentence; the app goes on."""
    where = log_file()

    def hook(kind, value, traceback) -> None:
        if issubclass(kind, KeyboardInterrupt):
            return sys.__excepthook__(kind, value, traceback)
        log.critical("an exception nothing caught (a bug in MAGI Studio)", exc_info=(kind, value, traceback))
        try:
            report(f"MAGI Studio ran into an internal error ({kind.__name__}: {str(value)[:200]}). Your work is "
                   f"kept; the details are in {where}.")
        except Exception:  # telling the user must never raise out of the hook
            log.exception("the internal error could not be shown")

    sys.excepthook = hook
