"""The app's log file, and the hook that logs a bug nothing caught and tells the user (magi_studio.app_log)."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from magi_studio import app_log


def test_the_log_file_is_in_the_apps_data_folder_and_a_bug_in_a_slot_is_logged_told_and_survived(
        qtbot, isolated_settings, tmp_path):
    hook = sys.excepthook
    installed = app_log.install_logging()
    told = []
    try:
        assert installed.file == app_log.log_file() and str(installed.file).startswith(str(tmp_path.parent))
        app_log.install_exception_hook(told.append)
        logging.getLogger("magi_studio.test").info("a line at info level")
        QTimer.singleShot(0, lambda: {}["no such take"])  # a bug in a slot, inside the running event loop
        qtbot.waitUntil(lambda: bool(told), timeout=5000)
        QApplication.processEvents()
    finally:
        installed.remove()
    assert sys.excepthook is hook and installed.handler not in logging.getLogger().handlers
    text = installed.file.read_text(encoding="utf-8")
    assert "a line at info level" in text
    assert "an exception nothing caught" in text and "KeyError: 'no such take'" in text and "Traceback" in text
    [sentence] = told
    assert sentence.startswith("MAGI Studio ran into an internal error (KeyError: 'no such take').")
    assert str(installed.file) in sentence


def test_a_log_folder_that_cannot_be_written_leaves_the_log_on_the_terminal(monkeypatch, tmp_path):
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    monkeypatch.setattr(app_log, "log_folder", lambda: blocked / "logs")
    installed = app_log.install_logging()
    try:
        assert installed.file is None and installed.handler is None
    finally:
        installed.remove()
