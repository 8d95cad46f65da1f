"""GenerationController with the tiny real model in the engine thread: chunks committed while the run goes
on, cancel keeping every finished chunk and resume filling the rest, regenerate-from-N reusing the
latents before N bit-exactly as a second take, job states, progress, busy shots and the error paths."""

from __future__ import annotations

import errno
import random

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from magi_engine.errors import EngineError
from magi_engine.events import ChunkFinished, Failed, StepProgress
from magi_studio.controllers.generation import ChunkJobState as Job
from magi_studio.controllers.generation import GenerationController, RunPhase
from magi_studio.controllers.run_state import RequestState as Request
from magi_studio.document import store as store_module
from magi_studio.document.commands import AddChunk, AddShot, DeleteChunk, DeleteShot, SetPrompt, SetShotStart, new_chunk
from magi_studio.document.invariants import check
from magi_studio.document.manifest import manifest_bytes, parse_manifest
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (ChunkState, ProjectSettings, active_path, chunk_states, new_project,
                                        new_shot, resolve_take)
from magi_studio.document.run_marker import read_run_marker
from magi_studio.document.store import AUTOSAVE, ProjectStore, load_recovery
from magi_studio.document.take_commands import DeleteTake
from magi_studio.player import SlotState as PlayerState
from magi_studio.player import PreviewPlayer
from magi_studio.timeline import PlayerSync
from magi_studio.document_session import DocumentSession
from magi_studio.widgets.generation_queue import GenerationQueueView

PROMPTS = ("a red ball falls to the floor", "the blue square moves left", "a green triangle grows", "a red ball falls")


def make_session(tmp_path, chunks: int = 4) -> DocumentSession:
    project = new_project(ProjectSettings(model="tiny", width=64, height=64))
    session = DocumentSession(project, ProjectStore.create(tmp_path / "Film"))
    shot = project.shots[0]
    session.push(SetPrompt(shot.id, shot.chunks[0].id, PROMPTS[0]))
    for i in range(1, chunks):
        session.push(AddChunk(shot.id, new_chunk(project, shot.id, i, PROMPTS[i % len(PROMPTS)])))
    return session


class Recorder:
    def __init__(self, controller: GenerationController) -> None:
        self.states: list[tuple] = []
        self.busy: list[list] = []
        self.progress: list = []
        self.ends: list[str] = []
        self.errors: list = []
        controller.chunkJobState.connect(lambda *args: self.states.append(args))
        controller.busyShotsChanged.connect(self.busy.append)
        controller.progressChanged.connect(self.progress.append)
        controller.runEnded.connect(self.ends.append)
        controller.errorReported.connect(self.errors.append)
        self.phases: list[str] = []
        controller.phaseChanged.connect(self.phases.append)


@pytest.fixture
def studio(qtbot, tmp_path, engine_worker, pausing_session_factory):
    """A session of one 4-chunk shot, a worker on the tiny model (pausable), the controller and a player
    filled by PlayerSync."""
    made, engines, syncs = [], [], []

    def make(pause_when=None, chunks: int = 4):
        engine = pausing_session_factory(pause_when)
        engines.append(engine)
        requests = []
        generate = engine.generate
        engine.generate = lambda request, cancel=None: (requests.append(request), generate(request, cancel))[1]
        job = engine_worker.use_session(engine)
        qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
        session = make_session(tmp_path, chunks)
        player = PreviewPlayer()
        qtbot.addWidget(player)
        # The player's one writer (the document's layout and the run's frames), deleted with the player as in
        # the window: a decode delivered after the test is dropped with it, never painted into a deleted store.
        sync = PlayerSync(player, parent=player)
        syncs.append(sync)
        sync.set_session(session)
        controller = GenerationController(session, engine_worker, player_sync=sync)
        controller.resultFrames.connect(sync.remember_frames)  # as the main window wires it
        made.append(controller)
        return type("Studio", (), dict(engine=engine, session=session, controller=controller, frames=player.store,
                                       recorder=Recorder(controller), requests=requests,
                                       shot=session.project.shots[0]))

    yield make
    for engine in engines:  # a failed test may have left the engine thread held
        engine.resume()
    for controller in made:
        controller.stop(timeout_ms=5000)
    for sync in syncs:  # no decode delivered after the test into its player, deleted with the test's widgets
        sync.shutdown()


def wait_run(qtbot, studio, count: int = 1, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: len(studio.recorder.ends) >= count, timeout=timeout)


def test_a_chunk_is_committed_and_shown_while_later_chunks_are_still_generating(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0)
    s.controller.generate_shot(s.shot.id)
    assert s.controller.is_generating()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # held right after chunk 0: the rest cannot finish
    assert s.controller.is_busy(s.shot.id)
    qtbot.waitUntil(lambda: active_path(s.shot)[0] is not None, timeout=10_000)
    assert active_path(s.shot)[1:] == [None, None, None]
    assert chunk_states(s.session.project, s.shot.id)[0] is ChunkState.DONE
    assert s.frames.state(0) is PlayerState.FRAMES  # painted in the player the moment it finished
    qtbot.waitUntil(lambda: s.controller.autosaver.pending == 0, timeout=5000)
    assert (s.session.store.path / AUTOSAVE).is_file()  # a crash now would keep chunk 0
    assert any(active_path(shot)[0] for shot in load_recovery(s.session.store.path).shots)
    assert s.controller.touches_busy_shot(SetPrompt(s.shot.id, s.shot.chunks[0].id, "x"))
    stack = s.session.undo_stack  # the top of the stack is the chunk just committed: undo must wait
    assert s.controller.touches_busy_shot(stack.command(stack.index() - 1))
    assert not s.controller.touches_busy_shot(SetPrompt("another-shot", "chunk", "x"))
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert chunk_states(s.session.project, s.shot.id) == [ChunkState.DONE] * 4
    assert [s.frames.state(i) for i in range(4)] == [PlayerState.FRAMES] * 4
    assert s.recorder.busy == [[s.shot.id], []] and not s.controller.is_busy(s.shot.id)
    assert s.session.undo_stack.count() >= 4 + 4  # the edits, then one "Generate …, chunk i" per chunk
    stack = s.session.undo_stack
    named = [stack.text(i) for i in range(stack.count()) if stack.text(i).startswith("Generate ")]
    assert named == [f"Generate {s.shot.name}, chunk 1 · Take 1"] + [f"Generate {s.shot.name}, chunk {i}"
                                                                     for i in (2, 3, 4)]


