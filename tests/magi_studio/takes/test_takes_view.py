"""The takes view on a shot with two takes (a first generation and a regeneration from chunk 3): the tree,
previewing a take in the player without touching the document, switching the active take (timeline and
player change at once, from stored frames, with no generation), renaming inline and deleting with
confirmation — each undoable."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from magi_studio.document.errors import ProjectError
from magi_studio.document.model import resolve_take
from magi_studio.player import PreviewPlayer
from magi_studio.takes import PreviewModeBar, TakesView
from magi_studio.timeline import PlayerSync, TimelineView
from magi_studio.document_session import DocumentSession
from magi_studio.document.planning import plan_generation
from tests.magi_studio.document.fakes import fake_run, rich_project
from tests.magi_studio.timeline.helpers import wait_for_frames


class Studio:
    def __init__(self, qtbot, tmp_path) -> None:
        self.qtbot = qtbot
        project, store = rich_project(tmp_path)  # Shot 1: Take 1 (whole shot) -> Take 2 (from chunk 3, active)
        self.session = DocumentSession(project, store)
        self.window = QWidget()
        self.bar, self.player, self.timeline, self.takes = PreviewModeBar(), PreviewPlayer(), TimelineView(), TakesView()
        layout = QVBoxLayout(self.window)
        for widget in (self.bar, self.player, self.takes, self.timeline):
            layout.addWidget(widget)
        self.timeline.set_frame_store(self.player.store)
        self.sync = PlayerSync(self.player, self.timeline, self.window)
        for view in (self.bar, self.timeline, self.takes, self.sync):
            view.set_session(self.session)
        self.window.resize(1200, 900)
        qtbot.addWidget(self.window)
        self.window.show()
        qtbot.waitExposed(self.window)

    @property
    def shot(self):
        return self.session.project.shots[0]

    def take(self, name: str):
        return next(t for t in self.shot.takes if t.name == name)

    def player_frames(self) -> list:
        wait_for_frames(self.qtbot, self.sync)  # frames are decoded in the background
        return [self.player.store.frames(i) for i in range(len(self.shot.chunks))]

    def stored_frames(self, take_id: str) -> list:
        project, store = self.session.project, self.session.store
        return [store.read_frames(project.results[r]) for r in resolve_take(self.shot, take_id)]


@pytest.fixture
def studio(qtbot, tmp_path, no_leaked_windows):
    studio = Studio(qtbot, tmp_path)
    yield studio
    for view in (studio.bar, studio.timeline, studio.takes, studio.sync):
        view.set_session(None)


def same(frames_a, frames_b) -> bool:
    return len(frames_a) == len(frames_b) and all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b))


def test_the_tree_shows_the_takes_of_the_selected_shot(studio):
    tree = studio.takes.tree
    assert studio.takes.title.text() == "Takes of Shot 1"
    root = tree.topLevelItem(0)
    assert tree.topLevelItemCount() == 1 and root.text(0) == "Take 1" and root.childCount() == 1
    child = root.child(0)
    assert [root.text(c) for c in range(3)] == ["Take 1", "Start", "4"]
    assert [child.text(c) for c in range(3)] == ["Take 2", "Chunk 3", "2"]
    assert child.font(0).bold() and not root.font(0).bold()  # Take 2 is active
    assert tree.currentItem() is child and root.text(3) not in ("", "—")
    assert studio.timeline.group(studio.shot.id).take_chip.text() == "Take 2 of 2"
    assert studio.takes.filmstrip.owned() == [False, False, True, True]  # Take 2 made chunks 3 and 4
    tree.setCurrentItem(root)
    assert studio.takes.filmstrip.owned() == [True] * 4 and studio.takes.strip_caption.text() == "Chunks of Take 1"
    second = studio.session.project.shots[2]  # a shot never generated: no takes yet
    studio.session.select(second.id, second.chunks[0].id)
    assert not tree.isVisible() and "No takes yet" in studio.takes.empty.text() and studio.takes.empty.isVisible()


def test_previewing_a_take_changes_the_player_but_not_the_document(qtbot, studio):
    before, count = copy.deepcopy(studio.session.project), studio.session.undo_stack.count()
    take1, take2 = studio.take("Take 1"), studio.take("Take 2")
    assert same(studio.player_frames(), studio.stored_frames(take2.id))
    studio.takes.tree.setCurrentItem(studio.takes.item(take1.id))  # the user clicks Take 1
    assert studio.session.preview_take == (studio.shot.id, take1.id)
    assert same(studio.player_frames(), studio.stored_frames(take1.id))  # chunks 3-4 of Take 1 now play
    assert not same(studio.stored_frames(take1.id)[2:], studio.stored_frames(take2.id)[2:])
    assert studio.bar.isVisible() and studio.bar.title.text() == "Previewing Take 1 of Shot 1"
    assert studio.timeline.group(studio.shot.id).take_chip.text() == "Previewing Take 1"
    assert "Previewing" in studio.takes.hint.text() and studio.takes.activate_button.isEnabled()
    assert studio.session.project == before and studio.session.undo_stack.count() == count
    qtbot.mouseClick(studio.bar.back_button, Qt.MouseButton.LeftButton)
    assert studio.session.preview_take == ("", "") and studio.bar.isHidden()
    assert same(studio.player_frames(), studio.stored_frames(take2.id))
    assert studio.takes.tree.currentItem() is studio.takes.item(take2.id)


def test_previewing_asks_the_panel_for_no_more_height_and_leaves_the_takes_where_they_are(qtbot, studio):
    # The hint had a line of its own under the title: a preview pushed the takes down a line and, in a window at
    # 1366x768, grew the panel's minimum height past its dock's, so the storyboard below moved down 9 px.
    takes, take1 = studio.takes, studio.take("Take 1")
    height, tree_y = takes.minimumSizeHint().height(), takes.tree.mapTo(takes, takes.tree.rect().topLeft()).y()
    takes.tree.setCurrentItem(takes.item(take1.id))  # the user clicks Take 1: it previews
    assert studio.session.preview_take == (studio.shot.id, take1.id) and takes.hint.isVisible()
    qtbot.waitUntil(lambda: takes.layout().geometry().isValid())
    QApplication.processEvents()
    assert takes.minimumSizeHint().height() == height
    assert takes.tree.mapTo(takes, takes.tree.rect().topLeft()).y() == tree_y
    takes.resize(300, takes.height())  # narrow: the short form, whole text in the tool tip
    QApplication.processEvents()
    assert takes.hint.shown_text() == "Previewing"
    assert takes.hint.toolTip().startswith("Previewing in the player")


def test_make_active_switches_timeline_and_player_at_once(qtbot, studio):
    take1, take2 = studio.take("Take 1"), studio.take("Take 2")
    results_before = set(studio.session.project.results)
    thumbs_before = [c.model.thumbnail.cacheKey() for c in studio.timeline.cards()[:4]]
    studio.takes.tree.setCurrentItem(studio.takes.item(take1.id))
    qtbot.mouseClick(studio.takes.activate_button, Qt.MouseButton.LeftButton)
    assert studio.shot.active_take_id == take1.id and studio.session.preview_take == ("", "")
    assert studio.bar.isHidden() and studio.takes.item(take1.id).font(0).bold()
    assert same(studio.player_frames(), studio.stored_frames(take1.id))
    thumbs_after = [c.model.thumbnail.cacheKey() for c in studio.timeline.cards()[:4]]
    assert thumbs_after[:2] == thumbs_before[:2] and thumbs_after[2:] != thumbs_before[2:]
    assert set(studio.session.project.results) == results_before  # nothing was generated
    # Take 1's specs came back with it: chunk 3's old prompt, so nothing is stale
    assert [c.model.state for c in studio.timeline.cards()[:4]] == ["done"] * 4
    assert studio.timeline.cards()[2].prompt.toPlainText() == "it rolls left"
    studio.session.undo_stack.undo()  # one step: Take 2 and its prompt
    assert studio.shot.active_take_id == take2.id
    assert studio.timeline.cards()[2].prompt.toPlainText() == "it rolls right"
    assert same(studio.player_frames(), studio.stored_frames(take2.id))


def test_double_click_or_enter_makes_a_take_active(qtbot, studio):
    take1 = studio.take("Take 1")
    item = studio.takes.item(take1.id)
    studio.takes.tree.setCurrentItem(item)
    studio.takes.tree.setFocus()
    qtbot.keyClick(studio.takes.tree, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: studio.shot.active_take_id == take1.id, timeout=2000)
    assert studio.takes.item(take1.id).font(0).bold()


def test_rename_inline(qtbot, studio):
    take1 = studio.take("Take 1")
    item = studio.takes.item(take1.id)
    studio.takes.tree.setCurrentItem(item)
    qtbot.mouseClick(studio.takes.rename_button, Qt.MouseButton.LeftButton)
    assert studio.takes.tree.state() == studio.takes.tree.State.EditingState
    editor = studio.takes.tree.focusWidget()  # the inline editor over the take's name
    editor.selectAll()
    qtbot.keyClicks(editor, "Wide angle")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: take1.name == "Wide angle", timeout=2000)
    assert studio.takes.item(take1.id).text(0) == "Wide angle" and studio.session.undo_stack.count() == 1
    studio.session.undo_stack.undo()
    assert take1.name == "Take 1" and studio.takes.item(take1.id).text(0) == "Take 1"


def test_delete_asks_first_and_undo_brings_it_back(qtbot, studio):
    before = copy.deepcopy(studio.session.project)
    take2 = studio.take("Take 2")
    asked = []
    studio.takes.confirm_delete = lambda name: asked.append(name) or False
    studio.takes.tree.setCurrentItem(studio.takes.item(take2.id))
    qtbot.mouseClick(studio.takes.delete_button, Qt.MouseButton.LeftButton)
    assert asked == ["Take 2"] and studio.session.project == before  # declined: nothing happens
    studio.takes.confirm_delete = lambda name: True
    qtbot.mouseClick(studio.takes.delete_button, Qt.MouseButton.LeftButton)
    assert [t.name for t in studio.shot.takes] == ["Take 1"] and studio.shot.active_take_id == studio.take("Take 1").id
    assert studio.takes.tree.topLevelItemCount() == 1 and studio.takes.tree.topLevelItem(0).childCount() == 0
    assert same(studio.player_frames(), studio.stored_frames(studio.shot.active_take_id))
    studio.session.undo_stack.undo()
    assert studio.session.project == before
    assert studio.takes.item(take2.id) is not None


def test_the_details_show_each_takes_prompts_and_what_it_changed(studio):
    take1 = studio.take("Take 1")
    details = studio.takes.details
    assert details.toPlainText().splitlines() == [  # Take 2 is selected (active): chunk 3's prompt changed (its seed locked)
        "Changed from Take 1:", "  chunk 3: 'it rolls left' → 'it rolls right'", "Prompts:",
        "  1 · a red ball falls", "  2 · it bounces", "  3 · it rolls right", "  4 · it stops"]
    assert studio.takes.detail_tabs.currentWidget() is studio.takes.details and details.isVisible()
    studio.takes.tree.setCurrentItem(studio.takes.item(take1.id))
    assert details.toPlainText().splitlines()[:2] == ["Take 1 is a first take of Shot 1.", "Prompts:"]
    assert "  3 · it rolls left" in details.toPlainText().splitlines()


def test_a_b_flips_the_player_between_two_takes_on_the_same_frame(qtbot, studio):
    take1, take2 = studio.take("Take 1"), studio.take("Take 2")
    studio.takes.tree.setCurrentItem(studio.takes.item(take1.id))  # B: Take 1, previewed
    frame = 2 * 24 + 7  # inside chunk 3, where the two takes differ
    studio.player.seek(frame)
    assert studio.takes.compare_button.isEnabled() and studio.takes.compare_button.isChecked()
    shown = []
    for expected in (take2, take1, take2):
        qtbot.keyClick(studio.window, Qt.Key.Key_Backslash)  # the A/B key, anywhere in the window
        previewed = studio.session.preview_take[1] or studio.shot.active_take_id
        assert previewed == expected.id and studio.player.current_frame == frame  # frame-locked
        frames = studio.player_frames()
        assert same(frames, studio.stored_frames(expected.id))
        shown.append(frames[2][7])
    assert not np.array_equal(shown[0], shown[1]) and np.array_equal(shown[0], shown[2])
    assert studio.shot.active_take_id == take2.id  # comparing never changes the document
    studio.takes.tree.setFocus()  # the key works with the focus in the tree too (where the click left it)
    qtbot.keyClick(studio.takes.tree, Qt.Key.Key_Backslash)
    assert studio.session.preview_take == (studio.shot.id, take1.id) and studio.player.current_frame == frame
    assert studio.takes.compare_button.isChecked()  # the compared take is on screen
    qtbot.mouseClick(studio.takes.compare_button, Qt.MouseButton.LeftButton)  # the button flips too
    assert studio.session.preview_take == ("", "") and not studio.takes.compare_button.isChecked()


def test_the_panel_keeps_its_width_when_the_first_take_appears(studio):
    takes = studio.takes
    width = takes.minimumWidth()
    empty = studio.session.project.shots[2]  # no takes: the empty text instead of the tree
    studio.session.select(empty.id, empty.chunks[0].id)
    assert takes.empty.isVisible() and takes.minimumSizeHint().width() <= width == takes.minimumWidth()
    studio.session.select(studio.shot.id, studio.shot.chunks[0].id)
    assert takes.tree.isVisible() and takes.minimumSizeHint().width() <= width == takes.minimumWidth()
    rows = takes.tree.minimumHeight() - takes.tree.header().sizeHint().height()
    assert rows >= 4 * takes.tree.sizeHintForRow(0)  # however short the panel, four takes show


def test_a_draft_take_is_marked_and_its_menu_renders_it_at_final_quality(studio):
    from magi_engine.config import SamplingConfig
    from magi_studio.document.planning import plan_generation
    from tests.magi_studio.document.fakes import fake_run

    asked = []
    # What Render at Final Quality asks of the controller (the real one: tests/magi_studio/controllers).
    studio.takes.generation = type("Generation", (), {
        "render_final_quality": lambda self, shot_id, take_id: asked.append((shot_id, take_id))})()
    session, shot = studio.session, studio.shot
    plan = plan_generation(session.project, session.store, shot.id, 1, sampling=SamplingConfig(num_steps=8),
                           draft=True)
    fake_run(session.project, session.store, plan, history=session)  # pushed as the app does
    draft = shot.take(shot.active_take_id)
    assert draft.name == "Take 3"
    item = studio.takes.item(draft.id)
    assert item.text(2) == "3 · Draft" and "Render at Final Quality" in item.toolTip(2)
    assert studio.takes.details.toPlainText().startswith("Take 3 is a draft (4 steps, 64×64)")  # a small picture: fewer steps
    cards = studio.timeline.cards()[:4]
    assert [card.draft_badge.isVisible() for card in cards] == [False, True, True, True]
    menu = studio.takes.context_menu(draft.id)
    final = next(a for a in menu.actions() if a.text() == "Render at Final Quality")
    assert final.isEnabled()
    final.trigger()
    assert asked == [(shot.id, draft.id)]
    menu.deleteLater()
    first = studio.take("Take 1")
    menu = studio.takes.context_menu(first.id)  # previews Take 1, which is not a draft
    assert not next(a for a in menu.actions() if a.text() == "Render at Final Quality").isEnabled()
    assert studio.takes.final_quality_take() is None and not studio.takes.render_final_quality()
    menu.deleteLater()
    # A request that cannot be made is said in one sentence, without a modal box that would block the app.
    reported = []
    studio.takes.errorReported.connect(reported.append)

    def refuse(shot_id, take_id):
        raise ProjectError("The draft's chunks are gone.")

    studio.takes.generation = type("Generation", (), {"render_final_quality": lambda self, s, t: refuse(s, t)})()
    studio.takes.tree.setCurrentItem(studio.takes.item(draft.id))
    assert not studio.takes.render_final_quality() and QApplication.activeModalWidget() is None
    assert [str(e) for e in reported] == ["The draft's chunks are gone."]


def test_the_chunks_column_counts_the_drafts_of_a_take_filled_on_in_draft_mode():
    from magi_studio.document.model import Take, TakeSpec
    from magi_studio.takes.view import chunks_text

    specs = {"a": TakeSpec("falls", 1), "b": TakeSpec("rolls", 2, draft=True)}
    assert chunks_text(Take("t", "Take 2", results={"a": "r1", "b": "r2"}, specs=specs)) == "2 · 1 draft"
    assert chunks_text(Take("t", "Take 2", results={"b": "r2"}, specs=specs)) == "1 · Draft"
    assert chunks_text(Take("t", "Take 2", results={"a": "r1"}, specs=specs)) == "1"


def test_a_committed_chunk_writes_its_takes_row_again_without_rebuilding_the_tree(studio):
    from magi_engine.config import SamplingConfig
    from magi_studio.document.planning import plan_generation
    from tests.magi_studio.document.fakes import fake_run

    session, shot = studio.session, studio.shot
    plan = plan_generation(session.project, session.store, shot.id, 1, sampling=SamplingConfig(num_steps=4))
    rows = []

    class History:  # pushes as the app does, and notes the new take's row after each committed chunk
        def push(self, command):
            session.push(command)
            take = shot.take(shot.active_take_id)
            rows.append((studio.takes.item(take.id), studio.takes.item(studio.take("Take 1").id)))

    fake_run(session.project, session.store, plan, history=History())
    assert len(rows) == 3
    assert all(new is rows[0][0] and first is rows[0][1] for new, first in rows)  # the same items: no rebuild
    take = shot.take(shot.active_take_id)
    assert rows[-1][0].text(2) == "3" and take.name == "Take 3"
    assert studio.takes.tree.currentItem() is rows[-1][0]


class _RunCommits:
    """fake_run's history, committing each chunk as a generation run does: coalesced."""

    def __init__(self, session) -> None:
        self.session = session

    def push(self, command) -> None:
        self.session.push(command, coalesce=True)


