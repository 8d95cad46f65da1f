"""Draft mode in the document: what a draft plans (the engine's one definition, magi_engine.draft), how a draft
take records it and keeps it through save and reopen (format 4, migrated from 3), chunks made after drafts, and
Render at Final Quality (a new take from the draft take's own specs at the project's settings, the draft kept)."""

from __future__ import annotations

import copy
import json

import pytest

from magi_engine.config import GuidanceConfig, SamplingConfig
from magi_engine.draft import draft_sampling, draft_size
from magi_studio.document import manifest
from magi_studio.document.commands import AddChunk, SetPrompt, SetProjectSettings, SetSeed, new_chunk
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (ChunkState, ProjectSettings, active_path, chunk_states, draft_span,
                                        is_draft_take, new_project, resolve_specs)
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.planning import plan_final_quality, plan_generation, plan_resume
from magi_studio.document.store import ProjectStore, open_project
from magi_studio.export import draft_chunks, export_video
from magi_engine.errors import ExportError
from tests.magi_studio.document.fakes import fake_run

#: A base model's settings with more steps than a draft takes (a draft of them has 16).
FINAL = SamplingConfig(num_steps=32, window=4, guidance=GuidanceConfig(mode="cfg3"))


@pytest.fixture
def drafted(tmp_path):
    """A 256x256 project of one shot of three chunks, generated in draft mode: (project, store, history)."""
    project = new_project(ProjectSettings(model="tiny", width=256, height=256))
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    history.push(SetPrompt(shot.id, shot.chunks[0].id, "a red ball falls"))
    for prompt in ("it bounces", "it rolls left"):
        history.push(AddChunk(shot.id, new_chunk(project, shot.id, len(shot.chunks), prompt)))
    history.push(SetProjectSettings(draft=True))
    store = ProjectStore.create(tmp_path / "Drafts")
    fake_run(project, store, plan_generation(project, store, shot.id, 0, sampling=FINAL, draft=True), history=history)
    return project, store, history


def test_draft_mode_plans_the_engines_draft_and_final_plans_the_projects_settings(drafted):
    project, store, _ = drafted
    shot = project.shots[0]
    final = plan_generation(project, store, shot.id, 0, sampling=FINAL, new_take=True)
    draft = plan_generation(project, store, shot.id, 0, sampling=FINAL, new_take=True, draft=True)
    assert (final.request.width, final.request.height, final.request.sampling) == (256, 256, FINAL)
    assert (draft.request.width, draft.request.height) == draft_size(256, 256) == (128, 128)
    assert draft.request.sampling == draft_sampling(FINAL, distilled=False)
    assert draft.request.sampling.num_steps == 16 < FINAL.num_steps
    assert [s.draft for s in draft.specs] == [True] * 3 and [s.draft for s in final.specs] == [False] * 3
    assert [(c.prompt, c.seed) for c in draft.request.chunks] == [(c.prompt, c.seed) for c in final.request.chunks]
    distilled = SamplingConfig(num_steps=16, window=4, guidance=GuidanceConfig(mode="distilled"))
    assert plan_generation(project, store, shot.id, 0, sampling=distilled, draft=True,
                           new_take=True).request.sampling.num_steps == 8  # "distill 8"
    # studio-mini's 128x128 and 8 steps: the size is kept, the steps halve (magi_engine.draft.SMALL_PICTURE).
    project.settings.width = project.settings.height = 128
    mini = plan_generation(project, store, shot.id, 0, sampling=SamplingConfig(num_steps=8), new_take=True, draft=True)
    assert (mini.request.width, mini.request.height, mini.request.sampling.num_steps) == (128, 128, 4)


def test_a_draft_take_records_it_is_done_and_survives_save_and_reopen(drafted):
    project, store, _ = drafted
    shot = project.shots[0]
    take = shot.take(shot.active_take_id)
    assert is_draft_take(take) and [s.draft for s in take.specs.values()] == [True] * 3
    results = [project.results[r] for r in active_path(shot)]
    assert {(r.width, r.height) for r in results} == {(128, 128)} and results[0].sampling["num_steps"] == 16
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 3  # a draft is not stale for its size
    assert plan_resume(project, store, shot.id, sampling=FINAL) is None  # Generate does not redo drafts
    store.save(project)
    saved = json.loads((store.path / "project.json").read_text())
    assert saved["schema_version"] == manifest.SCHEMA_VERSION == 4 and saved["settings"]["draft"] is True
    reopened = open_project(store.path)[0]
    assert reopened == project
    assert is_draft_take(reopened.shots[0].takes[0]) and reopened.settings.draft
    assert chunk_states(reopened, shot.id) == [ChunkState.DONE] * 3


