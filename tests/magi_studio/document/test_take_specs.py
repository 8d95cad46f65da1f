"""Takes that remember: each take records the specs it was made from and switching to it puts them back
(one undo step); a shot's own prompt joined to each chunk's for the engine; variations with distinct
seeds; a version-1 project migrated (empty shot prompts, specs read from its results)."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import pytest
from safetensors.torch import save as save_safetensors

from magi_engine.events import ChunkFinished
from magi_engine.requests import MAX_PROMPT_CHARS
from magi_studio.document import manifest
from magi_studio.document.commands import (SetPrompt, SetReferenceImage, SetShotNegativePrompt, SetShotPrompt,
                                           SplitShot)
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (ChunkState, TakeSpec, chunk_states, joined_prompt,
                                        resolve_specs, storyboard_states)
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.planning import ResultCommitter, plan_generation, plan_variations, variation_seeds
from magi_studio.document.store import _encode_png, open_project
from magi_studio.document.take_commands import DeleteTake, SetActiveTake
from tests.magi_studio.document.fakes import fake_generate, rich_project, synthetic_chunk, write_image

V1_PROJECT = Path(__file__).parent / "data" / "v1_project.json"


@pytest.fixture
def rich(tmp_path):
    project, store = rich_project(tmp_path)
    return project, store, UndoHistory(Document(project))


def test_joined_prompt_puts_the_shot_first_and_adds_the_chunk():
    assert joined_prompt("A red ball on a table", "it rolls left") == "A red ball on a table. it rolls left"
    assert joined_prompt("A red ball, cinematic.", " it rolls ") == "A red ball, cinematic. it rolls"
    assert joined_prompt("  ", "it rolls ") == "it rolls "  # no shot prompt: the chunk's text exactly
    assert joined_prompt("A red ball", "   ") == "A red ball"


def test_each_committed_chunk_records_the_specs_it_was_made_from(rich):
    project, _, _ = rich
    shot = project.shots[0]
    first, second = shot.takes
    assert [first.specs[c.id].prompt for c in shot.chunks] == ["a red ball falls", "it bounces", "it rolls left",
                                                               "it stops"]
    assert set(second.specs) == {shot.chunks[2].id, shot.chunks[3].id}  # it generated chunks 3 and 4
    assert second.specs[shot.chunks[2].id] == TakeSpec("it rolls right", shot.chunks[2].seed, "", "text", None)
    image_shot = project.shots[1]
    spec = image_shot.takes[0].specs[image_shot.chunks[0].id]
    assert (spec.start, spec.reference_asset_id) == ("image", image_shot.reference_asset_id)


def test_making_a_take_active_restores_its_specs_as_one_undo_step(rich):
    project, store, history = rich
    shot = project.shots[0]
    first, second = shot.takes
    history.push(SetShotPrompt(shot.id, "A red ball, studio light"))  # Take 3 is made under a shot prompt
    history.push(SetPrompt(shot.id, shot.chunks[3].id, "it spins"))
    fake_generate(project, store, shot.id, 0, history=history)
    third = shot.take(shot.active_take_id)
    assert third.id not in (first.id, second.id) and chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    edited = copy.deepcopy(shot)

    history.push(SetActiveTake(shot.id, first.id))
    assert [c.prompt for c in shot.chunks] == ["a red ball falls", "it bounces", "it rolls left", "it stops"]
    assert [c.seed for c in shot.chunks] == [first.specs[c.id].seed for c in shot.chunks]
    assert shot.prompt == ""  # Take 1 was made before the shot had a prompt
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4  # not stale: its specs are back

    history.push(SetActiveTake(shot.id, second.id))  # chunks 1-2 from Take 1, 3-4 its own
    assert [c.prompt for c in shot.chunks][2:] == ["it rolls right", "it stops"]
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    history.undo()
    history.undo()  # back to Take 3 with its shot prompt and chunk 4's new prompt, in one step each
    assert shot == edited and chunk_states(project, shot.id) == [ChunkState.DONE] * 4


def test_deleting_the_active_take_puts_back_the_specs_of_the_take_that_takes_over(rich):
    project, _, history = rich
    shot = project.shots[0]
    first, second = shot.takes
    edited = copy.deepcopy(shot.chunks)
    history.push(DeleteTake(shot.id, second.id))  # Take 2 was active: Take 1 takes over, with its prompts
    assert shot.active_take_id == first.id and shot.chunks[2].prompt == "it rolls left"
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    history.undo()
    assert shot.active_take_id == second.id and shot.chunks == edited


def test_switching_restores_the_image_a_take_started_from(rich, tmp_path):
    project, store, history = rich
    image_shot = project.shots[1]
    original = image_shot.reference_asset_id
    history.push(SetReferenceImage(image_shot.id, store.import_image(write_image(tmp_path / "b.png", (9, 9, 9)))))
    fake_generate(project, store, image_shot.id, 0, history=history)
    assert image_shot.reference_asset_id != original
    history.push(SetActiveTake(image_shot.id, image_shot.takes[0].id))
    assert image_shot.reference_asset_id == original
    assert chunk_states(project, image_shot.id) == [ChunkState.DONE] * 2


def test_the_shot_prompt_reaches_the_engine_and_makes_its_chunks_stale(rich):
    project, store, history = rich
    shot = project.shots[0]
    history.push(SetShotPrompt(shot.id, "A red ball on a wooden table"))
    assert chunk_states(project, shot.id) == [ChunkState.STALE] * 4
    continued = storyboard_states(project)
    assert all(s is ChunkState.DONE for s in continued[project.shots[1].id])  # other shots are not touched

    plan = plan_generation(project, store, shot.id, 0)
    assert [c.prompt for c in plan.request.chunks] == [
        "A red ball on a wooden table. a red ball falls", "A red ball on a wooden table. it bounces",
        "A red ball on a wooden table. it rolls right", "A red ball on a wooden table. it stops"]
    assert [s.prompt for s in plan.specs] == [c.prompt for c in shot.chunks]  # the take keeps the parts
    fake_generate(project, store, shot.id, 0, history=history)
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    history.undo()  # the generation, chunk by chunk ...
    while shot.prompt:
        history.undo()
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4  # ... and the shot prompt: done as before


def test_a_joined_prompt_over_the_limit_is_refused_in_one_sentence(rich):
    project, store, history = rich
    shot = project.shots[0]
    history.push(SetShotPrompt(shot.id, "x" * MAX_PROMPT_CHARS))
    with pytest.raises(ProjectError, match="Chunk 1 of Shot 1: the shot's prompt and the chunk's prompt together"):
        plan_generation(project, store, shot.id, 0)


def test_split_shot_keeps_the_shot_prompt_and_the_specs(rich):
    project, store, history = rich
    shot = project.shots[0]
    history.push(SetShotPrompt(shot.id, "A red ball"))
    fake_generate(project, store, shot.id, 0, history=history)
    moved_specs = resolve_specs(shot, shot.active_take_id)[2:]
    history.push(SplitShot(shot.id, 2))
    new = project.shots[1]
    assert new.prompt == "A red ball" and chunk_states(project, new.id) == [ChunkState.DONE] * 2
    assert resolve_specs(new, new.active_take_id) == moved_specs and None not in moved_specs


def test_variations_are_sibling_takes_with_distinct_seeds_none_made_active(rich):
    project, store, history = rich
    shot = project.shots[0]
    active, before = shot.active_take_id, copy.deepcopy(shot.chunks)
    seeds = variation_seeds(project, shot.id, 2, 3, rng=random.Random(1))
    assert len(seeds) == 3 and all(len(s) == 2 for s in seeds)
    for position in range(2):
        column = [s[position] for s in seeds] + [shot.chunks[2 + position].seed]
        assert len(set(column)) == len(column)  # differs from each other and from the chunk's seed now

    plans = plan_variations(project, store, shot.id, 2, 3, rng=random.Random(1))
    assert [tuple(c.seed for c in p.request.chunks) for p in plans] == seeds
    assert all(p.creates_take and p.parent_take_id == active and not p.activate for p in plans)
    for plan in plans:  # what the generation controller does with each, one job after another
        committer = ResultCommitter(plan, store)
        for j, spec in enumerate(plan.request.chunks):
            latent, frames = synthetic_chunk(spec.seed, spec.prompt, 64, 64)
            history.push(committer.commit(project, ChunkFinished(plan.request.start_chunk + j, frames, latent)))
    made = shot.takes[-3:]
    assert shot.active_take_id == active and shot.chunks == before  # the storyboard did not change
    assert all(t.parent_id == active and t.first_chunk_id == shot.chunks[2].id for t in made)
    assert [tuple(t.specs[c.id].seed for c in shot.chunks[2:]) for t in made] == seeds
    history.push(SetActiveTake(shot.id, made[1].id))  # picking one puts its seeds on the cards
    assert [c.seed for c in shot.chunks[2:]] == list(seeds[1])
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4


def test_a_variation_range_can_stop_before_the_shots_end(rich):
    project, store, _ = rich
    shot = project.shots[0]
    plan = plan_variations(project, store, shot.id, 1, 2, stop_index=2, rng=random.Random(2))[0]
    assert plan.chunk_ids == (shot.chunks[1].id,) and len(plan.request.chunks) == 1
    with pytest.raises(ProjectError, match="Between 1 and 16 variations"):
        variation_seeds(project, shot.id, 1, 0)


def _open_v1(tmp_path) -> tuple:
    folder = tmp_path / "Old.magi"
    folder.mkdir()
    shutil.copy(V1_PROJECT, folder / "project.json")
    for result in json.loads(V1_PROJECT.read_text())["results"]:
        latent, frames = synthetic_chunk(result["seed"], result["prompt"], result["height"], result["width"])
        contents = {"latent": save_safetensors({"latent": latent}), "frames": _encode_png(frames.reshape(-1, 64, 3)),
                    "thumbnail": _encode_png(frames[12])}  # opening checks the headers: the files must be real
        for name, relative in result["files"].items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(contents[name])
    return open_project(folder)


def test_a_version_1_project_opens_with_empty_shot_prompts_and_specs_from_its_results(tmp_path):
    assert json.loads(V1_PROJECT.read_text())["schema_version"] == 1 < manifest.SCHEMA_VERSION
    project, store = _open_v1(tmp_path)
    shot = project.shots[0]
    first, second = shot.takes
    assert shot.prompt == ""
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 2  # nothing went stale in the migration
    assert first.specs == {"chunk000001": TakeSpec("a red ball falls", 1, "", "text", None),
                           "chunk000002": TakeSpec("it rolls", 2, "", "text", None)}
    assert second.specs == {"chunk000002": TakeSpec("it bounces", 7, "", "text", None)}
    SetActiveTake(shot.id, first.id).apply(project)  # the old take's chunk 2 comes back as it was made
    assert (shot.chunks[1].prompt, shot.chunks[1].seed) == ("it rolls", 2)
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 2
    store.save(project)  # saved in the current version, read back the same
    saved = json.loads((store.path / "project.json").read_text())
    assert saved["schema_version"] == manifest.SCHEMA_VERSION and saved["shots"][0]["prompt"] == ""
    assert open_project(store.path)[0] == project


def test_a_damaged_take_spec_is_named(tmp_path):
    project, store = _open_v1(tmp_path)
    store.save(project)
    path = store.path / "project.json"
    data = json.loads(path.read_text())
    data["shots"][0]["takes"][0]["specs"]["chunk000001"]["seed"] = "one"
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"shots\[0\]\.takes\[0\]\.specs\.chunk000001\.seed"):
        open_project(store.path)


def test_the_negative_prompt_reaches_the_engine_makes_chunks_stale_and_comes_back_with_its_take(rich):
    project, store, history = rich
    shot = project.shots[0]
    first = shot.take(shot.active_take_id)
    history.push(SetShotNegativePrompt(shot.id, "blurry, text"))
    assert chunk_states(project, shot.id) == [ChunkState.STALE] * 4
    plan = plan_generation(project, store, shot.id, 0)
    assert {c.negative_prompt for c in plan.request.chunks} == {"blurry, text"}
    fake_generate(project, store, shot.id, 0, history=history)
    assert chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    new = shot.take(shot.active_take_id)
    assert {project.results[r].negative_prompt for r in new.results.values()} == {"blurry, text"}
    history.push(SetActiveTake(shot.id, first.id))  # Take 1 was made without one: it comes back empty
    assert shot.negative_prompt == "" and chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    history.push(SetActiveTake(shot.id, new.id))
    assert shot.negative_prompt == "blurry, text" and chunk_states(project, shot.id) == [ChunkState.DONE] * 4
    store.save(project)
    assert open_project(store.path)[0] == project  # shot, specs and results keep it


def test_a_version_2_project_opens_with_empty_negative_prompts(tmp_path):
    project, store = _open_v1(tmp_path)
    store.save(project)
    path = store.path / "project.json"
    data = json.loads(path.read_text())
    # A version-2 file: the same manifest without any negative prompt.
    data["schema_version"] = 2
    for shot in data["shots"]:
        del shot["negative_prompt"]
        for take in shot["takes"]:
            for spec in take["specs"].values():
                del spec["negative_prompt"]
    for result in data["results"]:
        del result["negative_prompt"]
    path.write_text(json.dumps(data))
    reopened = open_project(store.path)[0]
    assert reopened == project and reopened.shots[0].negative_prompt == ""
    assert chunk_states(reopened, reopened.shots[0].id) == [ChunkState.DONE] * 2
