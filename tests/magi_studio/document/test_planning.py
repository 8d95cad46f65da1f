"""Planning with the real engine (a tiny random model): requests, takes, regenerate-from-N, cancel and resume."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from magi_engine.events import CancelToken, Cancelled, ChunkFinished, Finished
from magi_engine.session import GenerationSession
from magi_engine.video_io import load_image
from magi_studio.document.commands import (AddChunk, AddShot, SetPrompt, SetReferenceImage, SetSeedLocked,
                                           SetShotStart, new_chunk)
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (ChunkState, ProjectSettings, active_path, chunk_states, new_project, new_shot,
                                        resolve_take)
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.planning import (ResultCommitter, plan_generation, plan_resume, reseed_for_regeneration,
                                           sampling_for)
from magi_studio.document.store import ProjectStore
from magi_studio.document.take_commands import SetActiveTake
from tests.engine.factories import TINY_VOCAB_CAPTIONS, tiny_bundle
from tests.magi_studio.document.fakes import fake_generate, write_image


@pytest.fixture(scope="module")
def session():
    return GenerationSession(tiny_bundle())


@pytest.fixture
def setup(tmp_path):
    """A 64x64 project with one shot of three chunks, its store and an undo history."""
    project = new_project(ProjectSettings(model="tiny", width=64, height=64))
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    history.push(SetPrompt(shot.id, shot.chunks[0].id, TINY_VOCAB_CAPTIONS[0]))
    for caption in TINY_VOCAB_CAPTIONS[1:]:
        history.push(AddChunk(shot.id, new_chunk(project, shot.id, len(shot.chunks), caption)))
    return project, ProjectStore.create(tmp_path / "Film"), history


def run(session, project, store, history, plan, *, cancel_after=None):
    """Run a plan through the engine as the app does (files written by the worker, commands pushed on the
    GUI thread), committing each finished chunk; returns the events."""
    committer = ResultCommitter(plan, store, session.sampling_for(plan.request))
    token, events = CancelToken(), []
    for event in session.generate(plan.request, token):
        events.append(event)
        if isinstance(event, ChunkFinished):
            result = committer.write(event)
            assert store.read_frames(result).shape == (24, 64, 64, 3)  # on disk before the document knows it
            history.push(committer.command_for(project, result))
            if cancel_after is not None and len(committer.written) == cancel_after:
                token.cancel()
    return events


def finished(events):
    return {e.chunk: e for e in events if isinstance(e, ChunkFinished)}


def test_first_run_commits_chunk_by_chunk_into_a_new_root_take(session, setup):
    project, store, history = setup
    shot = project.shots[0]
    plan = plan_resume(project, store, shot.id)
    assert (plan.start_index, plan.index_offset, plan.context_ids, plan.creates_take) == (0, 0, (), True)
    assert [s.prompt for s in plan.request.chunks] == list(TINY_VOCAB_CAPTIONS)
    committer = ResultCommitter(plan, store, session.sampling_for(plan.request))
    seen_states = []
    for event in session.generate(plan.request):
        if isinstance(event, ChunkFinished):
            history.push(committer.commit(project, event))
            seen_states.append([s.value for s in chunk_states(project, shot.id)])
    assert seen_states == [["done", "empty", "empty"], ["done", "done", "empty"], ["done"] * 3]
    assert [t.name for t in shot.takes] == ["Take 1"] and shot.takes[0].parent_id is None
    assert shot.active_take_id == shot.takes[0].id
    result = project.results[active_path(shot)[1]]
    assert result.context_ids == (active_path(shot)[0],) and result.sampling["num_steps"] == 4
    assert plan_resume(project, store, shot.id) is None


def test_regenerate_from_n_reuses_bit_identical_latents_and_keeps_the_old_take(session, setup):
    project, store, history = setup
    shot = project.shots[0]
    first_events = finished(run(session, project, store, history, plan_resume(project, store, shot.id)))
    old_take, old_path = shot.active_take_id, active_path(shot)

    history.push(SetPrompt(shot.id, shot.chunks[2].id, "a red ball grows"))
    plan = plan_generation(project, store, shot.id, 2)
    assert plan.context_ids == tuple(old_path[:2]) and plan.request.start_chunk == 2
    for given, original in zip(plan.request.context_latents, (first_events[0].latent, first_events[1].latent)):
        assert given.dtype == torch.float32 and torch.equal(given, original)  # read back bit-exactly
    assert plan.creates_take and plan.parent_take_id == old_take
    events = finished(run(session, project, store, history, plan))
    assert list(events) == [2]

    new_take = shot.take(shot.active_take_id)
    assert new_take.id != old_take and new_take.parent_id == old_take and new_take.first_chunk_id == shot.chunks[2].id
    assert active_path(shot)[:2] == old_path[:2] and active_path(shot)[2] != old_path[2]
    assert resolve_take(shot, old_take) == old_path  # the old result survives as a take
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 3
    assert torch.equal(store.read_latent(project.results[active_path(shot)[2]]), events[2].latent)

    # the same context and seed make the same chunk again: regenerate-from-N is exact
    again = finished(run(session, project, store, history, plan_generation(project, store, shot.id, 2)))
    assert torch.equal(again[2].latent, events[2].latent)
    assert np.array_equal(again[2].frames, store.read_frames(project.results[active_path(shot)[2]]))

    history.push(SetActiveTake(shot.id, old_take))  # switching takes generates nothing
    assert active_path(shot) == old_path
    assert shot.chunks[2].prompt != "a red ball grows"  # the old take's prompt is back on the card
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 3


def test_cancel_keeps_finished_chunks_and_resume_fills_the_same_take(session, setup):
    project, store, history = setup
    shot = project.shots[0]
    events = run(session, project, store, history, plan_resume(project, store, shot.id), cancel_after=1)
    assert isinstance(events[-1], Cancelled) and list(finished(events)) == [0]
    assert chunk_states(project, shot.id) == [ChunkState.DONE, ChunkState.EMPTY, ChunkState.EMPTY]
    take = shot.active_take_id

    plan = plan_resume(project, store, shot.id)
    assert plan.start_index == 1 and plan.extend_take_id == take
    events = run(session, project, store, history, plan)
    assert isinstance(events[-1], Finished) and list(finished(events)) == [1, 2]
    assert len(shot.takes) == 1 and chunk_states(project, shot.id) == [ChunkState.DONE] * 3


def test_a_continued_shot_is_conditioned_on_the_previous_shots_last_latents(session, setup):
    project, store, history = setup
    first = project.shots[0]
    first_events = finished(run(session, project, store, history, plan_resume(project, store, first.id)))
    second = new_shot(project, prompt=TINY_VOCAB_CAPTIONS[1], seed=7)
    history.push(AddShot(second))
    history.push(AddChunk(second.id, new_chunk(project, second.id, 1, TINY_VOCAB_CAPTIONS[2])))
    history.push(SetShotStart(second.id, "continue"))

    plan = plan_resume(project, store, second.id)
    assert plan.index_offset == 3 and plan.request.start_chunk == 3 and plan.request.shot_length == 5
    assert all(torch.equal(a, first_events[i].latent) for i, a in enumerate(plan.request.context_latents))
    events = finished(run(session, project, store, history, plan))
    assert sorted(events) == [3, 4]  # request indices; committed as chunks 0 and 1 of the shot
    assert chunk_states(project, second.id) == [ChunkState.DONE] * 2
    history.push(SetPrompt(first.id, first.chunks[2].id, "the blue square moves left"))
    assert chunk_states(project, second.id) == [ChunkState.STALE] * 2


def test_an_image_shot_sends_its_reference_with_the_first_chunk_only(session, setup, tmp_path):
    project, store, history = setup
    shot = project.shots[0]
    asset = store.import_image(write_image(tmp_path / "ref.png"))
    history.push(SetReferenceImage(shot.id, asset))
    plan = plan_resume(project, store, shot.id)
    assert np.array_equal(plan.request.reference_image, load_image(store.asset_path(asset)))
    assert plan.reference_fingerprint == asset.fingerprint
    run(session, project, store, history, plan)
    results = [project.results[r] for r in active_path(shot)]
    assert [r.reference_fingerprint for r in results] == [asset.fingerprint, None, None]
    assert plan_generation(project, store, shot.id, 1).request.reference_image is None


def test_plans_that_cannot_run_say_why(setup, tmp_path):
    project, store, history = setup
    shot = project.shots[0]
    with pytest.raises(ProjectError, match="Chunk 1 of Shot 1 is not generated yet"):
        plan_generation(project, store, shot.id, 2)
    history.push(SetShotStart(shot.id, "image"))
    with pytest.raises(ProjectError, match="starts from a reference image, but none is set"):
        plan_generation(project, store, shot.id, 0)
    history.push(SetShotStart(shot.id, "text"))
    second = new_shot(project)
    history.push(AddShot(second))
    history.push(SetShotStart(second.id, "continue"))
    with pytest.raises(ProjectError, match="generate that shot first"):
        plan_generation(project, store, second.id, 0)
    fake_generate(project, store, shot.id, history=history)
    assert plan_generation(project, store, second.id, 0).index_offset == 3


def test_regenerating_a_done_chunk_rerolls_its_seed_unless_locked(setup):
    project, store, history = setup
    shot = project.shots[0]
    assert reseed_for_regeneration(project, shot.id, 0) is None  # empty: its seed has not been used yet
    fake_generate(project, store, shot.id, history=history)
    command = reseed_for_regeneration(project, shot.id, 1, random.Random(0))
    assert command is not None and command.value != shot.chunks[1].seed
    history.push(SetSeedLocked(shot.id, shot.chunks[1].id, True))
    assert reseed_for_regeneration(project, shot.id, 1) is None


def test_project_settings_override_the_models_sampling(session):
    default = session.default_sampling
    assert sampling_for(ProjectSettings(), default) == default
    sampling = sampling_for(ProjectSettings(steps=8, window=2, guidance_scale=3.0), default)
    assert (sampling.num_steps, sampling.window, max(sampling.guidance.text_scales)) == (8, 2, 3.0)


def test_switching_back_to_the_take_before_a_regeneration_brings_its_specs_back(setup):
    project, store, history = setup
    shot = project.shots[0]
    fake_generate(project, store, shot.id, history=history)
    old_take, old_path, old_seeds = shot.active_take_id, active_path(shot), [c.seed for c in shot.chunks]
    history.push(reseed_for_regeneration(project, shot.id, 1, random.Random(5)))  # what Regenerate does first
    fake_generate(project, store, shot.id, 1, history=history)
    new_seeds = [c.seed for c in shot.chunks]
    assert new_seeds[1] != old_seeds[1] and chunk_states(project, shot.id) == [ChunkState.DONE] * 3

    history.push(SetActiveTake(shot.id, old_take))
    assert active_path(shot) == old_path and [c.seed for c in shot.chunks] == old_seeds
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 3  # done as it was made, not stale
    history.undo()
    assert [c.seed for c in shot.chunks] == new_seeds and chunk_states(project, shot.id) == [ChunkState.DONE] * 3
    history.redo()  # the old take again, then its third prompt edited and the newer take chosen
    prompt = shot.chunks[2].prompt
    history.push(SetPrompt(shot.id, shot.chunks[2].id, "an edited prompt"))
    history.push(SetActiveTake(shot.id, next(t.id for t in shot.takes if t.id != old_take)))
    assert [c.seed for c in shot.chunks] == new_seeds and shot.chunks[2].prompt == prompt  # the take's specs
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 3
    history.undo()  # one step puts back the take and the edited prompt
    assert shot.active_take_id == old_take and shot.chunks[2].prompt == "an edited prompt"


def test_the_memory_target_is_the_project_s_size_window_and_longest_run():
    from magi_engine.loading.memory import MemoryTarget
    from magi_studio.document.model import CONTEXT_CHUNKS
    from magi_studio.document.planning import memory_target

    settings = ProjectSettings(width=720, height=480, window=1)
    assert memory_target(settings) == MemoryTarget(720, 480, 1, None)  # no project: any length
    project = new_project(settings)
    first = project.shots[0]
    assert memory_target(project.settings, project) == MemoryTarget(720, 480, 1, 1)
    AddChunk(first.id, new_chunk(project, first.id, 1)).apply(project)
    assert memory_target(project.settings, project).chunks == 2
    second = new_shot(project)
    second.start = "continue"  # attends the first shot's last chunks as well
    AddShot(second).apply(project)
    assert memory_target(project.settings, project).chunks == len(second.chunks) + 2  # the first shot's two
    for index in range(1, 12):
        AddChunk(first.id, new_chunk(project, first.id, index)).apply(project)
    assert memory_target(project.settings, project).chunks == CONTEXT_CHUNKS + 1  # a full cache: longer needs no more
