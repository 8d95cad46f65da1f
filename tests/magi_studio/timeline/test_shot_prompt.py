"""The shot prompt field in a shot's header: typing edits the shot's prompt (one undo step per burst), the
shot's generated chunks go stale, and each card says what it adds and what the engine receives."""

from __future__ import annotations

import pytest

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionFrame

from magi_studio.document.commands import AddShot, DeleteChunk
from magi_studio.document.model import ProjectSettings, joined_prompt, new_project, new_shot
from magi_studio.document.store import ProjectStore
from magi_studio.main_window import MainWindow
from magi_studio.timeline.view import ZOOM_LEVELS
from magi_studio.document_session import DocumentSession
from tests.magi_studio.timeline.conftest import PROMPTS


def test_typing_a_shot_prompt_is_one_undoable_edit_that_makes_the_shot_stale(qtbot, editor):
    shot = editor.session.project.shots[0]
    group = editor.timeline.group(shot.id)
    assert group.prompt_edit.text() == "" and group.prompt_edit.isVisible()
    assert [c.model.state for c in editor.timeline.cards()] == ["done"] * 3
    group.prompt_edit.setFocus()
    qtbot.keyClicks(group.prompt_edit, "A red ball")
    assert shot.prompt == "A red ball"
    assert [c.model.state for c in editor.timeline.cards()] == ["stale"] * 3
    card = editor.timeline.cards()[1]
    assert card.prompt.toPlainText() == PROMPTS[1]  # the card shows what the chunk adds
    assert card.prompt.placeholderText() == "What this chunk adds to the shot prompt…"
    assert card.prompt.toolTip() == f"The engine receives: {joined_prompt('A red ball', PROMPTS[1])}"
    qtbot.keyClick(group.prompt_edit, Qt.Key.Key_Tab)  # leaving the field ends the typing burst
    editor.session.undo_stack.undo()
    assert shot.prompt == "" and group.prompt_edit.text() == ""
    assert [c.model.state for c in editor.timeline.cards()] == ["done"] * 3
    assert card.prompt.toolTip() == ""


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_a_one_chunk_shot_is_as_wide_as_its_card_and_its_prompt_expands_to_be_typed(
        qtbot, no_leaked_windows, isolated_settings, engine_worker, tmp_path, size):
    window = MainWindow(isolated_settings, engine_worker)
    session = DocumentSession(new_project(ProjectSettings(model="tiny", width=64, height=64)),
                              ProjectStore.create(tmp_path / "Film"), window)
    window.set_document_session(session)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    group = window.timeline.strip.groups[0]
    field = group.prompt_edit

    def room() -> int:  # for text, inside the field's frame and padding
        option = QStyleOptionFrame()
        field.initStyleOption(option)
        return field.style().subElementRect(QStyle.SubElement.SE_LineEditContents, option, field).width()

    try:
        for level in range(len(ZOOM_LEVELS)):
            window.timeline.set_zoom(level)
            card = group.cards[0]
            # compact: the card, "+" and a small margin (the full header was 590 px, whatever the card's width)
            # (at the smallest zoom a few letters of the name, the prompt and the actions button set the floor)
            qtbot.waitUntil(lambda: group.width() <= max(card.width() + 64, 155), timeout=2000)
            assert group.compact and group.rect().contains(field.geometry()) and field.isVisible(), level
            assert not group.negative_edit.isVisible() and not group.start_box.isVisible()
            # on the header's one line (every shot's cards on one level), in the room the cards leave
            assert group.name_edit.geometry().right() < field.x() < field.geometry().right() < group.more.x(), level
            placed = QRect(card.mapTo(group, QPoint(0, 0)), card.size())  # in its shot (the cards are in a row)
            assert field.width() >= min(card.width() - 90, 40) and field.y() < placed.y(), level
            assert placed.x() - group.contentsRect().x() < 16 and group.add_button.x() == placed.right() + 1 + \
                group.row.spacing(), level
        # Clicking the prompt expands the full header while it is edited: the prompt at its full width (its
        # whole placeholder shows), Not: and the start mode; typing goes to the shot; leaving it folds it again.
        width = group.width()
        qtbot.mouseClick(field, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not group.compact and group.negative_edit.isVisible(), timeout=2000)
        needed = field.fontMetrics().horizontalAdvance(field.placeholderText()) + 4  # + QLineEdit's own margins
        qtbot.waitUntil(lambda: room() >= needed, timeout=2000)
        assert field.hasFocus() and group.start_box.isVisible() and group.width() > width
        assert field.geometry().right() < group.negative_edit.x() < group.start_box.x()
        qtbot.keyClicks(field, "A red ball")
        assert session.project.shots[0].prompt == "A red ball"
        qtbot.keyClick(field, Qt.Key.Key_Tab)  # to Not: the header stays expanded
        assert group.negative_edit.hasFocus() and not group.compact
        window.timeline.strip.setFocus()
        qtbot.waitUntil(lambda: group.compact and group.width() == width, timeout=2000)
        assert field.text() == "A red ball" and "A red ball" in field.toolTip()
        assert field.cursorPosition() == 0  # it shows the prompt's start, not its end
        assert group.name_edit.width() >= 60  # "Shot 1" whole, at the smallest zoom too
    finally:
        window.close()
        window.deleteLater()


