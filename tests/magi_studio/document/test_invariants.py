"""The document's invariants (magi_studio.document.invariants.check), and the two ways a generation used to
break them: a new take whose parent was deleted before its first chunk arrived, and a chunk that finished
after its chunk (or take) had been deleted — kept, never dropped."""

from __future__ import annotations

import copy

from magi_engine.events import ChunkFinished
from magi_studio.document.commands import DeleteChunk, MoveChunk, SetPrompt
from magi_studio.document.invariants import check
from magi_studio.document.model import active_path
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.planning import ResultCommitter, plan_generation
from magi_studio.document.take_commands import DeleteTake
from tests.magi_studio.document.fakes import rich_project, synthetic_chunk


def finish(committer: ResultCommitter, project, position: int):
    """The engine finishing the plan's chunk at `position` (0: its first), written and turned into a command."""
    plan = committer.plan
    spec = plan.request.chunks[position]
    latent, frames = synthetic_chunk(spec.seed, spec.prompt)
    return committer.commit(project, ChunkFinished(plan.request.start_chunk + position, frames, latent))


def test_a_sound_project_has_no_violations_and_each_broken_rule_is_named(tmp_path):
    project, _ = rich_project(tmp_path)
    assert check(project) == []
    shot = project.shots[0]
    broken = copy.deepcopy(project)
    broken.shots[0].active_take_id = "gone"
    assert check(broken) == [f"shot 'Shot 1' ({shot.id}): the active take 'gone' does not exist"]
    broken = copy.deepcopy(project)
    broken.shots[0].takes[1].parent_id = "gone"
    assert "its parent 'gone' does not exist" in check(broken)[0]
    broken = copy.deepcopy(project)
    broken.shots[0].takes[0].parent_id = broken.shots[0].takes[1].id
    assert any("cycle" in v for v in check(broken))
    broken = copy.deepcopy(project)
    del broken.results[active_path(broken.shots[0])[0]]
    assert "which is not in the project" in check(broken)[0]
    broken = copy.deepcopy(project)
    broken.shots[1].chunks.append(copy.deepcopy(broken.shots[0].chunks[0]))
    assert "is in 'Shot 1' and 'Shot 2'" in check(broken)[0]


def test_a_new_take_whose_parent_was_deleted_before_its_first_chunk_hangs_on_the_nearest_ancestor(tmp_path):
    project, store = rich_project(tmp_path)  # Shot 1: Take 1 (root) -> Take 2 (from chunk 3, active)
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    take1, take2 = shot.takes
    seen_when_planned = active_path(shot)
    history.push(SetPrompt(shot.id, shot.chunks[3].id, "it stops suddenly"))
    committer = ResultCommitter(plan_generation(project, store, shot.id, 3), store)  # a new take under Take 2
    history.push(DeleteTake(shot.id, take2.id))  # while chunk 4 is being generated
    history.push(finish(committer, project, 0))
    assert check(project) == []
    new = shot.find_take(shot.active_take_id)
    assert new.parent_id == take1.id
    # It still shows what it was generated on: chunk 3 of the deleted take, then its own chunk 4.
    assert active_path(shot)[:3] == seen_when_planned[:3] and active_path(shot)[3] != seen_when_planned[3]
    history.push(DeleteTake(shot.id, new.id))  # the active take goes back to one that exists
    assert check(project) == [] and shot.active_take_id == take1.id
    for _ in range(4):
        history.undo()
        assert check(project) == []


def test_a_new_take_whose_whole_lineage_was_deleted_becomes_a_root_that_keeps_what_it_was_made_on(tmp_path):
    project, store = rich_project(tmp_path)
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    seen = active_path(shot)
    committer = ResultCommitter(plan_generation(project, store, shot.id, 2), store)
    for take in list(shot.takes):
        history.push(DeleteTake(shot.id, take.id))
    assert shot.takes == [] and shot.active_take_id is None
    history.push(finish(committer, project, 0))
    history.push(finish(committer, project, 1))
    assert check(project) == []
    (root,) = shot.takes
    assert root.parent_id is None and shot.active_take_id == root.id
    assert active_path(shot)[:2] == seen[:2] and None not in active_path(shot)


def test_a_filled_take_deleted_during_the_run_gets_the_rest_in_a_new_take_that_shows_the_whole_run(tmp_path):
    project, store = rich_project(tmp_path)  # Shot 2: one root take, both chunks done
    history = UndoHistory(Document(project))
    shot = project.shots[1]
    for chunk in shot.chunks:
        history.push(SetPrompt(shot.id, chunk.id, chunk.prompt + " again"))  # both stale: the run refills
    history.push(DeleteTake(shot.id, shot.takes[0].id))  # nothing on the path: the run fills a new root take
    committer = ResultCommitter(plan_generation(project, store, shot.id, 0), store)  # fills a new root take
    history.push(finish(committer, project, 0))
    first_take = shot.active_take_id
    history.push(DeleteTake(shot.id, first_take))  # deleted between the run's two chunks
    history.push(finish(committer, project, 1))
    assert check(project) == []
    assert shot.active_take_id != first_take and None not in active_path(shot)
    assert [project.results[r].id for r in active_path(shot)] == [r.id for r in committer.written]


def test_a_chunk_that_finishes_after_it_was_deleted_comes_back_with_its_result(tmp_path):
    project, store = rich_project(tmp_path)
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    history.push(SetPrompt(shot.id, shot.chunks[2].id, "it rolls away"))
    committer = ResultCommitter(plan_generation(project, store, shot.id, 2), store)
    deleted = copy.deepcopy(shot.chunks[3])
    history.push(finish(committer, project, 0))
    history.push(DeleteChunk(shot.id, deleted.id))  # chunk 4 is being generated
    assert committer.notice_for(project, committer.plan.chunk_ids[1]) == (
        "Chunk 4 of Shot 1 was deleted while it was being generated; it is back with its new result "
        "(delete it again if you do not want it).")
    command = finish(committer, project, 1)
    history.push(command)
    assert check(project) == []
    result = committer.written[-1]
    assert shot.chunks[3] == deleted and active_path(shot)[3] == result.id
    assert history.texts()[-1] == "Generate Shot 1, chunk 4 (brought back)"
    history.undo()  # one step removes it again
    assert [c.id for c in shot.chunks].count(deleted.id) == 0 and check(project) == []
    history.redo()
    assert active_path(shot)[3] == result.id and check(project) == []


def test_a_chunk_moved_to_another_shot_while_generating_keeps_its_result_in_the_project(tmp_path):
    project, store = rich_project(tmp_path)
    history = UndoHistory(Document(project))
    shot, other = project.shots[0], project.shots[1]
    history.push(SetPrompt(shot.id, shot.chunks[3].id, "it stops suddenly"))
    committer = ResultCommitter(plan_generation(project, store, shot.id, 3), store)
    moved = shot.chunks[3].id
    history.push(MoveChunk(shot.id, moved, 0, other.id))
    history.push(finish(committer, project, 0))
    assert check(project) == [] and committer.written[-1].id in project.results
    assert [c.id for s in project.shots for c in s.chunks].count(moved) == 1