@pytest.mark.parametrize("edit", ["add", "delete"])
def test_frames_land_in_the_slot_of_their_chunk_when_an_earlier_shot_is_edited_during_the_run(qtbot, studio, edit):
    """Shot 2 generates while a chunk is added to (or deleted from) Shot 1: every preview and chunk of Shot 2
    lands in the player slot where its chunk now is, never where the job's start put it."""
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=2)
    project = s.session.project
    second = new_shot(project, prompt=PROMPTS[1])
    s.session.push(AddShot(second))
    s.session.push(AddChunk(second.id, new_chunk(project, second.id, 1, PROMPTS[2])))
    s.controller.generate_shot(second.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # Shot 2's chunk 0 is finished, chunk 1 not yet
    qtbot.waitUntil(lambda: active_path(project.shot(second.id))[0] is not None, timeout=10_000)
    if edit == "add":
        s.session.push(AddChunk(s.shot.id, new_chunk(project, s.shot.id, 2, PROMPTS[3])))
    else:
        s.session.push(DeleteChunk(s.shot.id, s.shot.chunks[1].id))
    first = len(s.shot.chunks)  # Shot 2's first slot now
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    path = active_path(project.shot(second.id))
    assert None not in path
    qtbot.waitUntil(lambda: all(s.frames.state(first + i) is PlayerState.FRAMES for i in range(2)), timeout=5000)
    for index, result_id in enumerate(path):  # each chunk's own frames, in its own slot
        assert np.array_equal(s.frames.frames(first + index), s.session.store.read_frames(project.results[result_id]))
    assert [s.frames.state(i) for i in range(first)] == [PlayerState.EMPTY] * first  # Shot 1 never generated
    assert s.frames.chunk_count == first + 2


def test_job_states_and_progress_reach_the_views(qtbot, studio):
    s = studio()
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    chunk_ids = [c.id for c in s.shot.chunks]
    for chunk_id in chunk_ids:
        states = [st for shot_id, c, st, _ in s.recorder.states if c == chunk_id]
        assert states[0] == Job.QUEUED and Job.DENOISING in states and states[-1] == Job.IDLE, states
        # Queued until it is denoised, never idle in between (each change redraws its card), no change told twice.
        assert states[:states.index(Job.DENOISING)] == [Job.QUEUED], states
        told = [(st, p) for _, c, st, p in s.recorder.states if c == chunk_id]
        assert all(a != b for a, b in zip(told, told[1:])), told
        assert s.controller.chunk_job_state(chunk_id) == (Job.IDLE, 0.0)
    denoising = [p for _, _, st, p in s.recorder.states if st == Job.DENOISING]
    assert all(0.0 <= p <= 1.0 for p in denoising) and any(0.0 < p < 1.0 for p in denoising)
    last = s.recorder.progress[-1]
    assert last.chunks == 4 and last.steps > 0 and last.text().startswith("Shot 1 · ")
    assert any(p.text().startswith("Shot 1 · chunk 1 (1 of 4 in this run) · step ") for p in s.recorder.progress)
    assert any(p.eta_s is not None for p in s.recorder.progress)


def test_cancel_keeps_every_finished_chunk_and_resume_fills_the_rest(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 1)
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.cancel()
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["cancelled"]
    assert s.engine.after_cancel.count("StepProgress") <= 1  # stopped within one step
    path = active_path(s.shot)
    assert path[:2] != [None, None] and None in path  # both finished chunks kept, the rest missing
    kept = {i: s.session.store.read_latent(s.session.project.results[r]) for i, r in enumerate(path) if r}
    assert all(st in (Job.IDLE,) for st in (s.controller.chunk_job_state(c.id)[0] for c in s.shot.chunks))
    assert len(s.shot.takes) == 1

    s.controller.resume()
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["cancelled", "finished"]
    resumed = active_path(s.shot)
    assert None not in resumed and len(s.shot.takes) == 1  # the same take, filled
    assert resumed[:len(kept)] == path[:len(kept)]
    first_new = s.session.project.results[resumed[len(kept)]]
    assert first_new.context_ids == tuple(path[:len(kept)])
    assert all(torch.equal(s.requests[-1].context_latents[i], latent) for i, latent in kept.items())


def test_regenerate_from_chunk_2_keeps_chunk_1_bit_identical_as_a_second_take(qtbot, studio):
    s = studio()
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    project, store = s.session.project, s.session.store
    old_take, old_path = s.shot.active_take_id, active_path(s.shot)
    first_latent = store.read_latent(project.results[old_path[0]]).clone()
    old_seed = s.shot.chunks[1].seed

    reported = len(s.recorder.progress)
    s.controller.regenerate_from(s.shot.id, 1)
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["finished", "finished"] and not s.recorder.errors
    # The status names each chunk by its place in the shot, and counts the run's own chunks.
    texts = [p.text() for p in s.recorder.progress[reported:]]
    assert any("chunk 2 (1 of 3 in this run)" in t for t in texts), texts[:3]
    assert any("chunk 4 (3 of 3 in this run)" in t for t in texts)
    assert not any("chunk 1 (" in t for t in texts)
    new_path = active_path(s.shot)
    assert len(s.shot.takes) == 2 and s.shot.active_take_id != old_take
    assert new_path[0] == old_path[0] and set(new_path[1:]).isdisjoint(old_path)
    assert torch.equal(store.read_latent(project.results[new_path[0]]), first_latent)
    request = s.requests[-1]
    assert request.start_chunk == 1 and request.prefix_video is None  # context from latents, not pixels
    assert torch.equal(request.context_latents[0], first_latent)
    assert project.results[new_path[1]].context_ids == (old_path[0],)
    assert s.shot.chunks[1].seed != old_seed  # an unlocked seed is re-rolled, undoably
    # The old take still resolves to its own results, every file still there.
    assert resolve_take(s.shot, old_take) == old_path
    for result_id in old_path:
        assert store.read_frames(project.results[result_id]).shape == (24, 64, 64, 3)
    assert chunk_states(project, s.shot.id) == [ChunkState.DONE] * 4


def _history(session) -> tuple:
    stack = session.undo_stack
    return stack.count(), stack.index(), stack.isClean(), [stack.text(i) for i in range(stack.count())]


@pytest.mark.parametrize("how", ["load fails", "engine fails", "cancelled"])
def test_a_regeneration_that_makes_nothing_leaves_the_document_as_it_was_before_the_click(qtbot, studio, how):
    s = studio(chunks=2)
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    s.session.mark_saved()
    seeds, before = [c.seed for c in s.shot.chunks], _history(s.session)
    if how == "load fails":
        s.session.project.settings.model = "no-such-model"
    elif how == "engine fails":
        s.engine.generate = lambda request, cancel=None: iter([Failed(EngineError("The GPU ran out of memory."))])
    s.controller.regenerate_from(s.shot.id, 1)
    assert s.shot.chunks[1].seed != seeds[1]  # re-rolled for the run: the card says what it is making
    if how == "cancelled":
        s.controller.cancel()
    wait_run(qtbot, s, 2)
    assert s.recorder.ends[-1] == ("cancelled" if how == "cancelled" else "failed")
    # No seed that made nothing, no step in the history, not even one to redo, and not dirty.
    assert [c.seed for c in s.shot.chunks] == seeds and _history(s.session) == before
    assert not s.session.undo_stack.canRedo() and not s.session.is_dirty
    assert chunk_states(s.session.project, s.shot.id) == [ChunkState.DONE] * 2 and len(s.shot.takes) == 1


def test_a_failed_regeneration_after_another_edit_restores_its_seed_and_retry_rolls_a_new_one(qtbot, studio):
    s = studio(chunks=2)
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    s.session.project.settings.model = "no-such-model"
    old_seed = s.shot.chunks[1].seed
    s.controller.regenerate_from(s.shot.id, 1)
    s.session.push(AddShot(new_shot(s.session.project, name="B", prompt=PROMPTS[2])))  # the seed is not the last step
    wait_run(qtbot, s, 2)
    assert s.recorder.ends[-1] == "failed" and s.shot.chunks[1].seed == old_seed
    assert s.session.undo_stack.undoText().startswith("Seed restored for Shot 1")
    s.session.project.settings.model = "tiny"
    [failed] = s.controller.ended_requests()
    assert s.controller.retry(failed.id)  # asked again, it regenerates as the first time: with a new seed
    assert s.shot.chunks[1].seed != old_seed
    wait_run(qtbot, s, 3)
    assert s.recorder.ends[-1] == "finished" and len(s.shot.takes) == 2
    assert s.requests[-1].chunks[-1].seed == s.shot.chunks[1].seed


def test_a_regeneration_that_committed_a_chunk_keeps_its_seed_when_it_then_fails(qtbot, studio):
    s = studio(chunks=2)
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    old_seed = s.shot.chunks[0].seed
    generate = s.engine.generate

    def fails_after_one_chunk(request, cancel=None):
        for event in generate(request, cancel):
            yield event
            if isinstance(event, ChunkFinished):
                yield Failed(EngineError("The GPU ran out of memory."))
                return

    s.engine.generate = fails_after_one_chunk
    s.controller.regenerate_from(s.shot.id, 0)
    wait_run(qtbot, s, 2)
    assert s.recorder.ends[-1] == "failed"
    new_path = active_path(s.shot)
    assert len(s.shot.takes) == 2 and new_path[0] is not None and new_path[1] is None  # its chunk is kept...
    assert s.shot.chunks[0].seed != old_seed  # ... with the seed that made it
    assert s.session.project.results[new_path[0]].seed == s.shot.chunks[0].seed


def test_a_storyboard_run_generates_shots_in_order_and_continues_the_previous_one(qtbot, studio):
    s = studio(chunks=2)
    project = s.session.project
    second = new_shot(project, prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(second))
    s.session.push(SetShotStart(second.id, "continue"))
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    first_path, second_path = active_path(project.shots[0]), active_path(project.shots[1])
    assert None not in first_path and None not in second_path
    assert project.results[second_path[0]].context_ids == tuple(first_path)
    assert [s.frames.state(i) for i in range(3)] == [PlayerState.FRAMES] * 3  # shot 2 painted after shot 1
    assert np.array_equal(s.frames.frames(2), s.session.store.read_frames(project.results[second_path[0]]))
    assert s.recorder.busy == [[project.shots[0].id], [second.id], []]


def test_a_chunk_that_cannot_be_written_fails_alone_and_stops_the_run(qtbot, studio, monkeypatch):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 1)
    written = []
    real_write = store_module._write_all

    def write_all(handle, data):
        if "results" in handle.name:
            written.append(handle.name)
            if len(written) > 3:  # the second chunk's first file: the disk is full
                raise OSError(errno.ENOSPC, "No space left on device")
        real_write(handle, data)

    monkeypatch.setattr(store_module, "_write_all", write_all)
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    qtbot.waitUntil(lambda: bool(s.recorder.errors), timeout=5000)
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["failed"]
    error = s.recorder.errors[0]
    assert isinstance(error, ProjectError) and error.title == "Project problem" and "disk is full" in str(error)
    assert active_path(s.shot)[0] is not None and active_path(s.shot)[1:] == [None] * 3
    assert s.controller.chunk_job_state(s.shot.chunks[1].id)[0] == Job.FAILED
    assert not list((s.session.store.path / "results").glob(".*tmp*"))  # no half-written result left


