"""The project on disk: round trips, atomic saves, refusals that leave files untouched, migrations, recovery."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import torch

from magi_engine.errors import InputError
from magi_studio.document import manifest, store as store_module
from magi_studio.document.commands import SetPrompt
from magi_studio.document.errors import ProjectError, ProjectFileError
from magi_studio.document.model import active_path, new_project, storyboard_states
from magi_studio.document.planning import plan_generation
from magi_studio.document.store import (ProjectStore, discard_recovery, find_recovery, find_scratch_recoveries,
                                        load_recovery, open_project, write_autosave)
from tests.magi_studio.document.fakes import rich_project, synthetic_chunk, write_image


@pytest.fixture
def saved(tmp_path):
    project, store = rich_project(tmp_path)
    store.save(project)
    return project, store


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_save_then_open_gives_back_every_field_take_and_active_path(saved):
    project, store = saved
    reopened, reopened_store = open_project(store.path)
    assert reopened == project
    assert reopened.results and reopened.assets and len(reopened.shots[0].takes) == 2
    assert [active_path(s) for s in reopened.shots] == [active_path(s) for s in project.shots]
    assert storyboard_states(reopened) == storyboard_states(project)
    assert reopened_store.path == store.path


def test_opening_the_manifest_file_itself_works_and_paths_inside_are_relative(saved):
    project, store = saved
    assert open_project(store.path / "project.json")[0] == project
    text = (store.path / "project.json").read_text()
    assert str(store.path) not in text
    data = json.loads(text)
    assert data["format"] == "magi-studio-project" and data["schema_version"] == manifest.SCHEMA_VERSION


def test_results_come_back_exactly(saved):
    project, store = saved
    shot = project.shots[0]
    result = project.results[active_path(shot)[0]]
    latent, frames = synthetic_chunk(shot.chunks[0].seed, shot.chunks[0].prompt)
    assert torch.equal(store.read_latent(result), latent)
    loaded = store.read_frames(result)
    assert loaded.dtype == np.uint8 and loaded.shape == (24, 64, 64, 3) and np.array_equal(loaded, frames)
    assert store.thumbnail_path(result).is_file()


def test_a_result_is_written_once_and_never_rewritten(saved):
    project, store = saved
    result = next(iter(project.results.values()))
    path = store.path / result.files["frames"]
    before = (path.stat().st_mtime_ns, path.read_bytes())
    latent, frames = synthetic_chunk(1, "different")
    store.write_result(result, latent, frames)
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_a_full_disk_during_save_leaves_the_previous_file_intact(saved, monkeypatch):
    project, store = saved
    manifest_path = store.path / "project.json"
    old = manifest_path.read_bytes()
    files_before = _tree(store.path)

    def full_disk(handle, data):
        handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "_write_all", full_disk)
    SetPrompt(project.shots[0].id, project.shots[0].chunks[0].id, "changed").apply(project)
    with pytest.raises(ProjectError, match="the disk is full.*previous version was left"):
        store.save(project)
    assert manifest_path.read_bytes() == old
    assert _tree(store.path) == files_before  # no temporary file left behind

    latent, frames = synthetic_chunk(3, "x")
    result = next(iter(project.results.values()))
    with pytest.raises(ProjectError, match="disk is full"):
        store.write_result(type(result)(**{**result.__dict__, "id": "fresh"}), latent, frames)
    assert _tree(store.path) == files_before  # no half-written result folder
    monkeypatch.undo()
    store.save(project)
    assert open_project(store.path)[0] == project


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: len(text) // 2], "is damaged \\(invalid JSON at line"),
    (lambda text: b"\xff\xfe" + text.encode("utf-16-le"), "damaged \\(it is not text\\)"),
    (lambda text: text.replace(f'"schema_version": {manifest.SCHEMA_VERSION}', '"schema_version": 99'),
     "newer MAGI Studio"),
    (lambda text: text.replace(f'"schema_version": {manifest.SCHEMA_VERSION}', '"schema_version": "1"'),
     "schema_version"),
    (lambda text: text.replace('"magi-studio-project"', '"something-else"'), "not a MAGI Studio project file"),
    (lambda text: text.replace('"seed_locked": true', '"seed_locked": "yes"', 1),
     r"shots\[0\]\.chunks\[2\]\.seed_locked"),
    (lambda text: text.replace('"start": "image"', '"start": "video"'), r"shots\[1\]\.start"),
    (lambda text: text.replace('"files": {\n    "latent": "results/', '"files": {\n    "latent": "../../etc/', 1),
     "points outside the project folder"),
])
def test_a_corrupt_or_newer_file_raises_project_error_and_is_left_untouched(saved, damage, message):
    _, store = saved
    path = store.path / "project.json"
    damaged = damage(path.read_text(encoding="utf-8"))
    path.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode("utf-8"))
    raw, files = path.read_bytes(), _tree(store.path)
    with pytest.raises(ProjectError, match=message):
        open_project(store.path)
    assert path.read_bytes() == raw and _tree(store.path) == files


def test_a_broken_take_tree_is_reported(saved):
    _, store = saved
    path = store.path / "project.json"
    data = json.loads(path.read_text())
    takes = data["shots"][0]["takes"]
    takes[0]["parent"] = takes[1]["id"]  # Take 1 <-> Take 2
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="loop"):
        open_project(store.path)


def test_a_missing_asset_does_not_stop_the_project_and_is_named_when_used(saved):
    project, store = saved
    asset = next(iter(project.assets.values()))
    os.unlink(store.asset_path(asset))
    reopened, reopened_store = open_project(store.path)
    assert reopened == project and not reopened.damaged
    image_shot = reopened.shots[1]
    with pytest.raises(ProjectFileError, match=f"{asset.path}' is missing"):
        plan_generation(reopened, reopened_store, image_shot.id, 0)


def test_not_a_project(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        open_project(tmp_path / "nowhere.magi")
    with pytest.raises(ProjectError, match="not a MAGI Studio project"):
        open_project(tmp_path)
    (tmp_path / "photos.magi").mkdir()
    (tmp_path / "photos.magi" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(ProjectError, match="not a MAGI Studio project; choose another name"):
        ProjectStore.create(tmp_path / "photos")  # the .magi suffix is added
    assert ProjectStore.create(tmp_path / "film").path == tmp_path / "film.magi"


def test_older_versions_are_migrated_step_by_step(saved, monkeypatch):
    project, store = saved
    path = store.path / "project.json"
    data = json.loads(path.read_text())
    current = manifest.SCHEMA_VERSION
    for shot in data["shots"]:  # pretend the current version called the shot name "title"
        shot["title"] = shot.pop("name")
    path.write_text(json.dumps(data))

    def to_next(old):
        for shot in old["shots"]:
            shot["name"] = shot.pop("title")
        return old

    monkeypatch.setattr(manifest, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(manifest, "MIGRATIONS", {**manifest.MIGRATIONS, current: to_next})
    assert open_project(store.path)[0] == project
    monkeypatch.setattr(manifest, "MIGRATIONS", {})
    with pytest.raises(ProjectError, match=f"format {current}, which this MAGI Studio cannot convert"):
        open_project(store.path)


def test_save_as_copies_assets_and_results_and_leaves_the_original(saved, tmp_path):
    project, store = saved
    original = _tree(store.path)
    copy_store = store.save_as(project, tmp_path / "Copy")
    assert copy_store.path == tmp_path / "Copy.magi"
    reopened, _ = open_project(copy_store.path)
    assert reopened == project
    asset = next(iter(project.assets.values()))
    assert copy_store.asset_path(asset).read_bytes() == store.asset_path(asset).read_bytes()
    assert _tree(store.path) == original
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    with pytest.raises(ProjectError, match="already exists"):
        store.save_as(project, copy_store.path)
    SetPrompt(project.shots[0].id, project.shots[0].chunks[0].id, "over").apply(project)
    store.save_as(project, copy_store.path, overwrite=True)
    assert open_project(copy_store.path)[0] == project
    (tmp_path / "Other.magi").mkdir()
    (tmp_path / "Other.magi" / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="will not be replaced"):
        store.save_as(project, tmp_path / "Other.magi", overwrite=True)
    assert (tmp_path / "Other.magi" / "notes.txt").read_text() == "mine"


def test_autosave_recovery_and_discard(saved):
    project, store = saved
    assert find_recovery(store.path) is None
    SetPrompt(project.shots[0].id, project.shots[0].chunks[0].id, "unsaved work").apply(project)
    write_autosave(project, store.path)
    recovery = find_recovery(store.path)
    assert recovery is not None and recovery.path == store.path
    assert load_recovery(store.path) == project
    assert open_project(store.path)[0] != project  # the real file still holds the last save
    store.save(project)  # a save makes the autosave obsolete
    assert find_recovery(store.path) is None
    write_autosave(project, store.path)
    discard_recovery(store.path)
    assert find_recovery(store.path) is None


def test_untitled_projects_live_in_a_scratch_bundle_that_can_be_recovered(tmp_path):
    root = tmp_path / "untitled"
    store = ProjectStore.create_scratch(root)
    project = new_project()
    write_autosave(project, store.path)
    assert find_scratch_recoveries(root) == [store.path]
    assert load_recovery(store.path) == project
    assert find_scratch_recoveries(tmp_path / "none") == []


def test_importing_images(tmp_path):
    store = ProjectStore.create(tmp_path / "P")
    first = store.import_image(write_image(tmp_path / "a.png"))
    again = store.import_image(write_image(tmp_path / "b.png"))  # same pixels, same bytes: stored once
    assert first.id == again.id and first.original_name == "a.png" and again.original_name == "b.png"
    assert len(list((store.path / "assets").iterdir())) == 1
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        store.import_image(tmp_path / "notes.png")


@pytest.mark.parametrize("entry, message", [
    ({"from_index": -1}, r"render_queue\.unfinished\[0\]\.from_index should be an integer from 0"),
    ({"shot_id": "../x"}, r"render_queue\.unfinished\[0\]\.shot_id .* not a valid id"),
    ({"seeds": "1,2"}, r"render_queue\.unfinished\[0\]\.seeds should be a list"),
])
def test_a_damaged_render_queue_is_named_and_the_file_left_untouched(saved, entry, message):
    _, store = saved
    path = store.path / "project.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    request = {"shot_id": data["shots"][0]["id"], "from_index": None, "stop_index": None, "seeds": None,
               "new_take": False, "activate": True, "label": "", "draft": False, "final_of": None, "failed": "",
               "take": None}
    data["render_queue"] = {"unfinished": [{**request, **entry}], "completed": []}
    path.write_text(json.dumps(data), encoding="utf-8")
    raw = path.read_bytes()
    with pytest.raises(ProjectError, match=message):
        open_project(store.path)
    assert path.read_bytes() == raw
    data["render_queue"]["unfinished"] = [request]  # the same entry undamaged opens
    path.write_text(json.dumps(data), encoding="utf-8")
    assert open_project(store.path)[0].render_queue["unfinished"] == [request]
