"""Two takes side by side in the real main window: entered from the takes view (the selected take beside the
active one, or two takes selected with Ctrl+click), frame-locked (play, scrub, step and chunk steps move both
pictures to the same frame of their own take), and left with Esc or the same button."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from magi_studio.document.model import resolve_take
from magi_studio.document.take_commands import DeleteTake
from tests.magi_studio.document.fakes import rich_project
from tests.magi_studio.timeline.helpers import wait_for_frames


@pytest.fixture
def window(qtbot, show_main_window, tmp_path):
    """The main window on rich_project: Shot 1 has Take 1 (whole shot) and Take 2 (from chunk 3, active)."""
    win = show_main_window(*rich_project(tmp_path), size=(1400, 900))
    wait_for_frames(qtbot, win.player_sync)
    return win


def take(window, name):
    return next(t for t in window.session.project.shots[0].takes if t.name == name)


def stored_frames(window, take_id) -> list[np.ndarray]:
    shot, project, store = window.session.project.shots[0], window.session.project, window.session.store
    return [store.read_frames(project.results[r]) for r in resolve_take(shot, take_id)]


def shown_b(qtbot, window, frame: int) -> np.ndarray:
    """The picture take B shows once its frames are decoded, as RGB."""
    compare = window.side_by_side
    qtbot.waitUntil(lambda: compare.view.shown_frame is not None and compare.view.shown_frame.image is not None,
                    timeout=5000)
    shown = compare.view.shown_frame
    assert shown.frame == frame
    image = shown.image.convertToFormat(shown.image.Format.Format_RGB888)
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[
        :, :image.width() * 3].reshape(image.height(), image.width(), 3)


def test_the_selected_take_and_the_active_one_side_by_side_frame_locked(qtbot, window):
    takes, player, compare = window.takes_view, window.player, window.side_by_side
    window.show_takes()
    first, second = take(window, "Take 1"), take(window, "Take 2")
    takes.tree.setCurrentItem(takes.item(first.id))  # Take 1 previewed in the player: A
    assert takes.side_button.isEnabled() and player.side_view is None
    qtbot.mouseClick(takes.side_button, Qt.MouseButton.LeftButton)
    assert compare.active and player.side_view is compare.view and compare.view.isVisible()
    assert takes.side_button.isChecked()
    assert player.view.caption == "A · Take 1" and compare.view.caption == "B · Take 2 (active)"
    # The two pictures sit next to each other, as wide as each other.
    assert compare.view.geometry().left() >= player.view.geometry().right()
    assert abs(compare.view.width() - player.view.width()) <= 4

    a_frames, b_frames = stored_frames(window, first.id), stored_frames(window, second.id)
    for move, frame in ((lambda: player.seek(60), 60), (lambda: player.step(1), 61),
                        (lambda: player.step_chunk(1), 72), (lambda: player.transport.scrub.scrubbed.emit(5), 5)):
        move()
        assert player.current_frame == frame
        chunk, local = divmod(frame, 24)
        assert np.array_equal(shown_b(qtbot, window, frame), b_frames[chunk][local])
        wait_for_frames(qtbot, window.player_sync)
        assert np.array_equal(player.store.frames(chunk)[local], a_frames[chunk][local])
    player.play()  # playing moves both
    qtbot.waitUntil(lambda: player.current_frame > 12, timeout=5000)
    player.pause()
    assert compare.view.shown_frame.frame == player.current_frame

    window.player.setFocus()
    qtbot.keyClick(window.player, Qt.Key.Key_Escape)  # Esc leaves (and stops nothing)
    assert not compare.active and player.side_view is None and not compare.view.isVisible()
    assert player.view.caption == "" and not takes.side_button.isChecked()


def test_two_takes_selected_with_ctrl_click_and_the_button_again_leaves(qtbot, window):
    takes, compare = window.takes_view, window.side_by_side
    window.show_takes()
    first, second = take(window, "Take 1"), take(window, "Take 2")
    takes.tree.setCurrentItem(takes.item(second.id))  # the active take, alone: nothing to compare it with
    assert takes.side_by_side_target() == ("", "")
    assert not takes.side_button.isEnabled()
    rect = takes.tree.visualItemRect(takes.item(first.id))
    qtbot.mouseClick(takes.tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     rect.center())
    assert {i.text(0) for i in takes.tree.selectedItems()} == {"Take 1", "Take 2"}
    assert takes.side_by_side_target() == (window.session.project.shots[0].id, second.id)  # B: the other one
    qtbot.mouseClick(takes.side_button, Qt.MouseButton.LeftButton)
    assert compare.active and compare.take_id == second.id
    qtbot.mouseClick(takes.side_button, Qt.MouseButton.LeftButton)
    assert not compare.active and window.player.side_view is None


def test_deleting_the_compared_take_ends_the_comparison(qtbot, window):
    takes, compare = window.takes_view, window.side_by_side
    first, second = take(window, "Take 1"), take(window, "Take 2")
    shot = window.session.project.shots[0]
    assert compare.show_takes(shot.id, first.id)
    window.session.try_push(DeleteTake(shot.id, first.id))
    assert not compare.active and window.player.side_view is None
    assert second.id in {t.id for t in shot.takes} and not takes.side_button.isChecked()
