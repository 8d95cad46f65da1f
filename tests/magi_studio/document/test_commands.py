"""Commands: every edit undoes and redoes to the exact document; merging; notifications; take deletion."""

from __future__ import annotations

import copy
import random

import pytest

from magi_engine.errors import ConfigError, InputError
from magi_studio.document.commands import (AddChunk, AddShot, DeleteChunk, DeleteShot, DuplicateChunk, InsertChunk,
                                           MacroCommand, MoveChunk, RenameShot, SetProjectSettings, SetPrompt,
                                           SetReferenceImage, SetSeed, SetSeedLocked, SetShotPrompt, SetShotStart,
                                           SplitShot,
                                           new_chunk, next_seed)
from magi_studio.document.model import (ChunkResult, Take, TakeSpec, active_path, new_project, new_shot, resolve_take,
                                        storyboard_states)
from magi_studio.document.observer import (ChunkChanged, Document, SettingsChanged, ShotChanged, ShotsChanged,
                                           TakesChanged, UndoHistory)
from magi_studio.document.take_commands import AddTake, CommitResult, DeleteTake, RenameTake, SetActiveTake
from tests.magi_studio.document.fakes import rich_project, write_image


@pytest.fixture
def rich(tmp_path):
    return rich_project(tmp_path)


def _first(project):
    return project.shots[0]


