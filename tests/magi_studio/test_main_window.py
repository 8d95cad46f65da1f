"""The main window offscreen: opens and closes cleanly, actions declared once and rendered, shortcuts
dialog, welcome banner, progress widget and player fed by a real (tiny) generation, the error banner.

The bare window is tested here, on a session and a worker the test owns; the wired app (controllers,
project actions, close prompt) is tested through magi_studio.studio.Studio in test_studio.py."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from magi_engine.events import ChunkFinished
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_studio.actions import ACTIONS, CONTEXT_KEYS, MENUS, WINDOW
from magi_studio.engine_worker import EngineState
from magi_studio.main_window import MainWindow
from magi_studio.player import SlotState
from magi_studio.settings import Settings
from magi_studio.document_session import DocumentSession


@pytest.fixture
def window(qtbot, no_leaked_windows, isolated_settings, engine_worker, tmp_path):
    """A shown MainWindow on the test's worker and an untitled session; closed, deleted and checked for leaks."""
    session = DocumentSession.new_untitled(tmp_path / "scratch")
    win = MainWindow(isolated_settings, engine_worker, session=session)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.deleteLater()
    session.close()


def ready(qtbot, window, session) -> None:
    job = window.worker.use_session(session)
    qtbot.waitUntil(lambda: window.worker.state == EngineState.READY and job not in window.worker.live_jobs,
                    timeout=5000)


def request(n: int) -> GenerationRequest:
    return GenerationRequest(chunks=tuple(ChunkSpec("a red ball falls", seed=i) for i in range(n)), width=64, height=64)


def test_window_opens_and_closes_offscreen(qtbot, window):
    # The title names the open project (an untitled one at start) and carries the unsaved-changes mark.
    assert window.windowTitle() == "Untitled[*] — MAGI Studio" and window.centralWidget().isVisible()
    assert not window.isWindowModified()
    assert window.player.isVisible() and window.player.view.shown_frame is None
    with qtbot.waitSignal(window.closed, timeout=2000):
        window.close()
    assert window.worker.is_running()  # the caller's worker: the window does not stop it


def test_a_window_without_a_session_shows_no_project(qtbot, no_leaked_windows, isolated_settings, engine_worker):
    win = MainWindow(isolated_settings, engine_worker)
    assert win.session is None and win.windowTitle() == "MAGI Studio" and win.timeline.cards() == []
    assert not win.action_set["edit.add_chunk"].isEnabled() and not win.action_set["generate.run"].isEnabled()
    win.deleteLater()


def test_menus_and_toolbar_are_rendered_from_the_declarations(window):
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == list(MENUS)
    in_menus = {a.objectName() for m in window.menuBar().actions() for a in m.menu().actions() if a.objectName()}
    assert in_menus == {spec.id for spec in ACTIONS}
    in_toolbar = [a.objectName() for a in window.toolbar.actions() if not a.isSeparator()]
    assert in_toolbar == [spec.id for spec in ACTIONS if spec.toolbar]
    for spec in ACTIONS:
        action = window.action_set[spec.id]
        assert action.shortcut().toString() == spec.key_sequence().toString()
        if spec.target != WINDOW:  # waits for the Studio to bind its handlers: disabled, not faked
            assert not action.isEnabled(), spec.id
    assert not window.action_set["generate.cancel"].isEnabled()  # nothing to stop
    assert not window.action_set["playback.play"].isEnabled()  # nothing to play yet
    window.player.store.set_chunk_count(1)
    assert window.action_set["playback.play"].isEnabled()


def test_no_two_actions_share_a_shortcut():
    keys = [key.toString() for spec in ACTIONS for key in spec.key_sequences()]
    assert len(keys) == len(set(keys)), sorted(keys)


