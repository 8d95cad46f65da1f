"""The QUndoStack bridge and the DocumentSession: undo/redo restore the document exactly, typing merges into
one step (but never across a save or after leaving the field), the dirty mark is the stack's clean state,
typed changes become Qt signals, and the selection and take preview survive edits sensibly."""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import shiboken6
from PySide6.QtCore import QObject

from magi_engine.errors import InputError
from magi_studio.document.commands import (AddChunk, Command, DeleteChunk, DeleteShot, MacroCommand, RenameShot,
                                           SetPrompt, SetSeed, SplitShot, new_chunk)
from magi_studio.document.model import new_project
from magi_studio.document.store import ProjectStore
from magi_studio.document.take_commands import DeleteTake, SetActiveTake
from magi_studio.document_session import DocumentSession
from magi_studio.widgets.history_view import HistoryView
from tests.magi_studio.document.fakes import fake_generate, rich_project


@pytest.fixture
def session(qtbot, tmp_path):
    project = new_project()
    shot = project.shots[0]
    for _ in range(2):
        AddChunk(shot.id, new_chunk(project, shot.id, len(shot.chunks))).apply(project)
    return DocumentSession(project, ProjectStore.create(tmp_path / "P"))


def ids(session):
    shot = session.project.shots[0]
    return shot.id, [c.id for c in shot.chunks]


def test_push_applies_and_undo_redo_restore_exactly(session):
    before = copy.deepcopy(session.project)
    shot_id, chunks = ids(session)
    session.push(DeleteChunk(shot_id, chunks[1]))
    after = copy.deepcopy(session.project)
    assert [c.id for c in session.project.shots[0].chunks] == [chunks[0], chunks[2]]
    session.undo_stack.undo()
    assert session.project == before
    session.undo_stack.redo()
    assert session.project == after
    assert session.undo_stack.undoText() == "Delete chunk"


def test_typing_a_prompt_is_one_undo_step(session):
    shot_id, chunks = ids(session)
    for text in ("a", "a r", "a red ball"):
        session.push(SetPrompt(shot_id, chunks[0], text))
    assert session.undo_stack.count() == 1 and session.undo_stack.undoText() == "Edit prompt"
    assert session.project.shots[0].chunks[0].prompt == "a red ball"
    session.undo_stack.undo()
    assert session.project.shots[0].chunks[0].prompt == ""
    session.undo_stack.redo()
    assert session.project.shots[0].chunks[0].prompt == "a red ball"


def test_other_chunks_leaving_the_field_and_saving_end_a_merge(session):
    shot_id, chunks = ids(session)
    session.push(SetPrompt(shot_id, chunks[0], "one"))
    session.push(SetPrompt(shot_id, chunks[1], "two"))  # another chunk: its own step
    session.push(SetPrompt(shot_id, chunks[1], "two more"))
    assert session.undo_stack.count() == 2
    session.end_edit_burst()  # the user left the field
    session.push(SetPrompt(shot_id, chunks[1], "two more again"))
    assert session.undo_stack.count() == 3
    session.mark_saved()
    session.push(SetPrompt(shot_id, chunks[1], "after the save"))  # never merged into the saved state
    assert session.undo_stack.count() == 4
    session.undo_stack.undo()
    assert session.project.shots[0].chunks[1].prompt == "two more again" and not session.is_dirty


def test_dirty_mark_follows_the_clean_state(qtbot, session):
    shot_id, chunks = ids(session)
    assert not session.is_dirty
    with qtbot.waitSignal(session.dirtyChanged) as blocker:
        session.push(SetSeed(shot_id, chunks[0], 7))
    assert blocker.args == [True] and session.is_dirty
    with qtbot.waitSignal(session.dirtyChanged) as blocker:
        session.undo_stack.undo()
    assert blocker.args == [False]


def test_typed_changes_are_signals_and_changed_fires_once_per_edit(qtbot, session):
    shot_id, chunks = ids(session)
    seen = []
    session.chunkChanged.connect(lambda s, c: seen.append(("chunk", c)))
    session.shotChanged.connect(lambda s: seen.append(("shot", s)))
    session.shotsChanged.connect(lambda: seen.append(("shots",)))
    session.changed.connect(lambda: seen.append(("changed",)))
    session.push(MacroCommand([SetPrompt(shot_id, chunks[0], "x"), RenameShot(shot_id, "Intro"),
                               SplitShot(shot_id, 2)], "Several"))
    assert seen[:2] == [("chunk", chunks[0]), ("shot", shot_id)] and ("shots",) in seen
    assert seen.count(("changed",)) == 1 and seen[-1] == ("changed",)