def test_the_project_model_is_loaded_first_and_a_failed_load_ends_the_run(qtbot, studio):
    s = studio()
    s.session.project.settings.model = "no-such-model"
    failures = []
    s.controller.worker.event.connect(lambda job, event: isinstance(event, Failed) and failures.append(event.error))
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    assert s.recorder.ends == ["failed"] and failures and failures[0].title == "Checkpoint problem"
    assert s.recorder.phases == ["loading", "idle"]
    assert s.recorder.progress[0].text().startswith("Loading model no-such-model… · ")
    assert not s.recorder.errors  # the worker's failure is reported once, by the worker's path
    assert all(s.controller.chunk_job_state(c.id) == (Job.IDLE, 0.0) for c in s.shot.chunks)
    # The queue says the request failed, and why (the model did not load), not that someone cancelled it.
    assert [(item.state, item.failed) for item in s.controller.ended_requests()] == [
        (Request.FAILED, str(failures[0]))]


def test_regenerating_the_shot_under_way_from_a_chunk_it_reached_replaces_its_job(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0)
    other = new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(other))
    s.controller.generate_storyboard()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # chunk 1 finished, chunk 2 under way
    qtbot.waitUntil(lambda: active_path(s.shot)[0] is not None, timeout=5000)
    kept, old_seed = active_path(s.shot)[0], s.shot.chunks[0].seed
    s.controller.regenerate_from(s.shot.id, 0)  # before the chunk being denoised: the job stops, this goes first
    assert [(i.shot_name, i.from_index, i.current) for i in s.controller.queue()] == [
        ("Shot 1", None, True), ("Shot 1", 0, False), ("B", None, False)]
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors  # one run: the queue went on
    other = s.session.project.shot(other.id)
    assert None not in active_path(s.shot) and None not in active_path(other)
    first, second = s.shot.takes
    assert list(first.results.values()) == [kept]  # the replaced job kept its finished chunk, and made no other
    assert s.shot.active_take_id == second.id and kept not in active_path(s.shot)
    new_seed = s.shot.chunks[0].seed
    assert new_seed != old_seed and second.specs[s.shot.chunks[0].id].seed == new_seed
    assert [len(r.chunks) for r in s.requests] == [4, 4, 1]  # Shot 1's job (stopped), Shot 1 again, B
    assert s.requests[1].chunks[0].seed == new_seed
    assert s.recorder.busy == [[s.shot.id], [other.id], []]