def test_shortcuts_dialog_lists_every_declared_shortcut(qtbot, window):
    window.action_set["help.shortcuts"].trigger()
    dialog = window._shortcuts_dialog
    qtbot.waitExposed(dialog)
    shown = dialog.shortcut_texts()
    assert shown["Play / Pause"] == "Space" and shown["Keyboard Shortcuts"] == "F1"
    assert shown["Select previous / next chunk"] == "Left / Right"  # a widget's own keys are listed too
    assert dialog.table.rowCount() == sum(1 for spec in ACTIONS if spec.shortcut is not None) + len(CONTEXT_KEYS)
    dialog.close()  # deletes itself


def test_help_opens_the_user_guide_that_ships_with_the_app(window, monkeypatch, tmp_path):
    from magi_studio import user_guide

    opened = []
    window.open_url = lambda url: opened.append(url) or True
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert window.action_set["help.user_guide"] in help_menu.actions()
    window.action_set["help.user_guide"].trigger()
    guide = user_guide.local_user_guide()
    assert opened == [QUrl.fromLocalFile(str(guide))] and guide.read_text(encoding="utf-8").startswith("# MAGI")
    monkeypatch.setattr(user_guide, "local_user_guide", lambda: tmp_path / "not-shipped.md")  # a bare wheel
    window.action_set["help.user_guide"].trigger()
    assert opened[-1] == QUrl(user_guide.PUBLISHED_GUIDE)
    window.open_url = lambda url: False  # nothing on this desktop opens it: the banner says where it is
    assert not window.show_user_guide()
    assert window.error_banner.isVisible() and user_guide.PUBLISHED_GUIDE in window.error_banner.body.text()


def test_help_shows_the_log_folder_and_an_internal_error_names_it(window, isolated_settings):
    from magi_studio.app_log import log_folder

    opened = []
    window.open_url = lambda url: opened.append(url) or True
    window.action_set["help.log_folder"].trigger()
    assert opened == [QUrl.fromLocalFile(str(log_folder()))] and log_folder().is_dir()
    window.open_url = lambda url: False
    assert not window.show_log_folder() and str(log_folder()) in window.error_banner.body.text()
    window.report_internal_error("MAGI Studio ran into an internal error (KeyError: 'x'). Your work is kept.")
    assert window.error_banner.isVisible() and "Internal error" in window.error_banner.title.text()


def test_welcome_banner_is_dismissible_and_remembered(qtbot, window, isolated_settings, tmp_path):
    assert window.welcome.isVisible()
    qtbot.mouseClick(window.welcome.close_button, Qt.MouseButton.LeftButton)
    assert not window.welcome.isVisible() and isolated_settings.welcome_dismissed
    assert not window.banner_area.isVisible()  # no empty strip left above the player
    second = MainWindow(Settings(), window.worker)
    assert not second.welcome.isVisibleTo(second)
    second.deleteLater()
    window.action_set["help.welcome"].trigger()
    assert window.welcome.isVisible()
    # An error steps in front of the welcome (one banner at a time), which comes back once it is dismissed.
    window.report_internal_error("MAGI Studio ran into an internal error (KeyError: 'x'). Your work is kept.")
    assert window.error_banner.isVisible() and not window.welcome.isVisible() and window.banner_area.isVisible()
    window.error_banner.dismiss()
    assert window.welcome.isVisible() and not window.error_banner.isVisible()


def test_the_reference_image_folder_is_remembered_between_sessions(qtbot, window, isolated_settings, tmp_path,
                                                                   monkeypatch):
    from pathlib import Path

    from tests.magi_studio.timeline.helpers import answer_image_dialogs

    asked = answer_image_dialogs(monkeypatch, tmp_path / "stills")
    shot_id = window.session.project.shots[0].id
    assert window.timeline.choose_reference_image(shot_id)
    assert isolated_settings.image_folder == str(tmp_path / "stills")
    second = MainWindow(isolated_settings, window.worker, session=window.session)
    second.timeline.choose_reference_image(shot_id)
    assert asked == [str(Path.home()), str(tmp_path / "stills")]  # the next launch opens where the image was
    second.deleteLater()
    (tmp_path / "stills" / "dawn.png").unlink()
    (tmp_path / "stills").rmdir()  # the folder is gone by the next launch: home again
    third = MainWindow(isolated_settings, window.worker, session=window.session)
    third.timeline.choose_reference_image(shot_id)
    assert asked[-1] == str(Path.home())
    third.deleteLater()


