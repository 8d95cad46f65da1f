"""The shot prompt field in a shot's header: typing edits the shot's prompt (one undo step per burst), the
shot's generated chunks go stale, and each card says what it adds and what the engine receives."""

from __future__ import annotations

from PySide6.QtCore import Qt

from magi_studio.document.model import joined_prompt
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