def test_a_request_during_a_run_joins_its_queue_in_order_and_a_paused_run_waits_with_it(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=3)
    project = s.session.project
    for name in ("B", "C"):
        s.session.push(AddShot(new_shot(project, name=name, prompt=PROMPTS[2], seed=7)))
    b, c = project.shots[1:]
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.generate_shot(c.id)
    s.controller.generate_storyboard()  # B; Shot 1 is being generated as asked, C waits already: not added again
    s.session.push(SetPrompt(s.shot.id, s.shot.chunks[2].id, PROMPTS[3]))
    s.controller.regenerate_from(s.shot.id, 2)  # edited, on a chunk the job has not reached: it waits behind the job
    names = [(i.shot_name, i.from_index, i.current) for i in s.controller.queue()]
    assert names == [("Shot 1", None, True), ("C", None, False), ("B", None, False), ("Shot 1", 2, False)]
    assert s.controller.chunk_job_state(c.chunks[0].id)[0] == Job.QUEUED
    marked = read_run_marker(s.session.store.path).chunks  # a restart would offer what joined the run too
    assert [chunk_id for _, chunk_id in marked] == [chunk.id for shot in (s.shot, c, b) for chunk in shot.chunks]
    assert s.controller.progress().chunks == 3 + 1 + 1 + 1  # an estimate until each request is planned
    s.controller.pause()
    s.engine.resume()
    qtbot.waitUntil(s.controller.is_paused, timeout=10_000)
    s.controller.generate_variations(b.id, 0, 1)  # a paused run stays paused: the request joins its queue
    assert s.controller.is_paused() and [i.shot_name for i in s.controller.queue()][-1] == "B"
    s.controller.resume_paused()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert [busy for busy in s.recorder.busy if busy] == [[s.shot.id], [s.shot.id], [c.id], [b.id], [s.shot.id],
                                                        [b.id]]
    assert len(s.shot.takes) == 2 and len(b.takes) == 2 and len(c.takes) == 1
    assert all(None not in active_path(shot) for shot in project.shots)
    assert s.recorder.progress[-1].chunks == s.recorder.progress[-1].chunk  # the count came out exact


def test_variations_are_queue_items_that_make_sibling_takes_none_of_them_active(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=2)
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    [lone] = s.controller.generate_variations(s.shot.id, 1, 1)
    s.controller.remove_queued(lone)  # taken out again: the job under way still makes chunk 2, and says so
    assert s.controller.chunk_job_state(s.shot.chunks[1].id)[0] in (Job.QUEUED, Job.DENOISING)
    ids = s.controller.generate_variations(s.shot.id, 1, 3, rng=random.Random(3))  # during the run: behind it
    assert [i.text() for i in s.controller.queue()] == ["Shot 1 · generating"] + [
        f"Shot 1 · variation {n} of 3 · from chunk 2" for n in (1, 2, 3)]
    assert [i.id for i in s.controller.queue()[1:]] == ids
    view = GenerationQueueView()  # the queue panel: the same rows; its buttons move and remove one variation
    qtbot.addWidget(view)
    view.set_generation(s.controller)
    assert view.items() == [i.text() for i in s.controller.queue()]
    view.list.setCurrentRow(3)
    for _ in range(2):
        qtbot.mouseClick(view.up_button, Qt.MouseButton.LeftButton)
    view.list.setCurrentRow(3)
    qtbot.mouseClick(view.remove_button, Qt.MouseButton.LeftButton)
    assert [i.label for i in s.controller.queue()[1:]] == ["variation 3 of 3", "variation 1 of 3"]
    assert view.items()[1:] == ["Shot 1 · variation 3 of 3 · from chunk 2",
                                "Shot 1 · variation 1 of 3 · from chunk 2"]
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors and view.items() == []
    first = s.shot.takes[0]
    variations = s.shot.takes[1:]
    assert s.shot.active_take_id == first.id and len(variations) == 2  # none made active
    assert None not in active_path(s.shot) and all(None not in resolve_take(s.shot, t.id) for t in variations)
    assert all(t.parent_id == first.id and t.first_chunk_id == s.shot.chunks[1].id for t in variations)
    seeds = [t.specs[s.shot.chunks[1].id].seed for t in variations]
    assert len(set(seeds)) == 2 and first.specs[s.shot.chunks[1].id].seed not in seeds
    assert [r.chunks[0].seed for r in s.requests[1:]] == seeds  # each job ran with its variation's seed, in order
    assert s.recorder.busy == [[s.shot.id], []]


def test_a_chunk_deleted_while_it_is_generated_comes_back_with_its_result_and_the_user_is_told(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, StepProgress) and 1 in e.chunk_steps)
    notices = []
    s.controller.noticeReported.connect(notices.append)
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # chunk 2 is being denoised
    deleted = s.shot.chunks[1].id
    s.session.push(DeleteChunk(s.shot.id, deleted))
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert notices == ["Chunk 2 of Shot 1 was deleted while it was being generated; it is back with its new result "
                       "(delete it again if you do not want it)."]
    assert [c.id for c in s.shot.chunks][1] == deleted and None not in active_path(s.shot)
    assert check(s.session.project) == []


def test_a_take_deleted_while_its_first_chunk_is_generated_leaves_no_dangling_parent(qtbot, studio):
    s = studio()
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    s.controller.regenerate_from(s.shot.id, 2)  # Take 2 under Take 1
    wait_run(qtbot, s, 2)
    take2 = s.shot.active_take_id
    s.engine.pause_when = lambda e: isinstance(e, StepProgress)  # held while its first chunk is denoised
    s.controller.regenerate_from(s.shot.id, 3)  # a Take 3 is planned under Take 2
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.session.push(DeleteTake(s.shot.id, take2))
    s.engine.resume()
    wait_run(qtbot, s, 3)
    assert s.recorder.ends == ["finished"] * 3 and check(s.session.project) == []
    assert s.shot.find_take(s.shot.active_take_id).parent_id == s.shot.takes[0].id
    s.session.push(DeleteTake(s.shot.id, s.shot.active_take_id))
    assert check(s.session.project) == []


def test_a_run_goes_through_its_phases_and_says_so_from_the_first_second(qtbot, studio):
    s = studio(chunks=2)
    second = new_shot(s.session.project, prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(second))
    s.controller.generate_storyboard()
    assert s.controller.phase is RunPhase.PLANNING and s.recorder.progress[0].text() == "Planning Shot 1 · 0:00"
    wait_run(qtbot, s)
    assert s.recorder.phases == ["planning", "running", "draining", "planning", "running", "draining", "idle"]
    texts = [p.text() for p in s.recorder.progress]
    first_step = next(i for i, t in enumerate(texts) if " · step " in t)
    assert " · starting · " in texts[first_step - 1] or " · step 0/" in texts[first_step - 1]
    assert any(t.startswith("Shot 2 · chunk 1 (3 of 3 in this run) · step ") for t in texts)
    etas = [p.eta_s for p in s.recorder.progress if p.eta_s is not None]
    assert etas and all(p.eta_s is None for p in s.recorder.progress[:3])  # none before two timed steps
    assert s.controller.progress() is None and not s.controller.is_generating()