def test_playback_shortcuts_drive_the_player(qtbot, window, tiny_session):
    import numpy as np

    window.player.store.set_frames(0, np.zeros((24, 64, 64, 3), np.uint8))
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.player.current_frame == 2
    qtbot.keyClick(window, Qt.Key.Key_Slash, Qt.KeyboardModifier.ControlModifier)
    assert window.player.is_looping() and window.action_set["playback.loop"].isChecked()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.player.is_playing()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.player.is_playing()


def test_progress_widget_and_player_follow_a_generation_and_cancel_works(qtbot, window, pausing_session_factory):
    session = pausing_session_factory(pause_when=lambda e: isinstance(e, ChunkFinished))
    ready(qtbot, window, session)
    assert "ready" in window.engine_status.text()
    job = window.worker.generate(request(3))
    window.preview_job(job)
    qtbot.waitUntil(lambda: session.paused.is_set() and window.player.store.chunk_count >= 1
                    and window.player.store.state(0) == SlotState.FRAMES, timeout=10_000)
    # Engine held after chunk 1 of 3: the chunk is in the player, progress shows where the run is.
    progress = window.job_progress
    qtbot.waitUntil(lambda: "step" in progress.text(), timeout=2000)
    assert progress.isVisible() and progress.job_id == job and progress.cancel_button.isEnabled()
    assert progress.text().startswith("Chunk ") and "/3" in progress.text()
    assert window.action_set["generate.cancel"].isEnabled()
    assert "Generating" in window.engine_status.text()

    qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    session.resume()
    qtbot.waitUntil(lambda: job not in window.worker.live_jobs, timeout=10_000)
    assert window.status_message.text() == "Stopped — 1 finished chunk kept" and not progress.isVisible()
    assert window.player.store.state(0) == SlotState.FRAMES  # the finished chunk stays
    assert all(window.player.store.state(c) != SlotState.PREVIEW for c in range(window.player.store.chunk_count))
    assert not window.action_set["generate.cancel"].isEnabled()


def test_the_end_of_a_job_is_said_in_the_status_bar_and_an_inactive_window_asks_for_attention(
        qtbot, window, tiny_session, monkeypatch):
    alerts = []
    monkeypatch.setattr(QApplication, "alert", staticmethod(lambda widget, msec=0: alerts.append(widget)))
    ready(qtbot, window, tiny_session)
    elsewhere = QWidget()  # the user works in another window meanwhile
    elsewhere.show()
    elsewhere.activateWindow()
    qtbot.waitUntil(lambda: not window.isActiveWindow(), timeout=5000)
    job = window.worker.generate(request(1))
    qtbot.waitUntil(lambda: job not in window.worker.live_jobs, timeout=10_000)
    elsewhere.close()
    elsewhere.deleteLater()
    assert window.status_message.text().startswith("Generated 1 chunk in ") and alerts == [window]
    assert not window.job_progress.isVisible()  # one writer of the message area: no second outcome beside it
    # The message does not hide where the engine runs (a permanent widget beside it).
    assert window.engine_status.isVisible() and "ready" in window.engine_status.text()