COMMANDS = {
    "set prompt": lambda p, s, t: SetPrompt(_first(p).id, _first(p).chunks[1].id, "a new prompt"),
    "set seed": lambda p, s, t: SetSeed(_first(p).id, _first(p).chunks[1].id, 4242),
    "lock seed": lambda p, s, t: SetSeedLocked(_first(p).id, _first(p).chunks[0].id, True),
    "add chunk": lambda p, s, t: AddChunk(_first(p).id, new_chunk(p, _first(p).id, 4, "then")),
    "insert chunk": lambda p, s, t: InsertChunk(_first(p).id, 1, new_chunk(p, _first(p).id, 1, "meanwhile")),
    "duplicate chunk": lambda p, s, t: DuplicateChunk(p, _first(p).id, _first(p).chunks[2].id),
    "delete chunk": lambda p, s, t: DeleteChunk(_first(p).id, _first(p).chunks[2].id),  # Take 2's first chunk
    "delete last chunk": lambda p, s, t: DeleteChunk(_first(p).id, _first(p).chunks[3].id),
    "move chunk": lambda p, s, t: MoveChunk(_first(p).id, _first(p).chunks[2].id, 0),
    "move chunk to another shot": lambda p, s, t: MoveChunk(_first(p).id, _first(p).chunks[1].id, 1, p.shots[1].id),
    "split shot": lambda p, s, t: SplitShot(_first(p).id, 2),
    "add shot": lambda p, s, t: AddShot(new_shot(p), index=1),
    "delete shot": lambda p, s, t: DeleteShot(p.shots[1].id),
    "rename shot": lambda p, s, t: RenameShot(_first(p).id, "Opening"),
    "set shot prompt": lambda p, s, t: SetShotPrompt(_first(p).id, "A red ball on a table"),
    "set shot start": lambda p, s, t: SetShotStart(p.shots[1].id, "continue"),
    "set reference image": lambda p, s, t: SetReferenceImage(_first(p).id, s.import_image(write_image(t / "x.png"))),
    "clear reference image": lambda p, s, t: SetReferenceImage(p.shots[1].id, None),
    "add take": lambda p, s, t: AddTake(_first(p).id, Take("new", "Take 9", _first(p).takes[0].id,
                                                           _first(p).chunks[3].id)),
    "commit result": lambda p, s, t: CommitResult(
        _first(p).id, _first(p).takes[0].id, _first(p).chunks[0].id,
        ChunkResult("r-new", _first(p).chunks[0].id, "p", 1, "tiny", {}, 64, 64), spec=TakeSpec("p", 1)),
    "rename take": lambda p, s, t: RenameTake(_first(p).id, _first(p).takes[0].id, "The first"),
    "switch take": lambda p, s, t: SetActiveTake(_first(p).id, _first(p).takes[0].id),
    "delete active take": lambda p, s, t: DeleteTake(_first(p).id, _first(p).takes[1].id),
    "delete root take": lambda p, s, t: DeleteTake(_first(p).id, _first(p).takes[0].id),
    "delete only take": lambda p, s, t: DeleteTake(p.shots[1].id, p.shots[1].takes[0].id),
    "project settings": lambda p, s, t: SetProjectSettings(width=128, steps=8, seed_policy="random"),
    "macro": lambda p, s, t: MacroCommand([SetPrompt(_first(p).id, _first(p).chunks[0].id, "x"),
                                           DeleteShot(p.shots[2].id)], "Two things"),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_undoes_and_redoes_to_the_exact_document(rich, tmp_path, name):
    project, store = rich
    command = COMMANDS[name](project, store, tmp_path)
    before = copy.deepcopy(project)
    changes = command.apply(project)
    assert changes, "a command must report what it changed"
    after = copy.deepcopy(project)
    assert after != before, "the command changed nothing"
    command.revert(project)
    assert project == before
    command.apply(project)
    assert project == after
    command.revert(project)
    assert project == before


def test_undo_history_replays_a_whole_session(rich, tmp_path):
    project, store = rich
    document = Document(project)
    history = UndoHistory(document)
    snapshots = [copy.deepcopy(project)]
    for name in ("set prompt", "insert chunk", "delete chunk", "move chunk", "split shot", "delete active take",
                 "set reference image", "project settings"):
        history.push(COMMANDS[name](project, store, tmp_path))
        snapshots.append(copy.deepcopy(project))
    for snapshot in reversed(snapshots[:-1]):
        history.undo()
        assert project == snapshot
    for snapshot in snapshots[1:]:
        history.redo()
        assert project == snapshot


def test_typing_merges_into_one_undo_step_but_not_across_chunks_or_the_saved_state():
    project = new_project()
    shot = project.shots[0]
    history = UndoHistory(Document(project))
    history.push(AddChunk(shot.id, new_chunk(project, shot.id, 1)))
    a, b = shot.chunks
    for text in ("a", "a r", "a red ball"):
        history.push(SetPrompt(shot.id, a.id, text))
    history.push(SetPrompt(shot.id, b.id, "it falls"))
    assert history.texts() == ["Add chunk", "Edit prompt", "Edit prompt"]
    history.undo()
    assert (a.prompt, b.prompt) == ("a red ball", "")
    history.undo()
    assert a.prompt == ""
    history.redo()
    history.set_clean()
    history.push(SetPrompt(shot.id, a.id, "a red ball falls"))
    assert not history.is_clean and len(history.texts()) == 3  # did not merge into the saved step
    history.undo()
    assert history.is_clean and a.prompt == "a red ball"


def test_the_document_tells_subscribers_with_typed_changes(rich):
    project, _ = rich
    document = Document(project)
    seen, only_takes = [], []
    unsubscribe = document.subscribe(seen.append)
    document.subscribe(only_takes.append, TakesChanged)
    shot = project.shots[0]
    first, third = shot.chunks[0].id, shot.chunks[2].id
    document.apply(SetPrompt(shot.id, first, "x"))
    document.apply(SetActiveTake(shot.id, shot.takes[0].id))  # Take 1's specs come back on chunks 1 and 3
    document.apply(SplitShot(shot.id, 1))
    document.apply(SetProjectSettings(fps=25))
    assert seen == [ChunkChanged(shot.id, first), TakesChanged(shot.id), ChunkChanged(shot.id, first),
                    ChunkChanged(shot.id, third), ShotsChanged(), ShotChanged(shot.id), SettingsChanged(("fps",))]
    assert only_takes == [TakesChanged(shot.id)]
    unsubscribe()
    document.apply(SetPrompt(shot.id, shot.chunks[0].id, "y"))
    assert len(seen) == 7


def test_deleting_a_take_changes_what_no_other_take_shows(rich):
    project, _ = rich
    shot = project.shots[0]
    root, regenerated = shot.takes
    # a grandchild regenerated from the last chunk, and a sibling of Take 2
    shot.takes.append(Take("G", "Take 3", regenerated.id, shot.chunks[3].id, {shot.chunks[3].id: "rg"}))
    shot.takes.append(Take("S", "Take 4", root.id, shot.chunks[1].id, {shot.chunks[1].id: "rs"}))
    views = {t.id: resolve_take(shot, t.id) for t in shot.takes}
    DeleteTake(shot.id, regenerated.id).apply(project)
    remaining = {k: v for k, v in views.items() if k != regenerated.id}
    assert {t.id: resolve_take(shot, t.id) for t in shot.takes} == remaining
    assert shot.take("G").parent_id == root.id and shot.active_take_id == root.id  # active fell back to the parent
    DeleteTake(shot.id, root.id).apply(project)  # children of a root become roots, still unchanged
    assert resolve_take(shot, "G") == views["G"] and resolve_take(shot, "S") == views["S"]
    assert shot.active_take_id == "G"
    assert project.results  # results are never deleted with a take


def test_deleting_or_moving_a_takes_first_chunk_keeps_its_range(rich):
    project, _ = rich
    shot = project.shots[0]
    regenerated = shot.takes[1]
    third = shot.chunks[2].id
    DeleteChunk(shot.id, third).apply(project)
    assert regenerated.first_chunk_id == shot.chunks[2].id  # the chunk that followed
    assert active_path(shot)[2] == regenerated.results[shot.chunks[2].id]


def test_split_shot_keeps_the_moved_chunks_done(rich):
    project, _ = rich
    shot = project.shots[0]
    results, moved = active_path(shot), [c.id for c in shot.chunks[2:]]
    SplitShot(shot.id, 2, name="Second half").apply(project)
    new = project.shots[1]
    assert (new.name, new.start, [c.id for c in new.chunks]) == ("Second half", "continue", moved)
    assert active_path(new) == results[2:] and active_path(shot) == results[:2]
    assert [s.value for s in storyboard_states(project)[new.id]] == ["done", "done"]


def test_split_outside_the_shot_is_refused(rich):
    project, _ = rich
    with pytest.raises(ValueError):
        SplitShot(project.shots[0].id, 0).apply(project)


def test_bad_values_are_refused_before_anything_changes():
    with pytest.raises(InputError):
        SetSeed("s", "c", -1)
    with pytest.raises(InputError):
        SetPrompt("s", "c", "x" * 5000)
    with pytest.raises(ConfigError, match="width"):
        SetProjectSettings(width=100)
    with pytest.raises(ConfigError, match="Unknown"):
        SetProjectSettings(colour="red")
    with pytest.raises(ConfigError):
        SetShotStart("s", "video")


def test_new_chunk_seeds_follow_the_project_policy():
    project = new_project()
    shot = project.shots[0]
    shot.chunks[0].seed = 41
    assert next_seed(project, shot.id, 1) == 42
    project.settings.seed_policy = "fixed"
    assert next_seed(project, shot.id, 1) == 41
    project.settings.seed_policy = "random"
    assert next_seed(project, shot.id, 1, random.Random(3)) == random.Random(3).randrange(2**31)
    project.settings.seed_policy = "increment"
    second = new_shot(project)
    project.shots.append(second)
    assert next_seed(project, second.id, 0) == 42  # follows the previous shot's last chunk