def test_coalesced_pushes_in_one_turn_tell_views_once_on_the_next(qtbot, session):
    shot_id, chunks = ids(session)
    seen = []
    session.chunkChanged.connect(lambda s, c: seen.append(("chunk", c)))
    session.changed.connect(lambda: seen.append(("changed",)))
    for index, chunk_id in enumerate(chunks):  # a run's chunks, committed in one event-loop turn
        session.push(SetSeed(shot_id, chunk_id, 100 + index), coalesce=True)
    assert seen == [("chunk", c) for c in chunks]  # applied and typed at once; the views' redraw waits
    assert session.undo_stack.count() == 3 and session.project.shots[0].chunks[2].seed == 102
    with qtbot.waitSignal(session.changed, timeout=1000):
        pass
    qtbot.wait(20)
    assert seen.count(("changed",)) == 1
    session.undo_stack.undo()  # an undo redraws at once
    assert seen[-1] == ("changed",) and seen.count(("changed",)) == 2
    assert session.project.shots[0].chunks[2].seed != 102


def test_an_edit_delivers_the_coalesced_changes_waiting_with_its_own(qtbot, session):
    shot_id, chunks = ids(session)
    seen = []
    session.changed.connect(lambda: seen.append(session.project.shots[0].chunks[0].seed))
    session.push(SetSeed(shot_id, chunks[0], 7), coalesce=True)
    session.push(SetPrompt(shot_id, chunks[1], "the user types"))  # the user's edit: its views redraw now
    assert seen == [7]
    session.push(SetSeed(shot_id, chunks[0], 8), coalesce=True)
    session.flush_changes()
    assert seen == [7, 8]
    qtbot.wait(20)
    assert seen == [7, 8]  # nothing was left waiting


def test_a_command_applied_to_the_document_directly_still_tells_views(qtbot, session):
    shot_id, chunks = ids(session)
    with qtbot.waitSignal(session.changed, timeout=1000):
        session.document.apply(SetSeed(shot_id, chunks[0], 3))


class _Refused(Command):
    text = "Refused"

    def apply(self, project):
        raise InputError("That file is not an image.")


def test_a_refused_edit_raises_or_is_reported_and_never_reaches_the_stack(qtbot, session):
    before = copy.deepcopy(session.project)
    with pytest.raises(InputError):
        session.push(_Refused())
    with qtbot.waitSignal(session.errorOccurred) as blocker:
        assert not session.try_push(_Refused())
    assert isinstance(blocker.args[0], InputError)
    assert session.undo_stack.count() == 0 and session.project == before


def test_selection_starts_on_the_first_chunk_and_moves_to_a_neighbour(qtbot, session):
    shot_id, chunks = ids(session)
    assert (session.selected_shot_id, session.selected_chunk_id) == (shot_id, chunks[0])
    session.select(shot_id, chunks[2])
    assert session.selected_index() == 2
    with qtbot.waitSignal(session.selectionChanged) as blocker:
        session.push(DeleteChunk(shot_id, chunks[2]))
    assert blocker.args == [shot_id, chunks[1]]  # the last chunk went: the one before it
    session.undo_stack.undo()
    session.select("no such shot", "x")
    assert session.selected_shot_id == "" and session.selected_shot() is None


def test_deleting_the_selected_shot_selects_the_shot_in_its_place(session):
    shot_id, chunks = ids(session)
    session.push(SplitShot(shot_id, 1))
    second = session.project.shots[1]
    session.select(second.id, second.chunks[0].id)
    session.push(DeleteShot(second.id))
    assert session.selected_shot_id == shot_id and session.selected_chunk_id in chunks


def test_the_selected_chunk_keeps_the_selection_when_an_undo_moves_it_to_another_shot(qtbot, session):
    # Undoing a split selected the first chunk of the shot the chunks went back to, not the one that was selected.
    shot_id, chunks = ids(session)
    session.push(SplitShot(shot_id, 1))
    second = session.project.shots[1]
    session.select(second.id, chunks[2])
    with qtbot.waitSignal(session.selectionChanged) as blocker:
        session.undo_stack.undo()
    assert blocker.args == [shot_id, chunks[2]]
    session.undo_stack.redo()  # the chunk is in the new shot again
    assert (session.selected_shot_id, session.selected_chunk_id) == (session.project.shots[1].id, chunks[2])