def test_a_sentence_too_wide_for_the_status_bar_ends_in_an_ellipsis_and_is_whole_in_its_tooltip(qtbot, window):
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    window.job_progress.show()  # as during a run: the progress takes most of the bar
    message = window.status_message
    long = "Shot 1 is already being generated as asked: nothing was added to the queue. " * 3
    window.show_status(long)
    qtbot.waitUntil(lambda: QLabel.text(message).endswith("…"))
    shown = QLabel.text(message)
    assert long.startswith(shown[:-1]) and message.text() == long and message.toolTip() == long
    assert message.geometry().right() < window.job_progress.x()  # beside the progress, not under it
    window.job_progress.hide()  # the run is over: the sentence gets the room back
    qtbot.waitUntil(lambda: len(QLabel.text(message)) > len(shown))
    window.show_status("Saved", 50)
    assert QLabel.text(message) == "Saved"
    qtbot.waitUntil(lambda: message.text() == "")  # gone after its time


def test_a_loaded_model_is_said_once_by_the_engine_line(qtbot, window, tiny_session):
    ready(qtbot, window, tiny_session)
    qtbot.waitUntil(lambda: window.job_progress.job_id is None, timeout=5000)
    label = window.worker.model_info.label
    said = [window.status_message.text(), window.engine_status.text(), window.job_progress.text() * (
        window.job_progress.isVisible())]
    assert "".join(said).count(label) == 1 and said[1].endswith("· ready"), said  # not "Loaded …" beside it


def test_a_completed_generation_fills_the_player(qtbot, window, tiny_session):
    ready(qtbot, window, tiny_session)
    job = window.worker.generate(request(2))
    window.preview_job(job)
    qtbot.waitUntil(lambda: job not in window.worker.live_jobs, timeout=10_000)
    store = window.player.store
    assert store.chunk_count == 2 and [store.state(c) for c in range(2)] == [SlotState.FRAMES] * 2
    assert window.status_message.text().startswith("Generated 2 chunks in ")
    assert window.player.transport.timecode.text() == "00:00:00:00"
    assert window.player.transport.duration.text() == "/ 00:00:02:00"


def test_run_app_opens_the_window_on_the_qt_loop_and_returns_when_it_closes(qtbot, no_leaked_windows, qapp):
    from PySide6.QtCore import QTimer

    from magi_studio.app import run_app

    seen = []
    poll = QTimer()

    def close_it_once_shown() -> None:
        # The first timer tick can come before the loop's first task has shown the window (a loaded
        # machine takes more than a tick to start): wait for it to be shown, as a user would.
        window = next((w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)), None)
        if window is None or not window.isVisible():
            return
        poll.stop()
        seen.append((window.isVisible(), window.windowIcon().isNull(), QApplication.applicationName()))
        window.close()

    poll.timeout.connect(close_it_once_shown)
    poll.start(50)
    assert run_app([]) == 0
    assert seen == [(True, False, "MAGI Studio")]


def test_theme_resources_are_shipped_and_load(qapp):
    import re

    from PySide6.QtCore import QSize
    from PySide6.QtGui import QFontDatabase, QIcon

    from magi_studio import theme
    from magi_resources import resource_path

    assert "DejaVu Sans" in theme.load_fonts() and "DejaVu Sans" in QFontDatabase.families()
    for name in re.findall(r"url\(styles:([\w.-]+)\)", theme.style_sheet()):
        assert resource_path("styles", name).is_file(), name
    names = {spec.icon for spec in ACTIONS if spec.icon} | {"pause", "cancel", "close", "info", "warning"}
    for name in sorted(names):
        normal = theme.icon(name).pixmap(QSize(24, 24)).toImage()
        disabled = theme.icon(name).pixmap(QSize(24, 24), QIcon.Mode.Disabled).toImage()
        assert any(normal.pixelColor(x, y).alpha() for x in range(24) for y in range(24)), f"icon {name} is empty"
        assert normal != disabled, f"icon {name} has no disabled look"
    assert not theme.app_icon().pixmap(QSize(256, 256)).isNull()