def test_cancel_in_each_phase_ends_the_run_and_keeps_what_finished(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, StepProgress))
    s.controller.generate_shot(s.shot.id)
    assert s.controller.phase is RunPhase.PLANNING
    s.controller.cancel()  # while planning: the plan's delivery ends the run
    wait_run(qtbot, s)
    assert s.recorder.phases == ["planning", "idle"] and not s.engine.paused.is_set()
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    assert s.controller.phase is RunPhase.RUNNING
    s.controller.cancel()
    assert s.controller.phase is RunPhase.RUNNING  # until the engine says it stopped
    assert s.recorder.progress[-1].text().startswith("Stopping after this step… · ")
    s.engine.resume()
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["cancelled", "cancelled"]
    assert s.recorder.phases[2:] == ["planning", "running", "draining", "idle"]
    assert s.controller.continue_stopped()  # what the cancel left, from its first chunk not done
    wait_run(qtbot, s, 3)
    assert s.recorder.ends[-1] == "finished" and None not in active_path(s.shot)


def test_the_queue_shows_the_run_in_order_and_can_be_reordered_trimmed_paused_and_resumed(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=2)
    project = s.session.project
    for name in ("B", "C"):
        shot = new_shot(project, name=name, prompt=PROMPTS[2], seed=7)
        s.session.push(AddShot(shot))
        s.session.push(AddChunk(shot.id, new_chunk(project, shot.id, 1, PROMPTS[1])))
    first, b, c = project.shots
    changes = []
    s.controller.queueChanged.connect(lambda: changes.append([i.shot_name for i in s.controller.queue()]))
    assert s.controller.queue() == []
    s.controller.generate_storyboard()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # Shot 1's first chunk is finished
    assert [(i.shot_name, i.current) for i in s.controller.queue()] == [("Shot 1", True), ("B", False), ("C", False)]
    by_shot = {i.shot_id: i.id for i in s.controller.queue()}
    s.controller.move_queued(by_shot[c.id], -1)
    assert [i.shot_name for i in s.controller.queue()] == ["Shot 1", "C", "B"] and changes[-1] == ["Shot 1", "C", "B"]
    s.controller.remove_queued(by_shot[b.id])
    assert [i.shot_name for i in s.controller.queue()] == ["Shot 1", "C"]
    assert s.controller.chunk_job_state(b.chunks[0].id)[0] == Job.IDLE  # no longer queued on its card
    s.controller.pause()
    assert s.recorder.progress[-1].text().startswith("Pausing after this step… · ")
    s.engine.resume()
    qtbot.waitUntil(s.controller.is_paused, timeout=10_000)
    assert s.recorder.ends == [] and s.controller.is_generating() and s.controller.busy_shots == []
    assert [(i.shot_name, i.current) for i in s.controller.queue()] == [("Shot 1", False), ("C", False)]
    assert active_path(first)[0] is not None and active_path(first)[1] is None  # the finished chunk is kept
    assert s.recorder.progress[-1].text().startswith("Paused · ")
    s.controller.resume_paused()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and len(first.takes) == 1  # resumed into the same take
    assert None not in active_path(first) and None not in active_path(c) and active_path(b) == [None, None]
    assert s.recorder.phases[-4:] == ["planning", "running", "draining", "idle"] and "paused" in s.recorder.phases


def test_a_shot_deleted_while_it_generates_keeps_its_finished_chunk_in_the_project(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, StepProgress))
    project = s.session.project
    s.session.push(AddShot(new_shot(project, prompt=PROMPTS[2], seed=7)))  # the storyboard keeps a shot
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # its first chunk is being denoised
    s.session.push(DeleteShot(s.shot.id))
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["failed"] and len(s.recorder.errors) == 1
    assert "was deleted while it was being generated" in str(s.recorder.errors[0])
    chunk_ids = {c.id for c in s.shot.chunks}
    kept = [r for r in project.results.values() if r.chunk_id in chunk_ids]
    assert kept and check(project) == []  # in the project's results, saved with it, on no take
    assert all(s.session.store.read_frames(r).shape == (24, 64, 64, 3) for r in kept)


def adopt_on_load(monkeypatch, s) -> list[str]:
    """The worker's load_model adopts the test's engine under the asked name (a load that takes no disk)."""
    asked = []

    def load_model(spec, device="auto", dtype=None, **_):
        asked.append(spec)
        return s.controller.worker.use_session(s.engine, spec)

    monkeypatch.setattr(s.controller.worker, "load_model", load_model)
    return asked


def test_a_run_waiting_for_its_model_goes_on_with_a_newer_load_of_that_model(qtbot, studio, monkeypatch):
    s = studio(chunks=2)
    asked = adopt_on_load(monkeypatch, s)
    s.session.project.settings.model = "studio-next"
    s.controller.generate_shot(s.shot.id)
    assert s.controller.phase is RunPhase.LOADING and asked == ["studio-next"]
    s.controller.worker.use_session(s.engine, "studio-next")  # Settings loads it again: the run's load is superseded
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert asked == ["studio-next"] and None not in active_path(s.shot)


def test_a_run_waiting_for_its_model_loads_it_again_after_a_load_of_another_model(qtbot, studio, monkeypatch):
    s = studio(chunks=2)
    asked = adopt_on_load(monkeypatch, s)
    s.session.project.settings.model = "studio-next"
    s.controller.generate_shot(s.shot.id)
    s.controller.worker.use_session(s.engine, "tiny")  # e.g. the app's own first load, of another model
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert asked == ["studio-next", "studio-next"] and s.controller.worker.model_info.spec == "studio-next"
    assert s.recorder.phases[:2] == ["loading", "planning"]  # waited in LOADING, never ended between
    assert None not in active_path(s.shot)


def test_a_model_fitted_to_a_smaller_size_loads_again_and_says_so_but_more_chunks_never_reload(
        qtbot, studio, monkeypatch):
    """A model whose memory plan was made for another size or window (a MAGI-1 checkpoint on a GPU) loads again,
    fitted to the project, before the run; it is fitted for runs of any length, so a storyboard that grows by a
    chunk generates at once."""
    from magi_engine.loading.memory import MemoryTarget

    s = studio(chunks=2)
    wanted = s.session.project.settings
    targets = []

    def load_model(spec, device="auto", dtype=None, *, target=None, **_):
        targets.append(target)
        monkeypatch.setattr(s.engine.bundle, "memory_target", target)  # what the loader records: the plan it made
        return s.controller.worker.use_session(s.engine, spec)

    monkeypatch.setattr(s.controller.worker, "load_model", load_model)
    smaller = MemoryTarget(wanted.width - 16, wanted.height, wanted.window, None)
    load_model(wanted.model, target=smaller)
    qtbot.waitUntil(lambda: s.controller.worker.model_info.memory_target is not None, timeout=5000)
    notices = []
    s.controller.queueNotice.connect(notices.append)
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    fitted = MemoryTarget(wanted.width, wanted.height, wanted.window, None)
    assert targets == [smaller, fitted] and s.recorder.ends == ["finished"]
    assert notices == [f"Reloading {s.controller.worker.model_info.label} to fit the project's memory: it was "
                       f"fitted to {wanted.width - 16}×{wanted.height}, the model's window, the project needs "
                       f"{wanted.width}×{wanted.height}, the model's window."]
    for index in (2, 3, 4, 5, 6):  # the storyboard grows past a full cache: the model stays
        s.session.push(AddChunk(s.shot.id, new_chunk(s.session.project, s.shot.id, index, PROMPTS[1])))
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["finished", "finished"] and not s.recorder.errors
    assert len(targets) == 2 and len(notices) == 1