def test_a_format_3_project_opens_with_draft_mode_off_and_no_drafts(drafted):
    project, store, _ = drafted
    store.save(project)
    path = store.path / "project.json"
    data = json.loads(path.read_text())
    data["schema_version"] = 3  # a version-3 file: the same manifest without the draft marks
    del data["settings"]["draft"]
    for take in data["shots"][0]["takes"]:
        for spec in take["specs"].values():
            del spec["draft"]
    path.write_text(json.dumps(data))
    reopened = open_project(store.path)[0]
    assert not reopened.settings.draft and not is_draft_take(reopened.shots[0].takes[0])
    # Made before drafts existed, 128x128 results in a 256x256 project are what they always were: stale.
    assert chunk_states(reopened, reopened.shots[0].id) == [ChunkState.STALE] * 3


def test_a_chunk_made_after_drafts_is_a_draft_at_their_size(drafted):
    project, store, history = drafted
    shot = project.shots[0]
    history.push(SetProjectSettings(draft=False))
    history.push(AddChunk(shot.id, new_chunk(project, shot.id, 3, "it stops")))
    plan = plan_resume(project, store, shot.id, sampling=FINAL)
    assert plan.start_index == 3 and (plan.request.width, plan.request.height) == (128, 128)
    assert plan.specs[0].draft and plan.request.sampling.num_steps == 16
    fake_run(project, store, plan, history=history)
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    assert draft_span(shot, shot.take(shot.active_take_id)) == (0, 4)


def test_render_at_final_quality_is_a_new_take_with_the_same_seeds_and_prompts_the_draft_kept(drafted):
    project, store, history = drafted
    shot = project.shots[0]
    draft = shot.take(shot.active_take_id)
    kept = copy.deepcopy(draft)
    draft_specs = resolve_specs(shot, draft.id)
    # The cards change after the draft: the final render is of the take, not of the cards.
    history.push(SetPrompt(shot.id, shot.chunks[1].id, "it flies away"))
    history.push(SetSeed(shot.id, shot.chunks[2].id, 999))
    plan = plan_final_quality(project, store, shot.id, draft.id, sampling=FINAL)
    assert (plan.start_index, plan.chunk_ids) == (0, tuple(c.id for c in shot.chunks))
    assert (plan.request.width, plan.request.height, plan.request.sampling) == (256, 256, FINAL)
    assert [(c.prompt, c.seed, c.negative_prompt) for c in plan.request.chunks] == \
        [(s.prompt, s.seed, s.negative_prompt) for s in draft_specs]
    assert plan.creates_take and plan.parent_take_id == draft.id and plan.activate
    fake_run(project, store, plan, history=history)
    final = shot.take(shot.active_take_id)
    assert final.id != draft.id and not is_draft_take(final) and shot.take(draft.id) == kept
    assert {(project.results[r].width, project.results[r].height) for r in final.results.values()} == {(256, 256)}
    assert [(s.prompt, s.seed) for s in resolve_specs(shot, final.id)] == [(s.prompt, s.seed) for s in draft_specs]
    with pytest.raises(ProjectError, match="no draft chunks"):
        plan_final_quality(project, store, shot.id, final.id, sampling=FINAL)


def test_exporting_drafts_is_refused_in_one_sentence_unless_asked_then_scaled_to_the_projects_size(drafted, tmp_path):
    project, store, _ = drafted
    assert len(draft_chunks(project)) == 3
    with pytest.raises(ExportError, match=r"^3 chunks are drafts \(Shot 1, chunk 1; .*\): render them at final "
                                          r"quality .* before exporting"):
        export_video(project, store, tmp_path / "draft.mp4")
    assert not (tmp_path / "draft.mp4").exists()
    outcome = export_video(project, store, tmp_path / "draft.mp4", drafts=True, preset="ultrafast")
    assert (outcome.video.width, outcome.video.height) == (256, 256)
    sidecar = json.loads(outcome.sidecar.read_text())
    assert [c.get("draft") for c in sidecar["chunks"]] == [True] * 3