def test_the_draft_toggle_beside_generate_sets_the_projects_draft_mode_undoably(qtbot, window):
    action = window.action_set["generate.draft"]
    toolbar = [a.objectName() for a in window.toolbar.actions() if not a.isSeparator()]
    assert toolbar[toolbar.index("generate.run") + 1] == "generate.draft"  # next to Generate
    button = window.toolbar.widgetForAction(action)
    assert button.text() == "Draft" and button.isCheckable() and not button.isChecked()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.session.project.settings.draft and action.isChecked()
    assert window.session.undo_stack.undoText() == "Draft mode on" and window.isWindowModified()  # saved with it
    window.action_set["edit.undo"].trigger()
    assert not window.session.project.settings.draft and not button.isChecked()
    window.player.setFocus()
    qtbot.keyClick(window.player, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.session.project.settings.draft and button.isChecked()
    assert not window.action_set["generate.final_quality"].isEnabled()  # no draft take to render (nor a controller)


def test_previewing_a_take_does_not_widen_a_window_on_a_1366_screen(
        qtbot, no_leaked_windows, isolated_settings, engine_worker, tmp_path):
    from tests.magi_studio.document.fakes import rich_project

    project, store = rich_project(tmp_path)  # Shot 1: Take 1 -> Take 2 (active)
    session = DocumentSession(project, store)
    win = MainWindow(isolated_settings, engine_worker, session=session)
    try:
        win.resize(1366 - 40, 768 - 60)  # a maximised window on a 1366x768 laptop, less the frame and panel
        win.show()
        qtbot.waitExposed(win)
        QApplication.processEvents()
        width = win.width()
        shot = project.shots[0]
        take1 = next(t for t in shot.takes if t.name == "Take 1")
        session.set_preview_take(shot.id, take1.id)
        qtbot.waitUntil(win.preview_bar.isVisible, timeout=2000)
        QApplication.processEvents()  # the layouts settle
        assert win.width() == width and win.minimumSizeHint().width() <= width
        assert win.preview_bar.title.text() == "Previewing Take 1 of Shot 1"  # the whole text, its tool tip too
    finally:
        win.close()
        win.deleteLater()
        session.close()


def test_a_panels_view_item_brings_it_to_the_front_from_behind_a_tab_and_then_closes_it(qtbot, window):
    """Ctrl+4 with the Queue a tab behind Takes (how a 1366x768 window starts) closed the Queue, which counts as shown
    there: the press meant "show me". Now it comes to the front; the next press closes it, the one after opens it."""
    queue, action = window.queue_dock, window.action_set["view.queue"]
    window.takes_dock.raise_()
    qtbot.waitUntil(lambda: queue.visibleRegion().isEmpty(), timeout=2000)
    assert queue in window.tabifiedDockWidgets(window.takes_dock) and action.isChecked()
    action.trigger()
    qtbot.waitUntil(lambda: not queue.visibleRegion().isEmpty(), timeout=2000)
    assert queue.isVisible() and action.isChecked() and window.takes_dock.visibleRegion().isEmpty()
    action.trigger()
    assert not queue.isVisible() and not action.isChecked()
    action.trigger()
    qtbot.waitUntil(lambda: not queue.visibleRegion().isEmpty(), timeout=2000)
    assert action.isChecked()


def test_an_error_in_front_of_the_welcome_leaves_a_1366x768_window_its_size(qtbot, app_theme, window):
    """The error banner was shown while the welcome was still up, for a moment: the window grew to hold both (768 ->
    812 px, its status bar and the storyboard's last pixels off a laptop's screen) and stayed so once the welcome had
    stepped aside (seen driving the window under Xvfb)."""
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.height() == 768, timeout=2000)
    assert window.welcome.isVisible()
    window.report_error(ValueError("'tiny' is neither a folder nor a known model. Use 'studio-mini', a checkpoint "
                                   "folder, or one of 4.5B_base, 4.5B_distill, 4.5B_distill_quant, 24B_base."))
    qtbot.wait(50)
    assert window.error_banner.isVisible() and not window.welcome.isVisible()
    assert window.height() == 768