def test_take_preview_never_changes_the_document_and_ends_with_its_take(qtbot, tmp_path):
    project, store = rich_project(tmp_path)
    session = DocumentSession(project, store)
    shot = project.shots[0]
    old, active = shot.takes[0].id, shot.active_take_id
    before = copy.deepcopy(project)
    with qtbot.waitSignal(session.previewTakeChanged) as blocker:
        session.set_preview_take(shot.id, old)
    assert blocker.args == [shot.id, old] and project == before and not session.is_dirty
    session.set_preview_take(shot.id, active)  # the active take is no preview
    assert session.preview_take == ("", "")
    session.set_preview_take(shot.id, old)
    session.push(SetActiveTake(shot.id, old))  # it became the active take: preview mode ends
    assert session.preview_take == ("", "")
    session.undo_stack.undo()
    session.set_preview_take(shot.id, old)
    with qtbot.waitSignal(session.previewTakeChanged) as blocker:
        session.push(DeleteTake(shot.id, old))
    assert blocker.args == ["", ""]
    session.set_preview_take(shot.id, active)
    session.select(project.shots[1].id, project.shots[1].chunks[0].id)  # another shot: preview ends
    assert session.preview_take == ("", "")


def test_replacing_the_project_resets_history_and_selection(qtbot, session, tmp_path):
    shot_id, chunks = ids(session)
    session.push(SetSeed(shot_id, chunks[0], 9))
    project, store = rich_project(tmp_path)
    with qtbot.waitSignal(session.changed):
        session.replace_project(project, store)
    assert session.undo_stack.count() == 0 and not session.is_dirty and session.store is store
    assert session.selected_shot_id == project.shots[0].id
    assert session.display_name == "Rich"


def test_history_view_lists_the_edits(qtbot, session):
    view = HistoryView()
    qtbot.addWidget(view)
    view.set_session(session)
    shot_id, chunks = ids(session)
    session.push(SetSeed(shot_id, chunks[0], 4))
    session.push(DeleteChunk(shot_id, chunks[1]))
    model = view.model()
    rows = [model.index(row, 0).data() for row in range(model.rowCount())]
    assert rows == ["Project opened", "Change seed", "Delete chunk"]
    view.setCurrentIndex(model.index(1, 0))  # clicking an entry undoes back to it
    assert len(session.project.shots[0].chunks) == 3


def test_untitled_scratch_folder_goes_when_nothing_was_written(qtbot, tmp_path):
    empty = DocumentSession.new_untitled(tmp_path / "scratch")
    assert empty.display_name == "Untitled" and empty.store.path.is_dir()
    empty.close()
    assert not empty.store.path.exists()
    used = DocumentSession.new_untitled(tmp_path / "scratch")
    fake_generate(used.project, used.store, used.project.shots[0].id, history=None)
    used.close()
    assert used.store.path.is_dir()  # generated chunks are never deleted behind the user's back


def test_a_session_the_garbage_collector_is_tearing_down_calls_no_missing_slot(qtbot, session):
    """What a collection of a dirty session's cycle can do: clear the session's instance dict (where PySide
    keeps the dynamic slot of an undecorated method) while its C++ object lives, then free the undo stack
    first, whose destructor emits cleanChanged(True). Before the fix Qt called the vanished slot:
    "AttributeError: Slot 'DocumentSession::' not found", raised into whatever test was running."""
    shot_id, chunks = ids(session)
    session.push(SetSeed(shot_id, chunks[0], 7))
    stack = session.undo_stack
    with qtbot.captureExceptions() as exceptions:
        session.__dict__.clear()  # the collector's tp_clear on the session wrapper
        shiboken6.delete(stack)  # the stack, handed to Python by its own tp_clear, goes first
    assert exceptions == []



class UndoActions(QObject):
    """Stands for the window or the project controller: follows the stack through an undecorated method."""

    def sync(self, index: int) -> None:
        self.index = index


def test_a_collected_session_calls_nothing_in_objects_collected_with_it(qtbot, tmp_path):
    """The window and the project controller follow the stack's signals, and the stack's destructor emits
    them. When the collector clears such an object's instance dict (its dynamic slots with it) before it
    frees the session, the stack must not call into it: the session silences its stack first."""
    session = DocumentSession(new_project(), ProjectStore.create(tmp_path / "P"))
    shot_id, chunks = ids(session)
    actions = UndoActions()
    session.undo_stack.indexChanged.connect(actions.sync)
    session.push(SetSeed(shot_id, chunks[0], 7))
    assert actions.index == 1
    collected = weakref.ref(session)
    with qtbot.captureExceptions() as exceptions:
        actions.__dict__.clear()  # the collector's tp_clear on an object that is garbage with the session
        del session
        gc.collect()
    assert collected() is None and exceptions == []  # gone (nothing keeps it reachable), and silently