def test_a_shot_whose_cards_are_wider_than_its_header_keeps_the_full_header(qtbot, app_theme, editor):
    group = editor.timeline.group(editor.session.project.shots[0].id)  # three chunks
    assert not group.compact and group.negative_edit.isVisible() and group.start_box.isVisible()
    assert group.prompt_edit.y() == group.name_edit.y()  # one line
    editor.session.push(AddShot(new_shot(editor.session.project, name="Short", prompt=PROMPTS[0])))
    short = editor.timeline.group(editor.session.project.shots[-1].id)
    qtbot.waitUntil(lambda: short.compact and short.cards and short.cards[0].isVisible(), timeout=2000)
    assert short.height() == group.height()  # the compact header is one line too: every card on one level
    assert short.mapTo(editor.timeline, short.cards[0].pos()).y() == group.mapTo(editor.timeline,
                                                                                 group.cards[0].pos()).y()


def test_a_shot_name_is_measured_in_the_bold_font_it_is_drawn_in(qtbot, editor):
    # It was measured as the group was made, before the timeline's style sheet gave it its bold font: 5 px narrow,
    # until something measured it again (a take previewed), when the prompt beside it moved 5 px.
    editor.session.push(AddShot(new_shot(editor.session.project, name="A much longer shot name")))
    group = editor.timeline.group(editor.session.project.shots[-1].id)
    qtbot.waitUntil(group.isVisible, timeout=2000)
    assert group.name_edit.font().bold()
    drawn = group.name_edit.fontMetrics().horizontalAdvance("A much longer shot name") + 22
    assert group._name_width == min(220, max(60, drawn))


def test_typing_a_negative_prompt_edits_the_shot_and_a_distilled_model_disables_the_field(qtbot, editor):
    shot = editor.session.project.shots[0]
    group = editor.timeline.group(shot.id)
    field = group.negative_edit
    assert field.isVisible() and field.isEnabled() and field.placeholderText() == "Not: …"
    field.setFocus()
    qtbot.keyClicks(field, "blurry")
    assert shot.negative_prompt == "blurry" and shot.prompt == ""
    assert [c.model.state for c in editor.timeline.cards()] == ["stale"] * 3
    qtbot.keyClick(field, Qt.Key.Key_Tab)
    editor.session.undo_stack.undo()  # the burst is one step
    assert shot.negative_prompt == "" and field.text() == ""
    assert [c.model.state for c in editor.timeline.cards()] == ["done"] * 3

    editor.timeline.set_uses_guidance(False)
    assert not field.isEnabled() and "no effect" in field.toolTip()
    editor.timeline.set_uses_guidance(True)
    assert field.isEnabled() and "steers away" in field.toolTip()


def test_a_compact_shot_given_more_chunks_gets_its_full_header_back_as_it_was(qtbot, editor):
    group = editor.timeline.group(editor.session.project.shots[0].id)  # three chunks: the full header
    widths = (group.prompt_edit.width(), group.negative_edit.width(), group.width())
    shot = editor.session.project.shots[0]
    for chunk in list(shot.chunks[1:]):
        editor.session.push(DeleteChunk(shot.id, chunk.id))
    qtbot.waitUntil(lambda: group.compact, timeout=2000)
    for _ in range(2):
        editor.session.undo_stack.undo()
    qtbot.waitUntil(lambda: not group.compact and group.width() == widths[2], timeout=2000)
    assert group.prompt_edit.width() == widths[0] and abs(group.negative_edit.width() - widths[1]) <= 4  # the name
    # (refitted to the styled font) may differ by a pixel or two; the fields do not take the room after them
