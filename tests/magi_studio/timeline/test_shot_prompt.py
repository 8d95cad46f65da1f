"""The shot prompt field in a shot's header: typing edits the shot's prompt (one undo step per burst), the
shot's generated chunks go stale, and each card says what it adds and what the engine receives."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyle, QStyleOptionFrame

from magi_studio.document.model import ProjectSettings, joined_prompt, new_project
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


def test_the_shot_prompt_field_is_usable_in_a_one_chunk_shot_at_1366x768(qtbot, no_leaked_windows, isolated_settings,
                                                                          engine_worker, tmp_path):
    window = MainWindow(isolated_settings, engine_worker)
    window.set_document_session(DocumentSession(new_project(ProjectSettings(model="tiny", width=64, height=64)),
                                                ProjectStore.create(tmp_path / "Film"), window))
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    group = window.timeline.strip.groups[0]
    field = group.prompt_edit
    # its whole placeholder shows (so does as much typed text), not "Shot prom…", at every zoom level
    needed = field.fontMetrics().horizontalAdvance(field.placeholderText()) + 4  # + QLineEdit's own margins

    def room() -> int:  # for text, inside the field's frame and padding
        option = QStyleOptionFrame()
        field.initStyleOption(option)
        return field.style().subElementRect(QStyle.SubElement.SE_LineEditContents, option, field).width()

    try:
        for level in range(len(ZOOM_LEVELS)):
            window.timeline.set_zoom(level)
            qtbot.waitUntil(lambda: room() >= needed, timeout=2000)
            assert group.rect().contains(field.geometry()) and field.geometry().right() < group.start_box.x(), level
            card = group.cards[0]  # the cards start at the shot's start, however wide its header
            assert card.x() - group.contentsRect().x() < 16 and group.add_button.x() == card.geometry().right() + 1 + \
                group.row.spacing(), level
    finally:
        window.close()
        window.deleteLater()


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
