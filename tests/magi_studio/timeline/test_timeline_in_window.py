"""The storyboard editor inside the main window: docks, the editing shortcuts and Undo/Redo through the
window's actions, keys that mean "select" in the timeline and "step" in the player, one history for typed
prompts, the title's unsaved mark, the error banner for a bad drop, and swapping in another project."""

from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import QObject, Qt, Signal

from magi_studio.controllers.run_state import QueueItem
from magi_studio.document.commands import SetPrompt
from magi_studio.timeline.view import DEFAULT_ZOOM, ZOOM_LEVELS
from magi_studio.document_session import DocumentSession
from tests.magi_studio.document.fakes import rich_project
from magi_studio.timeline import menus
from tests.magi_studio.timeline.helpers import drop, file_mime, menu_action


@pytest.fixture
def window(show_main_window, storyboard):
    return show_main_window(*storyboard)


def chunk_ids(window, shot: int = 0) -> list[str]:
    return [c.id for c in window.session.project.shots[shot].chunks]


def test_docks_and_view_toggles(qtbot, window):
    for dock in (window.timeline_dock, window.takes_dock, window.history_dock):
        assert dock.widget() is not None and window.dockWidgetArea(dock) != Qt.DockWidgetArea.NoDockWidgetArea
    assert window.dockWidgetArea(window.timeline_dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    assert window.timeline.isVisible() and window.timeline.cards()[0].isVisible()
    window.action_set["view.storyboard"].trigger()
    assert not window.timeline_dock.isVisible()
    window.action_set["view.storyboard"].trigger()
    assert window.timeline_dock.isVisible() and window.action_set["view.storyboard"].isChecked()
    window.action_set["generate.takes"].trigger()
    assert window.takes_view.isVisible()


def test_editing_shortcuts_and_undo_redo_through_the_window(qtbot, window):
    before = copy.deepcopy(window.session.project)
    strip, ids = window.timeline.strip, chunk_ids(window)
    qtbot.mouseClick(window.timeline.card(ids[1]).index_label, Qt.MouseButton.LeftButton)
    assert strip.hasFocus()
    qtbot.keyClick(strip, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(chunk_ids(window)) == 4 and chunk_ids(window)[2] == window.session.selected_chunk_id
    new_prompt = window.timeline.card(chunk_ids(window)[2]).prompt
    assert new_prompt.hasFocus()  # ready to type the new chunk's prompt; Esc gives the keys back
    qtbot.keyClick(new_prompt, Qt.Key.Key_Escape)
    assert strip.hasFocus()
    qtbot.keyClick(strip, Qt.Key.Key_Insert)
    assert len(chunk_ids(window)) == 5 and chunk_ids(window)[2] == window.session.selected_chunk_id
    qtbot.keyClick(window.timeline.card(chunk_ids(window)[2]).prompt, Qt.Key.Key_Escape)
    qtbot.keyClick(strip, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(chunk_ids(window)) == 6
    qtbot.keyClick(strip, Qt.Key.Key_Delete)
    assert len(chunk_ids(window)) == 5
    qtbot.keyClick(strip, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)  # split at the selection
    assert len(window.session.project.shots) == 2
    after = copy.deepcopy(window.session.project)
    assert window.isWindowModified() and window.action_set["edit.undo"].text() == "&Undo Split shot"
    for _ in range(5):
        qtbot.keyClick(strip, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.session.project == before and not window.isWindowModified()
    for _ in range(5):
        qtbot.keyClick(strip, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.session.project == after


def test_arrow_keys_select_in_the_timeline_and_step_frames_in_the_player(qtbot, window):
    strip, ids, player = window.timeline.strip, chunk_ids(window), window.player
    qtbot.mouseClick(window.timeline.card(ids[0]).index_label, Qt.MouseButton.LeftButton)
    qtbot.keyClick(strip, Qt.Key.Key_Right)
    assert window.session.selected_chunk_id == ids[1] and player.current_frame == 24  # the playhead follows
    qtbot.keyClick(strip, Qt.Key.Key_End)
    assert window.session.selected_chunk_id == ids[2] and player.current_frame == 48
    player.setFocus()
    qtbot.keyClick(player, Qt.Key.Key_Right)
    assert player.current_frame == 49 and window.session.selected_chunk_id == ids[2]
    qtbot.keyClick(player, Qt.Key.Key_Home)
    assert player.current_frame == 0 and window.session.selected_chunk_id == ids[0]  # the card follows


def test_undo_while_typing_a_prompt_undoes_the_burst_in_the_project_history(qtbot, window):
    card = window.timeline.card(chunk_ids(window)[0])
    card.prompt.setFocus()
    card.prompt.moveCursor(card.prompt.textCursor().MoveOperation.End)
    qtbot.keyClicks(card.prompt, " slowly")
    assert window.session.project.shots[0].chunks[0].prompt == "a red ball falls slowly"
    qtbot.keyClick(card.prompt, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.session.project.shots[0].chunks[0].prompt == "a red ball falls"
    assert card.prompt.toPlainText() == "a red ball falls" and card.prompt.hasFocus()
    qtbot.keyClick(card.prompt, Qt.Key.Key_Escape)  # leaves the field; never stops a generation
    assert not card.prompt.hasFocus()


def test_a_bad_drop_is_reported_in_the_window_banner(qtbot, window, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    card = window.timeline.cards()[0]
    drop(window.timeline.strip, card.mapTo(window.timeline.strip, card.rect().center()), file_mime(notes))
    assert window.error_banner.isVisible() and window.error_banner.title.text() == "Unusable input"
    assert "is not an image that can be read" in window.error_banner.body.text()
    assert window.session.undo_stack.count() == 0


def test_regenerate_is_enabled_once_a_controller_listens(qtbot, window):
    regenerate = window.action_set["generate.regenerate"]
    assert not regenerate.isEnabled()
    asked = []
    window.timeline.regenerateRequested.connect(lambda shot_id, chunk_id: asked.append(chunk_id))
    window.refresh_actions()
    assert regenerate.isEnabled()
    regenerate.trigger()
    assert asked == [window.session.selected_chunk_id]


def test_another_session_replaces_every_view(qtbot, window, tmp_path):
    project, store = rich_project(tmp_path)
    session = DocumentSession(project, store, window)
    window.set_document_session(session)
    assert window.windowTitle() == "Rich[*] — MAGI Studio"
    assert len(window.timeline.cards()) == 8 and [g.name_edit.text() for g in window.timeline.strip.groups] == \
        ["Shot 1", "Shot 2", "Shot 3"]
    assert window.takes_view.title.text() == "Takes of Shot 1" and window.history_view.stack() is session.undo_stack
    assert window.player.store.chunk_count == 6  # up to the last generated chunk
    assert window.preview_bar.isHidden()


def test_shortcuts_dialog_lists_the_editing_shortcuts(qtbot, window):
    shown = window.show_shortcuts().shortcut_texts()
    assert shown["Undo"] == "Ctrl+Z" and shown["Redo"] == "Ctrl+Shift+Z, Ctrl+Y" and shown["Delete Chunk"] == "Del"
    assert shown["Move Chunk Left"] == "Ctrl+Left" and shown["Split Shot at Chunk"] == "Ctrl+K"
    window._shortcuts_dialog.close()


class FakeGeneration(QObject):
    """The part of GenerationController (magi_studio.controllers.generation) the window wires to."""

    chunkJobState = Signal(str, str, str, float)
    busyShotsChanged = Signal(list)
    generatingChanged = Signal(bool)
    errorReported = Signal(object)
    noticeReported = Signal(str)
    queueNotice = Signal(str)
    resultFrames = Signal(str, object)
    queueChanged = Signal()
    completedChanged = Signal()
    progressChanged = Signal(object)
    runEnded = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.busy = [], []

    def generate_storyboard(self) -> None:
        self.calls.append(("storyboard",))

    def generate_shot(self, shot_id: str) -> None:
        self.calls.append(("shot", shot_id))

    def regenerate_from(self, shot_id: str, index: int) -> None:
        self.calls.append(("regenerate", shot_id, index))

    def generate_from(self, shot_id: str, index: int, stop_index: int | None = None) -> None:
        self.calls.append(("from", shot_id, index) + ((stop_index,) if stop_index is not None else ()))

    def queue(self) -> list:
        return []

    def failed_requests(self) -> list:
        return []

    def ended_requests(self) -> list:
        return []

    def completed(self) -> list:
        return []

    def is_paused(self) -> bool:
        return False

    def is_generating(self) -> bool:
        return bool(self.busy)

    def cancel(self) -> None:
        self.calls.append(("cancel",))

    def touches_busy_shot(self, command) -> bool:
        return getattr(command, "shot_id", None) in self.busy


def test_a_generation_controller_is_wired_to_actions_cards_and_undo(qtbot, window):
    generation, ids = FakeGeneration(), chunk_ids(window)
    shot_id = window.session.project.shots[0].id
    assert not window.action_set["generate.run"].isEnabled()
    window.attach_generation(generation)
    assert window.action_set["generate.run"].isEnabled() and window.action_set["generate.regenerate"].isEnabled()
    window.action_set["generate.run"].trigger()
    window.session.select(shot_id, ids[2])
    window.action_set["generate.regenerate"].trigger()  # the controller counts chunks by index
    assert generation.calls == [("storyboard",), ("regenerate", shot_id, 2)]
    generation.chunkJobState.emit(shot_id, ids[1], "denoising", 0.25)
    generation.chunkJobState.emit(shot_id, ids[2], "queued", 0.0)
    assert [c.badge.text() for c in window.timeline.cards()] == ["Done", "25%", "Queued"]
    generation.chunkJobState.emit(shot_id, ids[1], "", 0.0)  # idle again: the document's state
    assert window.timeline.cards()[1].badge.text() == "Done"
    window.session.push(SetPrompt(shot_id, ids[0], "a blue ball falls"))
    generation.busy = [shot_id]
    generation.generatingChanged.emit(True)
    generation.busyShotsChanged.emit([shot_id])
    assert not window.action_set["edit.undo"].isEnabled() and not window.history_view.isEnabled()
    window.undo()  # the shot being generated keeps its history until the run is over
    assert window.session.project.shots[0].chunks[0].prompt == "a blue ball falls"
    window.action_set["generate.cancel"].trigger()
    assert generation.calls[-1] == ("cancel",)
    generation.busy = []
    generation.generatingChanged.emit(False)
    generation.busyShotsChanged.emit([])
    window.undo()
    assert window.session.project.shots[0].chunks[0].prompt == "a red ball falls"


def test_generate_from_waits_for_the_chunks_before_it_with_a_tip_saying_so(qtbot, window, tmp_path):
    project, store = rich_project(tmp_path)  # Shot 3 continues Shot 2 (generated) and has no frames yet
    window.set_document_session(DocumentSession(project, store, window))
    generation = FakeGeneration()
    window.attach_generation(generation)
    _, second, third = project.shots
    actions = [window.action_set[a] for a in ("generate.from", "generate.regenerate", "generate.variations")]
    entries = ("Generate From Here (Same Seed)", "Regenerate From Here (New Seed)")

    def shot_of(chunk):
        return next(s for s in project.shots if chunk in s.chunks)

    def offered(chunk) -> list[tuple[bool, str, str]]:
        window.session.select(shot_of(chunk).id, chunk.id)
        menu = menus.card_menu(window.timeline, window.timeline.card(chunk.id))
        shown = [(a.isEnabled(), a.toolTip(), a.statusTip()) for a in actions]
        shown += [(e.isEnabled(), e.toolTip(), e.statusTip()) for e in (menu_action(menu, text) for text in entries)]
        menu.deleteLater()
        return shown

    waiting = "Generate the chunks before it first: chunk 1 of Shot 3 is not generated yet."
    assert offered(third.chunks[1]) == [(False, waiting, waiting)] * 5
    ready = offered(third.chunks[0])  # its context, the end of Shot 2, is generated
    assert all(enabled and waiting not in tip for enabled, tip, _ in ready)
    assert ready[0][1:] == ("Generate From Chunk (Ctrl+G)", "Keep the chunks before the selected one; generate it "
                            "and the rest of its shot")
    window.session.select(second.id, second.chunks[-1].id)
    window.action_set["edit.add_chunk"].trigger()  # Shot 2 ends in a chunk with no frames: Shot 3 waits for it
    continued = ("Generate the chunks before it first: Shot 3 continues the shot before it, whose last chunks are "
                 "not generated yet.")
    assert offered(third.chunks[0]) == [(False, continued, continued)] * 5
    # A run makes Shot 2: a request queues behind it.
    generation.queue = lambda: [QueueItem(1, second.id, second.name, None, True)]
    generation.queueChanged.emit()
    assert offered(third.chunks[0]) == ready and offered(third.chunks[1])[:3] == ready[:3]
    generation.queue = lambda: []
    generation.generatingChanged.emit(False)
    assert offered(third.chunks[0]) == [(False, continued, continued)] * 5
    window.undo()
    assert offered(third.chunks[0]) == ready


def test_a_stale_card_regenerates_from_its_own_button(qtbot, window):
    generation, ids = FakeGeneration(), chunk_ids(window)
    shot_id = window.session.project.shots[0].id
    window.attach_generation(generation)
    cards = window.timeline.cards()
    sizes = [card.size() for card in cards]
    assert not any(card.regenerate.isVisible() for card in cards)  # every chunk is done
    window.session.push(SetPrompt(shot_id, ids[1], "a red ball bounces"))  # chunks 2 and 3 are stale now
    assert [c.badge.text() for c in cards] == ["Done", "Stale", "Stale"]
    assert [c.regenerate.isVisible() for c in cards] == [False, True, True]
    assert [card.size() for card in cards] == sizes  # the button moves nothing
    button = cards[1].regenerate
    assert button.text() == "Regenerate" and cards[1].picture.rect.contains(button.geometry())
    typing = cards[0].prompt
    typing.setFocus()
    qtbot.waitUntil(typing.hasFocus)
    qtbot.mouseMove(button)  # the pointer comes to the button (on top of the picture), then clicks it
    qtbot.waitUntil(button.underMouse)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert generation.calls == [("from", shot_id, 1)]  # Generate From Here (same seed), for that chunk
    assert window.session.selected_chunk_id == ids[1] and typing.hasFocus()  # typing goes on where it was
    for level in range(len(ZOOM_LEVELS)):  # narrower pictures: the icon alone, then nothing that spills over
        window.timeline.set_zoom(level)
        picture = cards[1].picture.rect
        assert not button.isVisible() or picture.contains(button.geometry()), level
        assert button.isVisible() or picture.width() < 48, level
    window.timeline.set_zoom(DEFAULT_ZOOM)
    assert button.isVisible() and button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextOnly
    window.undo()  # the prompt as its frames were made: done again
    assert [c.regenerate.isVisible() for c in cards] == [False, False, False]
    window.session.select(shot_id, ids[1])
    window.action_set["edit.insert_chunk"].trigger()  # an empty chunk before chunk 2: its context is missing
    behind = window.timeline.card(ids[1])
    assert behind.badge.text() == "Stale" and behind.regenerate.isVisible()
    qtbot.mouseMove(behind.regenerate)
    qtbot.mouseClick(behind.regenerate, Qt.MouseButton.LeftButton)
    assert generation.calls == [("from", shot_id, 1)]  # refused as the menu's entry is, with its sentence
    assert window.error_banner.isVisible()
    assert window.error_banner.body.text() == "Generate the chunks before it first: chunk 2 of Shot 1 is not generated yet."


def test_generate_in_out_range_generates_each_shot_the_range_touches(qtbot, window, tmp_path):
    project, store = rich_project(tmp_path)  # shots of 4, 2 and 2 chunks; the first 6 generated
    window.set_document_session(DocumentSession(project, store, window))
    generation = FakeGeneration()
    window.attach_generation(generation)
    first, second, _ = project.shots
    action, player = window.action_set["generate.in_out"], window.player
    assert action.text().replace("&", "") == "Generate In/Out Range"
    assert not action.isEnabled()  # no range marked yet
    player.setFocus()
    player.seek(60)  # Shot 1, chunk 3
    qtbot.keyClick(player, Qt.Key.Key_I)
    assert action.isEnabled()
    player.seek(4 * 24 + 3)  # Shot 2, chunk 1 (of 2)
    qtbot.keyClick(player, Qt.Key.Key_O)
    assert player.in_out.chunks == (2, 4)
    qtbot.keyClick(player, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    # exactly the chunks in the range, shot by shot in playing order, through Generate From (same seeds): Shot 1
    # from chunk 3 to its end, Shot 2 its chunk 1 alone (it stops before chunk 2, at the out mark)
    assert generation.calls == [("from", first.id, 2), ("from", second.id, 0, 1)]
    player.seek(5 * 24)
    qtbot.keyClick(player, Qt.Key.Key_O)  # out at Shot 2's last chunk: the shot to its end
    player.seek(4 * 24)
    qtbot.keyClick(player, Qt.Key.Key_I)  # the range now lies in Shot 2 alone
    window.action_set["generate.in_out"].trigger()
    assert generation.calls[2:] == [("from", second.id, 0)]
    player.seek(30)
    qtbot.keyClick(player, Qt.Key.Key_I)
    player.seek(2 * 24 + 10)
    qtbot.keyClick(player, Qt.Key.Key_O)  # chunks 2 and 3 of Shot 1's 4
    window.action_set["generate.in_out"].trigger()
    assert generation.calls[3:] == [("from", first.id, 1, 3)]
    qtbot.keyClick(player, Qt.Key.Key_X, Qt.KeyboardModifier.AltModifier)  # cleared: nothing to generate
    assert player.in_out is None and not action.isEnabled()


def test_the_first_run_puts_the_welcome_away_for_good(qtbot, window, isolated_settings):
    window.show_welcome()
    assert window.welcome.isVisible()
    generation = FakeGeneration()
    window.attach_generation(generation)
    generation.generatingChanged.emit(True)
    assert not window.welcome.isVisible() and not window.banner_area.isVisible()
    assert isolated_settings.welcome_dismissed  # not offered again at the next start
    generation.generatingChanged.emit(False)
    assert not window.welcome.isVisible()
    window.action_set["help.welcome"].trigger()  # Help › Show Welcome still brings it back
    assert window.welcome.isVisible()