def test_generate_from_a_chunk_to_a_stop_makes_exactly_those_chunks(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0)
    b = new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    s.controller.generate_from(s.shot.id, 0, 2)  # an in/out range over chunks 1-2 of 4
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.generate_from(s.shot.id, 0, 2)  # asked again: the run makes it already
    s.controller.generate_from(b.id, 0)
    assert [i.text() for i in s.controller.queue()] == ["Shot 1 · generating", "B · from chunk 1"]
    assert s.controller.chunk_job_state(s.shot.chunks[2].id)[0] == Job.IDLE  # never queued: beyond the out mark
    s.controller.pause()
    s.engine.resume()
    qtbot.waitUntil(s.controller.is_paused, timeout=10_000)
    assert [i.text() for i in s.controller.queue()][0] == "Shot 1 · the chunks not done up to chunk 2"
    s.controller.resume_paused()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert [r is not None for r in active_path(s.shot)] == [True, True, False, False] and len(s.shot.takes) == 1
    assert [len(r.chunks) for r in s.requests] == [2, 1, 1]  # chunks 1-2 (paused after 1), chunk 2, B


def test_a_paused_variation_goes_on_in_its_own_take_from_its_first_chunk_not_done(qtbot, studio):
    s = studio(chunks=3)
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s)
    first = s.shot.active_take_id
    s.engine.pause_when = lambda e: isinstance(e, ChunkFinished) and e.chunk == 0
    s.controller.generate_variations(s.shot.id, 0, 1, rng=random.Random(5))
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.pause()
    s.engine.resume()
    qtbot.waitUntil(s.controller.is_paused, timeout=10_000)
    variation = s.shot.takes[1]
    made = dict(variation.results)
    assert 1 <= len(made) < 3 and [i.label for i in s.controller.queue()] == ["variation 1 of 1"]
    seeds = s.requests[1].chunks  # the variation's seeds, one per chunk
    s.controller.resume_paused()
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["finished", "finished"] and not s.recorder.errors
    assert [t.id for t in s.shot.takes] == [first, variation.id] and s.shot.active_take_id == first
    assert None not in resolve_take(s.shot, variation.id)
    assert {k: variation.results[k] for k in made} == made  # the finished chunks stay as they were
    resumed = s.requests[2]  # only the chunks not done, with the variation's own seeds
    assert [c.seed for c in resumed.chunks] == [c.seed for c in seeds[len(made):]]
    assert [variation.specs[c.id].seed for c in s.shot.chunks] == [c.seed for c in seeds]
    assert len(s.requests) == 3 and check(s.session.project) == []


def test_generate_during_a_run_of_the_same_shot_adds_nothing_and_says_so(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=3)
    notices = []
    s.controller.queueNotice.connect(notices.append)
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.generate_shot(s.shot.id)  # Generate Shot again, Generate, Generate From chunk 2 (same seed)
    s.controller.generate_storyboard()
    s.controller.generate_from(s.shot.id, 1)
    assert [(i.shot_name, i.current) for i in s.controller.queue()] == [("Shot 1", True)]
    assert notices == ["Shot 1 is already being generated as asked: nothing was added to the queue."] * 3
    s.session.push(SetPrompt(s.shot.id, s.shot.chunks[2].id, "a blue ball"))  # edited after its job was planned
    s.controller.generate_shot(s.shot.id)  # so it is made again after the job
    s.controller.generate_shot(s.shot.id)
    assert [(i.shot_name, i.from_index, i.current) for i in s.controller.queue()] == [
        ("Shot 1", None, True), ("Shot 1", None, False)]
    assert notices[3:] == ["Shot 1 is already in the queue as asked: nothing was added to the queue."]
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors
    assert [len(r.chunks) for r in s.requests] == [3, 1] and s.requests[1].chunks[0].prompt.endswith("a blue ball")
    assert chunk_states(s.session.project, s.shot.id) == [ChunkState.DONE] * 3


def test_a_request_that_cannot_be_planned_fails_alone_and_the_run_goes_on(qtbot, studio):
    s = studio(chunks=2)
    project = s.session.project
    for name in ("B", "C"):
        s.session.push(AddShot(new_shot(project, name=name, prompt=PROMPTS[2], seed=7)))
    b, c = project.shots[1:]
    s.session.push(SetShotStart(b.id, "image"))  # from a reference image, but none is set
    view = GenerationQueueView()
    qtbot.addWidget(view)
    view.set_generation(s.controller)
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and len(s.recorder.errors) == 1  # one run: C was generated after B failed
    reason = str(s.recorder.errors[0])
    assert reason.startswith("B starts from a reference image, but none is set.")
    assert None not in active_path(s.shot) and None not in active_path(c) and active_path(b) == [None]
    assert [(i.shot_name, i.failed) for i in s.controller.failed_requests()] == [("B", reason)]
    assert view.items() == [f"B · failed: {reason}"] and not view.list.isHidden() and view.empty.isHidden()
    assert all(s.controller.chunk_job_state(chunk.id) == (Job.IDLE, 0.0) for chunk in b.chunks)
    view.list.setCurrentRow(0)
    assert view.remove_button.isEnabled() and not view.up_button.isEnabled() and not view.down_button.isEnabled()
    qtbot.mouseClick(view.remove_button, Qt.MouseButton.LeftButton)  # dismissed
    assert s.controller.failed_requests() == [] and view.items() == []


def test_a_request_made_while_the_run_is_stopping_starts_once_it_has_stopped(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=2)
    notices = []
    s.controller.queueNotice.connect(notices.append)
    s.controller.generate_shot(s.shot.id)
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.cancel()
    s.controller.generate_shot(s.shot.id)  # Stop, then Generate at once: not lost with the stopped run's queue
    assert notices == ["The run is stopping; what you asked for starts once it has stopped."]
    s.engine.resume()
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["cancelled", "finished"] and not s.recorder.errors
    assert None not in active_path(s.shot) and len(s.shot.takes) == 1  # the stopped take, filled
    s.controller.generate_shot(s.shot.id)
    assert not s.controller.is_generating()  # nothing left: no run, and the status bar says so
    assert notices[-1] == "Nothing to generate: the chunks asked for are all done."