def _cards(timeline) -> list[tuple]:
    return [(c.model.state, c.model.prompt, c.model.seed, c.model.thumbnail is not None) for c in timeline.cards()]


def test_chunks_committed_in_one_turn_redraw_every_view_once_and_right(studio):
    session, redraws = studio.session, []
    session.changed.connect(lambda: redraws.append(studio.takes.tree.topLevelItemCount()))
    takes_before = len(studio.shot.takes)
    plan = plan_generation(session.project, session.store, studio.shot.id, 0)
    fake_run(session.project, session.store, plan, history=_RunCommits(session))  # 4 chunks, one turn
    assert len(studio.shot.takes) == takes_before + 1 and redraws == []
    new_take = studio.shot.active_take_id
    assert studio.takes.item(new_take) is None  # the views redraw on the next turn, not once per chunk
    studio.qtbot.waitUntil(lambda: bool(redraws), timeout=2000)
    studio.qtbot.wait(30)
    assert len(redraws) == 1
    item = studio.takes.item(new_take)
    assert item is not None and item.text(2) == "4" and item.font(0).bold()
    assert studio.takes.details.toPlainText().splitlines() == [
        "Same specs as Take 2 (new run).", "Prompts:", "  1 · a red ball falls", "  2 · it bounces",
        "  3 · it rolls right", "  4 · it stops"]
    drawn = _cards(studio.timeline)
    studio.timeline.refresh()  # every card drawn again from the document: the same
    assert _cards(studio.timeline) == drawn
    assert same(studio.player_frames(), studio.stored_frames(new_take))
    session.undo_stack.undo()  # the last chunk's commit: undone and redrawn at once
    assert studio.takes.item(new_take).text(2) == "3"


def test_a_checked_compare_button_keeps_its_font_so_its_label_fits():
    # Seen under Xvfb: a checked "Side by Side" read "ide by Sid": its checked style made the label bold, and a style
    # sheet's font for a state does not widen the button, which was sized for the plain label.
    import re

    from magi_studio.takes.view import TAKES_QSS

    checked = re.findall(r"[^{}]*:checked[^{}]*\{([^}]*)\}", TAKES_QSS)
    assert checked and not any("font" in declarations for declarations in checked)
