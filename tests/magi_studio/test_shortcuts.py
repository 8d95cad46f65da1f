"""The keyboard in the real main window: a new chunk's prompt takes the keys, plain-key shortcuts never fire
while a text field has the focus, Esc leaves the field; every playback and editing shortcut, pressed as
the user presses it (QTest key clicks on the focused widget of the shown window), and what it does."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from magi_studio.main_window import MainWindow
from magi_studio.undo import DocumentSession
from tests.magi_studio.document.fakes import rich_project
from tests.magi_studio.timeline.helpers import wait_for_frames

CTRL, SHIFT, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def window(qtbot, no_leaked_windows, isolated_settings, engine_worker, tmp_path):
    """The main window on a three-shot project (shots of 4, 2 and 2 chunks; the first 6 generated)."""
    win = MainWindow(isolated_settings, engine_worker)
    win.set_document_session(DocumentSession(*rich_project(tmp_path), win))
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=2000)
    wait_for_frames(qtbot, win.player_sync)
    yield win
    win.player.pause()
    win.close()
    win.deleteLater()


def press(qtbot, key, modifiers=NONE) -> None:
    """A key pressed by the user: it goes to whatever widget has the keyboard focus."""
    qtbot.keyClick(QApplication.focusWidget(), key, modifiers)


def selected_card(window):
    return window.timeline.card(window.session.selected_chunk_id)


# Focus ----------------------------------------------------------------------------------------------
def test_add_chunk_puts_the_keyboard_in_the_new_chunks_prompt(qtbot, window):
    first = window.timeline.cards()[0]
    first.prompt.setFocus()  # typing in chunk 1 when Add Chunk is pressed
    press(qtbot, Qt.Key.Key_N, CTRL | SHIFT)
    card = selected_card(window)
    assert card is not first and card.prompt.hasFocus()
    qtbot.keyClicks(QApplication.focusWidget(), "the ball leaps")
    assert window.session.project.shots[0].chunks[1].prompt == "the ball leaps"
    assert first.model.prompt == "a red ball falls"  # the previous chunk's prompt is untouched


def test_the_plus_button_adds_a_chunk_ready_to_type(qtbot, window):
    group = window.timeline.group(window.session.project.shots[1].id)
    window.player.setFocus()
    qtbot.mouseClick(group.add_button, Qt.MouseButton.LeftButton)
    shot = window.session.project.shots[1]
    assert len(shot.chunks) == 3 and window.timeline.card(shot.chunks[2].id).prompt.hasFocus()
    looping, playing = window.player.is_looping(), window.player.is_playing()
    qtbot.keyClicks(QApplication.focusWidget(), "a slow loop")
    assert shot.chunks[2].prompt == "a slow loop"
    assert (window.player.is_looping(), window.player.is_playing()) == (looping, playing)


def test_insert_chunk_and_new_shot_also_hand_the_keyboard_to_the_new_prompt(qtbot, window):
    window.timeline.card(window.session.project.shots[0].chunks[1].id).prompt.setFocus()
    press(qtbot, Qt.Key.Key_Escape)
    press(qtbot, Qt.Key.Key_Insert)
    shot = window.session.project.shots[0]
    assert len(shot.chunks) == 5 and window.timeline.card(shot.chunks[1].id).prompt.hasFocus()
    press(qtbot, Qt.Key.Key_N, CTRL | ALT)
    assert len(window.session.project.shots) == 4 and selected_card(window).prompt.hasFocus()


def test_esc_leaves_a_field_for_the_storyboard_and_never_stops_a_run(qtbot, window):
    stopped = []
    window.action_set["generate.cancel"].setEnabled(True)  # as while a run is going
    window.action_set["generate.cancel"].triggered.connect(lambda: stopped.append(True))
    card = window.timeline.cards()[1]
    for field in (card.prompt, card.seed, window.timeline.strip.groups[0].name_edit):
        field.setFocus()
        press(qtbot, Qt.Key.Key_Escape)
        assert window.timeline.strip.hasFocus() and not stopped
    press(qtbot, Qt.Key.Key_Escape)  # outside a field, Esc is Stop again
    assert stopped == [True]