def test_each_request_in_the_queue_has_its_own_state_and_progress(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=4)
    b = new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    s.controller.generate_storyboard()
    running, waiting = s.controller.queue()
    assert (running.state, running.chunks, running.progress_text()) == (Request.RUNNING, 0, "planning")
    assert (waiting.state, waiting.shot_name, waiting.chunks) == (Request.QUEUED, "B", 1)  # its estimate
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # Shot 1's chunk 1 is done, chunk 2 under way
    qtbot.waitUntil(lambda: s.controller.queue()[0].chunk == 2, timeout=5000)
    running = s.controller.queue()[0]
    assert (running.state, running.chunk, running.chunks) == (Request.RUNNING, 2, 4)
    assert 0.25 <= running.fraction < 0.5 and running.progress_text().startswith("chunk 2 of 4")
    run = s.controller.progress()  # the request's ETA is its share of the run's, never more
    assert running.eta_s is None or (run.eta_s is not None and 0 <= running.eta_s <= run.eta_s)
    s.controller.pause()
    s.engine.resume()
    qtbot.waitUntil(s.controller.is_paused, timeout=10_000)
    held, waiting = s.controller.queue()
    assert (held.state, held.shot_name, held.chunk, held.chunks) == (Request.PAUSED, "Shot 1", 1, 4)
    assert held.fraction == 0.25 and waiting.state is Request.QUEUED
    s.controller.resume_paused()
    wait_run(qtbot, s)
    assert s.controller.queue() == [] and s.recorder.ends == ["finished"]


def test_one_request_cancelled_lets_the_run_go_on_and_retry_generates_what_it_left(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=3)
    project = s.session.project
    b = new_shot(project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    completed = []
    s.controller.completedChanged.connect(lambda: completed.append(len(s.controller.completed())))
    s.controller.generate_storyboard()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)  # Shot 1's first chunk is done
    first = s.controller.queue()[0]
    assert s.controller.cancel_request(first.id)  # Shot 1 alone: the job stops within one step
    assert [(i.shot_name, i.state, i.stopping) for i in s.controller.queue()] == [
        ("Shot 1", Request.RUNNING, "cancelling"), ("B", Request.QUEUED, "")]
    assert s.controller.queue()[0].progress_text() == "Cancelling after this step…"
    assert s.controller.ended_requests() == [] and not s.controller.cancel_request(first.id)  # listed once stopped
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["finished"] and not s.recorder.errors  # one run: B was generated after it
    assert active_path(s.shot)[0] is not None and active_path(s.shot)[1:] == [None, None]  # its chunk 1 kept
    b = project.shot(b.id)  # the document's own (AddShot holds a copy)
    assert None not in active_path(b)
    [cancelled] = s.controller.ended_requests()
    assert (cancelled.id, cancelled.state, cancelled.text()) == (first.id, Request.CANCELLED, "Shot 1 · cancelled")
    [done] = s.controller.completed()
    assert (done.shot_name, done.take_name, done.chunks, done.first_chunk, done.last_chunk) == ("B", "Take 1", 1, 1, 1)
    assert done.take_id == b.active_take_id and done.seconds > 0
    assert s.controller.retry(first.id)  # from the document as it is: its first chunk not done
    assert s.controller.ended_requests() == [] and s.controller.queue()[0].shot_name == "Shot 1"
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["finished", "finished"] and None not in active_path(s.shot)
    assert len(s.shot.takes) == 1 and s.requests[-1].start_chunk == 1  # the take it made is filled from chunk 2
    assert [(r.shot_name, r.take_name, r.first_chunk, r.last_chunk, r.chunks) for r in s.controller.completed()] == [
        ("B", "Take 1", 1, 1, 1), ("Shot 1", "Take 1", 1, 3, 3)]  # its chunk from before the cancel counts
    assert s.controller.completed()[-1].text().startswith("Shot 1 · Take 1 · chunks 1–3 · ")
    assert completed == [1, 2]
    s.controller.clear_completed()
    assert s.controller.completed() == [] and completed == [1, 2, 0]


def test_a_waiting_request_cancelled_is_listed_and_removed_and_stop_lists_what_the_run_left(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=2)
    project = s.session.project
    for name in ("B", "C"):
        s.session.push(AddShot(new_shot(project, name=name, prompt=PROMPTS[2], seed=7)))
    b, c = project.shots[1:]
    s.controller.generate_storyboard()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    by_shot = {i.shot_id: i.id for i in s.controller.queue()}
    assert s.controller.cancel_request(by_shot[b.id])
    assert [(i.shot_name, i.state) for i in s.controller.queue()] == [("Shot 1", Request.RUNNING), ("C", Request.QUEUED)]
    assert [(i.shot_name, i.state) for i in s.controller.ended_requests()] == [("B", Request.CANCELLED)]
    assert s.controller.chunk_job_state(b.chunks[0].id) == (Job.IDLE, 0.0)  # no longer queued on its card
    s.controller.remove_queued(by_shot[b.id])  # taken off the list
    assert s.controller.ended_requests() == [] and not s.controller.retry(by_shot[b.id])
    s.controller.cancel()  # Stop: the request under way and the waiting one are listed as cancelled, for Retry
    s.engine.resume()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["cancelled"]
    assert [(i.shot_name, i.state) for i in s.controller.ended_requests()] == [
        ("Shot 1", Request.CANCELLED), ("C", Request.CANCELLED)]
    assert s.controller.continue_stopped()  # going on (quit's Keep Working): no longer listed as cancelled
    assert s.controller.ended_requests() == []
    wait_run(qtbot, s, 2)
    assert None not in active_path(s.shot) and None not in active_path(c) and active_path(b) == [None]


def test_a_failed_request_is_retried_once_its_cause_is_fixed(qtbot, studio):
    s = studio(chunks=1)
    b = new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    s.session.push(SetShotStart(b.id, "image"))  # from a reference image, but none is set
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    [failed] = s.controller.ended_requests()
    assert failed.state is Request.FAILED and failed.failed.startswith("B starts from a reference image")
    assert s.controller.failed_requests() == [failed]
    s.session.push(SetShotStart(b.id, "text"))
    assert s.controller.retry(failed.id)
    wait_run(qtbot, s, 2)
    assert s.recorder.ends == ["finished", "finished"] and None not in active_path(s.session.project.shot(b.id))
    assert s.controller.ended_requests() == [] and [r.shot_name for r in s.controller.completed()] == ["Shot 1", "B"]


