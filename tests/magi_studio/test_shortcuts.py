"""The keyboard in the real main window: a new chunk's prompt takes the keys, plain-key shortcuts never fire
while a text field has the focus, Esc leaves the field; every playback and editing shortcut, pressed as
the user presses it (QTest key clicks on the focused widget of the shown window), and what it does."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from magi_studio.main_window import MainWindow
from magi_studio.timeline.view import DEFAULT_ZOOM, ZOOM_LEVELS
from tests.magi_studio.document.fakes import rich_project
from tests.magi_studio.timeline.helpers import wait_for_frames

CTRL, SHIFT, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def window(qtbot, show_main_window, tmp_path):
    """The main window on a three-shot project (shots of 4, 2 and 2 chunks; the first 6 generated)."""
    win = show_main_window(*rich_project(tmp_path), size=(1400, 900))
    wait_for_frames(qtbot, win.player_sync)
    return win


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
    press(qtbot, Qt.Key.Key_N, CTRL | ALT)  # a new shot: its shot prompt first (subject and style)
    shot = window.session.project.shot(window.session.selected_shot_id)
    assert len(window.session.project.shots) == 4 and window.timeline.group(shot.id).prompt_edit.hasFocus()
    qtbot.keyClicks(QApplication.focusWidget(), "a beach at dawn")
    press(qtbot, Qt.Key.Key_Escape)
    assert shot.prompt == "a beach at dawn" and window.timeline.strip.hasFocus()


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


# Every declared shortcut reaches its action -----------------------------------------------------------
#: Shortcuts whose action opens a modal file dialog or closes the window: their keys are checked by
#: test_menus_and_toolbar_are_rendered_from_the_declarations, their effect elsewhere (test_studio.py).
NOT_PRESSED = {"edit.reference_image", "file.quit", "file.open", "file.save_as", "file.export", "edit.settings"}


def test_every_declared_shortcut_triggers_its_action_in_the_window(qtbot, window):
    from PySide6.QtGui import QKeySequence

    from magi_studio.actions import ACTIONS

    pressed = 0
    for spec in ACTIONS:
        if spec.id in NOT_PRESSED:
            continue
        action = window.action_set[spec.id]
        for sequence in spec.key_sequences():
            window.player.setFocus()
            action.setEnabled(True)  # the key is under test here, not what the selection allows
            fired = []
            action.triggered.connect(lambda *_: fired.append(True))
            combo = sequence[0]
            qtbot.keyClick(QApplication.focusWidget(), combo.key(), combo.keyboardModifiers())
            action.triggered.disconnect()
            assert fired, f"{spec.id}: {sequence.toString(QKeySequence.SequenceFormat.PortableText)} did nothing"
            pressed += 1
            for dialog in QApplication.topLevelWidgets():
                if dialog is not window and dialog.isVisible() and dialog.objectName() == "ShortcutsDialog":
                    dialog.close()
    assert pressed >= 40


# Playback keys ----------------------------------------------------------------------------------------
def test_space_jkl_shuttle_and_k_stops(qtbot, window):
    player = window.player
    player.set_fps(6)  # a slow clock: 8x never reaches the end between two key presses on a loaded machine
    player.setFocus()
    press(qtbot, Qt.Key.Key_Space)
    assert player.playback_rate == 1
    press(qtbot, Qt.Key.Key_Space)
    assert not player.is_playing()
    for rate in (1, 2, 4, 8, 8):
        press(qtbot, Qt.Key.Key_L)
        assert player.playback_rate == rate
    press(qtbot, Qt.Key.Key_K)
    assert not player.is_playing() and player.playback_rate == 0
    player.seek(100)
    for rate in (-1, -2, -4):
        press(qtbot, Qt.Key.Key_J)
        assert player.playback_rate == rate
    qtbot.waitUntil(lambda: player.current_frame < 96, timeout=3000)  # it really goes backwards
    press(qtbot, Qt.Key.Key_L)  # the other way: forward at normal speed again
    assert player.playback_rate == 1
    press(qtbot, Qt.Key.Key_K)
    assert not player.is_playing() and window.action_set["playback.play"].text() == "&Play"


def test_arrows_home_end_step_frames_and_chunks(qtbot, window):
    player = window.player
    player.setFocus()
    player.seek(30)
    press(qtbot, Qt.Key.Key_Right)
    press(qtbot, Qt.Key.Key_Right)
    press(qtbot, Qt.Key.Key_Left)
    assert player.current_frame == 31
    press(qtbot, Qt.Key.Key_Right, SHIFT)  # one chunk: 24 frames, to the next chunk's start
    assert player.current_frame == 48
    press(qtbot, Qt.Key.Key_Right, SHIFT)
    assert player.current_frame == 72
    press(qtbot, Qt.Key.Key_Left, SHIFT)
    assert player.current_frame == 48
    press(qtbot, Qt.Key.Key_End)
    assert player.current_frame == player.frame_count - 1 == 143
    press(qtbot, Qt.Key.Key_Home)
    assert player.current_frame == 0
    assert window.session.selected_chunk_id == window.session.project.shots[0].chunks[0].id  # the card follows


def test_i_o_mark_the_range_that_loop_plays_and_alt_x_clears_it(qtbot, window):
    player = window.player
    player.setFocus()
    player.seek(30)
    press(qtbot, Qt.Key.Key_I)
    player.seek(80)
    press(qtbot, Qt.Key.Key_O)
    assert player.in_out.frames == (30, 81) and player.in_out.chunks == (1, 3)
    assert player.transport.in_out.isVisible()
    press(qtbot, Qt.Key.Key_I, SHIFT)  # go to the in mark
    assert player.current_frame == 30
    press(qtbot, Qt.Key.Key_O, SHIFT)  # and to the out mark
    assert player.current_frame == 80
    press(qtbot, Qt.Key.Key_Slash, CTRL)  # Loop
    assert player.is_looping() and window.action_set["playback.loop"].isChecked()
    player.set_fps(240)
    seen = []
    player.frameChanged.connect(seen.append)
    press(qtbot, Qt.Key.Key_Space)
    # Wrapped from the out mark back to the in mark. A busy machine makes the player drop frames to keep
    # time, so the frame after the wrap need not be the in mark itself: a step backwards is the wrap.
    qtbot.waitUntil(lambda: any(later < earlier for earlier, later in zip(seen, seen[1:])), timeout=10000)
    press(qtbot, Qt.Key.Key_K)
    assert 30 <= min(seen) and max(seen) <= 80
    press(qtbot, Qt.Key.Key_X, ALT)
    assert player.in_out is None and not player.transport.in_out.isVisible()


def test_undo_and_both_redo_keys(qtbot, window):
    session = window.session
    window.timeline.strip.setFocus()
    press(qtbot, Qt.Key.Key_N, CTRL | SHIFT)
    press(qtbot, Qt.Key.Key_Escape)
    count = len(session.project.shots[0].chunks)
    for redo in ((Qt.Key.Key_Z, CTRL | SHIFT), (Qt.Key.Key_Y, CTRL)):
        press(qtbot, Qt.Key.Key_Z, CTRL)
        assert len(session.project.shots[0].chunks) == count - 1
        press(qtbot, *redo)
        assert len(session.project.shots[0].chunks) == count


# Typing is typing ---------------------------------------------------------------------------------------
def test_typing_the_shortcut_letters_in_a_prompt_types_them_and_toggles_nothing(qtbot, window):
    player = window.player
    player.seek(50)
    card = window.timeline.card(window.session.project.shots[0].chunks[2].id)
    card.prompt.setFocus()
    card.prompt.selectAll()
    state = (player.current_frame, player.is_playing(), player.is_looping(), player.in_out)
    undo_count = window.session.undo_stack.count()
    text = "Jump kick; look in, look out. I O J K L"
    qtbot.keyClicks(QApplication.focusWidget(), text)
    for key, modifiers in ((Qt.Key.Key_Space, NONE), (Qt.Key.Key_Home, NONE), (Qt.Key.Key_End, NONE),
                           (Qt.Key.Key_Left, NONE), (Qt.Key.Key_Right, NONE), (Qt.Key.Key_Left, SHIFT),
                           (Qt.Key.Key_Insert, NONE), (Qt.Key.Key_I, SHIFT)):
        press(qtbot, key, modifiers)
    assert card.prompt.hasFocus()
    assert (player.current_frame, player.is_playing(), player.is_looping(), player.in_out) == state
    assert len(window.session.project.shots[0].chunks) == 4  # Ins inserted no chunk
    assert window.session.project.shots[0].chunks[2].prompt.startswith(text[:-1])
    assert window.session.undo_stack.count() == undo_count + 1  # one burst of typing
    seed = card.seed
    seed.setFocus()
    seed.selectAll()
    qtbot.keyClicks(seed, "12")
    press(qtbot, Qt.Key.Key_Up)  # the seed field's own key: one up
    assert seed.text() == "13"
    assert (player.current_frame, player.is_playing(), player.is_looping(), player.in_out) == state


def test_k_held_down_makes_j_and_l_step_one_frame(qtbot, window):
    player = window.player
    player.setFocus()
    player.seek(40)
    press(qtbot, Qt.Key.Key_L)
    assert player.is_playing()
    qtbot.keyPress(QApplication.focusWidget(), Qt.Key.Key_K)  # K down: stops
    assert not player.is_playing()
    frame = player.current_frame
    press(qtbot, Qt.Key.Key_J)
    press(qtbot, Qt.Key.Key_J)
    press(qtbot, Qt.Key.Key_L)
    assert player.current_frame == frame - 1 and not player.is_playing()
    qtbot.keyRelease(QApplication.focusWidget(), Qt.Key.Key_K)
    press(qtbot, Qt.Key.Key_L)  # K up: L shuttles again
    assert player.playback_rate == 1
    press(qtbot, Qt.Key.Key_K)
    window.timeline.strip.setFocus()  # released while another widget has the keyboard: heard by the window
    qtbot.keyPress(QApplication.focusWidget(), Qt.Key.Key_K)
    qtbot.keyRelease(QApplication.focusWidget(), Qt.Key.Key_K)
    press(qtbot, Qt.Key.Key_L)
    assert player.playback_rate == 1


def test_frame_numbers_instead_of_timecode_is_a_remembered_choice(qtbot, window, isolated_settings):
    transport = window.player.transport
    window.player.seek(71)
    assert (transport.caption.text(), transport.timecode.text()) == ("TC", "00:00:02:23")
    window.action_set["view.frame_numbers"].trigger()
    assert (transport.caption.text(), transport.timecode.text(), transport.duration.text()) == ("Frame", "72", "/ 144")
    assert isolated_settings.frame_numbers
    second = MainWindow(isolated_settings, window.worker)
    assert second.player.transport.frame_counter and second.action_set["view.frame_numbers"].isChecked()
    second.deleteLater()


def test_the_storyboard_zoom_is_remembered_between_sessions(qtbot, window, isolated_settings):
    assert window.timeline.zoom_level == DEFAULT_ZOOM and isolated_settings.timeline_zoom == DEFAULT_ZOOM
    written = []
    isolated_settings.changed.connect(written.append)
    window.action_set["view.zoom_out"].trigger()
    window.action_set["view.zoom_out"].trigger()
    assert window.timeline.zoom_level == DEFAULT_ZOOM + 2
    # Written once the zoom settles (a Ctrl+wheel passes several levels; one write, not one per level).
    qtbot.waitUntil(lambda: isolated_settings.timeline_zoom == DEFAULT_ZOOM + 2)
    assert written.count("timeline_zoom") == 1
    window.action_set["view.zoom_in"].trigger()
    window.close()  # at once, before the zoom settles: closing writes it
    assert isolated_settings.timeline_zoom == DEFAULT_ZOOM + 1
    second = MainWindow(isolated_settings, window.worker)
    assert second.timeline.zoom_level == DEFAULT_ZOOM + 1
    second.deleteLater()
    isolated_settings.store.setValue("timeline/zoom", 99)  # a level this version lacks: the last one
    third = MainWindow(isolated_settings, window.worker)
    assert third.timeline.zoom_level == len(ZOOM_LEVELS) - 1
    third.deleteLater()