def test_an_engine_failure_fails_its_request_with_the_engines_sentence_and_keeps_the_rest_for_retry(qtbot, studio):
    s = studio(chunks=2)
    b = new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    generate = s.engine.generate

    def failing(request, cancel=None):  # the engine fails on Shot 1's job
        yield Failed(EngineError("The GPU ran out of memory."))

    s.engine.generate = failing
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    assert s.recorder.ends == ["failed"]
    assert [(i.shot_name, i.state, i.failed) for i in s.controller.ended_requests()] == [
        ("Shot 1", Request.FAILED, "The GPU ran out of memory."), ("B", Request.CANCELLED, "")]
    s.engine.generate = generate
    for row in s.controller.ended_requests():
        s.controller.retry(row.id)
    wait_run(qtbot, s, 2)
    assert s.recorder.ends[-1] == "finished" and all(None not in active_path(shot) for shot in s.session.project.shots)


def test_draft_mode_generates_drafts_and_render_at_final_quality_queues_a_final_take_of_them(qtbot, studio):
    from magi_studio.document.commands import SetProjectSettings
    from magi_studio.document.model import is_draft_take, resolve_specs

    s = studio(chunks=2)
    s.session.push(SetProjectSettings(width=256, height=256))
    s.session.push(SetProjectSettings(draft=True))  # what the Draft toggle pushes
    s.controller.generate_shot(s.shot.id)
    wait_run(qtbot, s, timeout=60_000)  # 256x256 chunks on a loaded machine
    assert [(r.width, r.height) for r in s.requests] == [(128, 128)]  # the engine's draft of 256x256
    draft = s.shot.take(s.shot.active_take_id)
    assert is_draft_take(draft) and chunk_states(s.session.project, s.shot.id) == [ChunkState.DONE] * 2
    assert [s.frames.state(i) for i in range(2)] == [PlayerState.FRAMES] * 2  # 128x128 frames, a 256x256 project
    assert s.frames.frame_image(0).image.size().width() == 128  # painted scaled into the player's picture
    kept = (dict(draft.results), dict(draft.specs))
    s.controller.render_final_quality(s.shot.id, draft.id)  # queued like any request, with Draft mode still on
    wait_run(qtbot, s, 2, timeout=60_000)
    final_request = s.requests[-1]
    assert (final_request.width, final_request.height) == (256, 256)
    assert [(c.prompt, c.seed) for c in final_request.chunks] == [(c.prompt, c.seed) for c in s.requests[0].chunks]
    final = s.shot.take(s.shot.active_take_id)
    assert final.id != draft.id and final.parent_id == draft.id and not is_draft_take(final)
    assert (dict(draft.results), dict(draft.specs)) == kept  # the draft take stays as it was
    assert [(x.prompt, x.seed) for x in resolve_specs(s.shot, final.id)] == \
        [(x.prompt, x.seed) for x in resolve_specs(s.shot, draft.id)]
    assert {(s.session.project.results[r].width, s.session.project.results[r].height)
            for r in final.results.values()} == {(256, 256)}
    assert s.recorder.ends == ["finished", "finished"] and not s.recorder.errors
    with pytest.raises(ProjectError, match="not a draft"):
        s.controller.render_final_quality(s.shot.id, final.id)


def test_a_cancelled_row_goes_once_its_shot_is_generated_to_the_end_another_way(qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=1)
    s.session.push(AddShot(new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)))
    b = s.session.project.shots[1]
    s.controller.generate_storyboard()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    s.controller.cancel_request(s.controller.queue()[1].id)  # B
    s.engine.resume()
    wait_run(qtbot, s)
    assert [(i.shot_name, i.state) for i in s.controller.ended_requests()] == [("B", Request.CANCELLED)]
    s.controller.generate_shot(b.id)  # Generate Shot instead of Retry: once B is done, its row has nothing to do
    wait_run(qtbot, s, 2)
    assert s.controller.ended_requests() == [] and [r.shot_name for r in s.controller.completed()] == ["Shot 1", "B"]


def test_the_queue_is_kept_with_the_project_and_comes_back_when_it_is_reopened(qtbot, studio, tmp_path):
    from magi_studio.document.store import open_project

    s = studio(chunks=1)
    project = s.session.project
    b = new_shot(project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    s.session.push(SetShotStart(b.id, "image"))  # from a reference image, but none is set: it fails
    s.session.push(AddShot(new_shot(project, name="C", prompt=PROMPTS[3], seed=9)))
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    [failed] = s.controller.ended_requests()
    made = [(r.shot_name, r.take_name, r.first_chunk, r.chunks) for r in s.controller.completed()]
    assert made == [("Shot 1", "Take 1", 1, 1), ("C", "Take 1", 1, 1)]
    s.session.store.save(project)

    reopened, store = open_project(s.session.store.path)
    assert reopened.render_queue == project.render_queue and reopened.render_queue["unfinished"][0]["failed"]
    other = DocumentSession(reopened, store)
    s.controller.set_session(other)  # as opening the project does
    [row] = s.controller.ended_requests()
    assert (row.shot_name, row.state, row.failed) == ("B", Request.FAILED, failed.failed)
    assert s.controller.failed_requests() == []  # an earlier session's failure, not this run's
    assert [(r.shot_name, r.take_name, r.first_chunk, r.chunks) for r in s.controller.completed()] == made
    other.push(SetShotStart(b.id, "text"))
    assert s.controller.retry(row.id)
    wait_run(qtbot, s, 2)
    assert None not in active_path(reopened.shot(b.id)) and s.controller.ended_requests() == []
    assert [r.shot_name for r in s.controller.completed()][-1] == "B"
    assert [e["shot_name"] for e in reopened.render_queue["completed"]] == ["Shot 1", "C", "B"]
    assert "unfinished" in reopened.render_queue and reopened.render_queue["unfinished"] == []


def test_a_run_saved_while_it_goes_keeps_what_it_had_left_and_a_request_that_no_longer_fits_is_left_out(
        qtbot, studio):
    s = studio(pause_when=lambda e: isinstance(e, ChunkFinished) and e.chunk == 0, chunks=2)
    project = s.session.project
    s.session.push(AddShot(new_shot(project, name="B", prompt=PROMPTS[2], seed=7)))
    s.controller.generate_storyboard()
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    kept = project.render_queue["unfinished"]
    assert [(e["shot_id"], e["failed"]) for e in kept] == [(s.shot.id, ""), (project.shots[1].id, "")]
    saved = s.session.store.path / "kept.json"
    saved.write_bytes(manifest_bytes(project))
    s.engine.resume()
    wait_run(qtbot, s)

    reopened = parse_manifest(saved.read_bytes(), str(saved))
    reopened.render_queue["unfinished"].append({**kept[0], "from_index": 5})  # past the shot's end
    s.controller.set_session(DocumentSession(reopened, s.session.store))
    assert [(r.shot_name, r.state) for r in s.controller.ended_requests()] == [
        ("Shot 1", Request.CANCELLED), ("B", Request.CANCELLED)]
