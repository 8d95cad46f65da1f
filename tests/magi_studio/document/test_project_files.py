"""Hostile project folders: limits on the manifest, links refused, damaged results marked, leftovers removed."""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from magi_engine.errors import ExportError
from magi_studio.document.errors import ProjectError, ProjectFileError
from magi_studio.document.model import ChunkState, active_path, storyboard_states
from magi_studio.document.planning import plan_generation
from magi_studio.document.store import LEFTOVER_AGE_S, ProjectStore, open_project
from magi_studio.export import export_video
from tests.magi_studio.document.fakes import rich_project, synthetic_chunk, write_image


@pytest.fixture
def saved(tmp_path):
    project, store = rich_project(tmp_path)
    store.save(project)
    return project, store


def _edit_manifest(store, change) -> None:
    path = store.path / "project.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _first_result(project):
    return project.results[active_path(project.shots[0])[0]]


# --------------------------------------------------------------------------------------------- the JSON

HEAD = '{"format": "magi-studio-project", "schema_version": 1, '


@pytest.mark.parametrize("text, message", [
    (HEAD + '"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests 100001 levels deep"),
    ("[" * 3_000 + "]" * 2_999, "nests 3000 levels deep"),  # not even valid JSON: still no RecursionError
    (HEAD + '"x": ' + "9" * 5_000 + "}", "invalid JSON"),  # more digits than Python converts
    (HEAD + '"x": NaN}', "NaN is not a number JSON allows"),
    (HEAD + '"x": 1e999}', "too large"),
    (HEAD + '"x": 1, "x": 2}', "the key 'x' appears twice"),
    (" " * (33 * 2**20), "is 34,603,008 bytes; at most 33,554,432"),
])
def test_hostile_json_is_refused_before_parsing_with_a_project_error(tmp_path, text, message):
    folder = tmp_path / "P.magi"
    folder.mkdir()
    (folder / "project.json").write_text(text)
    with pytest.raises(ProjectError, match=message):
        open_project(folder)


def _take(data):
    return data["shots"][0]["takes"][0]


@pytest.mark.parametrize("change, message", [
    (lambda d: _take(d)["results"].update({next(iter(_take(d)["results"])): ["a"]}),
     r"shots\[0\]\.takes\[0\]\.results\.\w+ should be text, not a list"),
    (lambda d: d["results"][0].update(width=0), r"results\[0\]\.width should be an integer from 64 to 4096"),
    (lambda d: d["results"][1].update(height=-16), r"results\[1\]\.height should be an integer"),
    (lambda d: d["settings"].update(width=0), r"settings\.width should be an integer from 64"),
    (lambda d: d["shots"][0]["chunks"][0].update(seed=-1), r"shots\[0\]\.chunks\[0\]\.seed should be an integer"),
    (lambda d: d["shots"][0]["chunks"][0].update(seed=2**64), r"shots\[0\]\.chunks\[0\]\.seed"),
    (lambda d: d["shots"][0]["chunks"][1].update(prompt="a\0b"), r"chunks\[1\]\.prompt holds characters"),
    (lambda d: d["shots"][1].update(id="../up"), r"shots\[1\]\.id is '\.\./up', which is not a valid id"),
    (lambda d: d["assets"][0].update(path="assets/" + "é" * 200 + ".png"), r"longer than 255 bytes"),
    (lambda d: d["results"][0]["files"].update(frames="/etc/passwd"), "points outside the project folder"),
    (lambda d: d["results"][0].update(context=[1]), r"results\[0\]\.context\[0\] should be text"),
    (lambda d: d["settings"].update(guidance_scale=True), r"settings\.guidance_scale should be a number"),
    (lambda d: d["shots"].append(d["shots"][0]), r"shots\[3\]\.id.* repeats"),
    (lambda d: d.update(shots=None), "shots should be a list"),
])
def test_fields_are_checked_against_the_schema_and_named(saved, change, message):
    _, store = saved
    _edit_manifest(store, change)
    raw = (store.path / "project.json").read_bytes()
    with pytest.raises(ProjectError, match=message):
        open_project(store.path)
    assert (store.path / "project.json").read_bytes() == raw


def test_a_long_take_chain_is_checked_in_linear_time(saved):
    _, store = saved

    def chain(data):
        takes = data["shots"][2].setdefault("takes", [])
        takes += [{"id": f"t{i}", "name": f"T{i}", "parent": f"t{i - 1}" if i else None, "first_chunk": None}
                  for i in range(1_000)]
        takes[0]["parent"] = "t999"  # and one loop through all of them

    _edit_manifest(store, chain)
    started = time.perf_counter()
    with pytest.raises(ProjectError, match=r"shots\[2\]\.takes make the take tree a loop"):
        open_project(store.path)
    assert time.perf_counter() - started < 2.0


# --------------------------------------------------------------------------------------------- links


def test_a_linked_project_json_is_refused(saved, tmp_path):
    _, store = saved
    outside = tmp_path / "elsewhere.json"
    os.rename(store.path / "project.json", outside)
    os.symlink(outside, store.path / "project.json")
    with pytest.raises(ProjectFileError, match="project.json' is a symbolic link"):
        open_project(store.path)


def _link_latent(store, result, tmp_path):
    outside = tmp_path / "outside.safetensors"
    os.rename(store.path / result.files["latent"], outside)
    os.symlink(outside, store.path / result.files["latent"])


def _link_result_folder(store, result, tmp_path):
    folder = store.path / "results" / result.id
    os.rename(folder, tmp_path / "outside-result")
    os.symlink(tmp_path / "outside-result", folder)


def _fifo_frames(store, result, tmp_path):
    os.unlink(store.path / result.files["frames"])
    os.mkfifo(store.path / result.files["frames"])


def _write(relative, data):
    return lambda store, result, tmp_path: (store.path / result.files[relative]).write_bytes(data(store, result))


def _other_latent(store, result):
    return save_safetensors({"latent": torch.zeros(16, 6, 4, 4)})


def _small_png(store, result):
    from magi_studio.document.store import _encode_png
    return _encode_png(np.zeros((24 * 32, 32, 3), np.uint8))


DAMAGE = {
    "missing latent": (lambda store, result, tmp_path: os.unlink(store.path / result.files["latent"]), "is missing"),
    "zero-byte frames": (_write("frames", lambda s, r: b""), r"is damaged \(it is empty\)"),
    "zero-byte latent": (_write("latent", lambda s, r: b""), r"is damaged \(it is empty or cut short"),
    "cut latent": (_write("latent", lambda s, r: (s.path / r.files["latent"]).read_bytes()[:-7]), "cut short"),
    "garbage latent": (_write("latent", lambda s, r: b"\xff" * 64), "not a safetensors file"),
    "wrong latent": (_write("latent", _other_latent), r"does not hold the float32 latent \[16, 6, 8, 8\]"),
    "frames not a PNG": (_write("frames", lambda s, r: b"GIF89a" + b"\0" * 100), r"is damaged \(not a PNG image"),
    "frames of another size": (_write("frames", _small_png), "a 32x768 image, not the 24 frames of 64x64"),
    "latent linked outside": (_link_latent, "is a symbolic link"),
    "result folder linked outside": (_link_result_folder, "is a symbolic link"),
    "frames a FIFO": (_fifo_frames, "is not a regular file"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_result_opens_marked_damaged_and_is_never_used(saved, tmp_path, damage):
    project, store = saved
    harm, problem = DAMAGE[damage]
    result = _first_result(project)
    before = storyboard_states(project)
    harm(store, result, tmp_path)

    reopened, reopened_store = open_project(store.path)
    assert set(reopened.damaged) == {result.id}
    named = f"results/{result.id}'" if "folder" in damage else result.files["latent" if "latent" in damage else "frames"]
    assert named in reopened.damaged[result.id]
    assert re.search(problem, reopened.damaged[result.id])
    states = storyboard_states(reopened)
    assert states[reopened.shots[0].id][0] is ChunkState.DAMAGED
    # Only that chunk: damaged files do not make the chunks after it stale.
    assert {k: v for k, v in states.items()} == {**before, reopened.shots[0].id:
                                                 [ChunkState.DAMAGED] + before[reopened.shots[0].id][1:]}
    read = reopened_store.read_latent if "latent" in damage else reopened_store.read_frames
    with pytest.raises(ProjectFileError, match=problem):
        read(result)
    with pytest.raises(ExportError, match="1 chunk is damaged"):
        export_video(reopened, reopened_store, tmp_path / "film.mp4")
    assert not (tmp_path / "film.mp4").exists()
    # Regenerating it is planned as usual; chunks conditioned on it say which file is wrong.
    assert plan_generation(reopened, reopened_store, reopened.shots[0].id, 0).start_index == 0
    if "latent" in damage:
        with pytest.raises(ProjectFileError, match=problem):
            plan_generation(reopened, reopened_store, reopened.shots[0].id, 1)
    # Saving keeps the result listed: nothing is lost, and restoring its files brings it back.
    reopened_store.save(reopened)
    assert result.id in open_project(store.path)[0].results


def test_links_are_never_followed_for_writes(saved, tmp_path):
    project, store = saved
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(store.path / "assets", tmp_path / "old-assets")
    os.symlink(outside, store.path / "assets")
    with pytest.raises(ProjectFileError, match="assets' is a symbolic link"):
        store.import_image(write_image(tmp_path / "new.png", colour=(1, 2, 3)))
    with pytest.raises(ProjectFileError, match="is a symbolic link"):
        store.asset_path(next(iter(project.assets.values())))
    os.rename(store.path / "results", tmp_path / "old-results")
    os.symlink(outside, store.path / "results")
    result = _first_result(project)
    latent, frames = synthetic_chunk(5, "new")
    with pytest.raises(ProjectFileError, match="results' is a symbolic link"):
        store.write_result(type(result)(**{**result.__dict__, "id": "fresh"}), latent, frames)
    assert list(outside.iterdir()) == []


def test_save_as_copies_no_link_and_keeps_damaged_results_listed(saved, tmp_path):
    project, store = saved
    result = _first_result(project)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    os.unlink(store.path / result.files["thumbnail"])
    os.symlink(secret, store.path / result.files["thumbnail"])
    _link_latent(store, result, tmp_path)
    reopened, reopened_store = open_project(store.path)
    assert reopened_store.thumbnail_path(result) is None
    copy = reopened_store.save_as(reopened, tmp_path / "Copy")
    assert not any(p.is_symlink() for p in copy.path.rglob("*"))
    copied, _ = open_project(copy.path)
    assert result.id in copied.results and set(copied.damaged) == {result.id}
    assert "is missing" in copied.damaged[result.id]


# --------------------------------------------------------------------------------------------- leftovers


def test_leftovers_of_killed_saves_are_removed_and_nothing_else(saved, tmp_path):
    project, store = saved
    old = time.time() - LEFTOVER_AGE_S - 5
    ours = [store.path / ".project.json.0123456789ab.tmp", store.path / ".autosave.json.ba9876543210.tmp",
            store.path / "assets" / ".0f0f0f0f0f0f0f0f.png.aaaaaaaaaaaa.tmp"]
    staging = store.path / "results" / ".3c3c3c3c3c3c.tmp-bbbbbbbbbbbb"
    staging.mkdir()
    (staging / "latent.safetensors").write_bytes(b"half")
    os.symlink(tmp_path / "keep-me", staging / "link")
    (tmp_path / "keep-me").write_text("outside")
    kept = [store.path / ".project.json.notes.tmp", store.path / "my.tmp", store.path / "results" / "notes.txt"]
    young = store.path / ".project.json.cccccccccccc.tmp"
    link = store.path / ".autosave.json.dddddddddddd.tmp"
    for path in ours + kept + [young]:
        path.write_bytes(b"{")
    os.symlink(tmp_path / "keep-me", link)
    for path in ours + kept + [staging, link]:
        os.utime(path, (old, old), follow_symlinks=False)

    open_project(store.path)
    assert not any(os.path.lexists(p) for p in ours + [staging])
    assert all(os.path.lexists(p) for p in kept + [young, link])
    assert (tmp_path / "keep-me").read_text() == "outside"
    os.utime(young, (old, old))
    store.save(project)
    assert not young.exists()


def test_a_project_on_read_only_media_still_opens(saved):
    _, store = saved
    leftover = store.path / ".project.json.0123456789ab.tmp"
    leftover.write_bytes(b"{")
    old = time.time() - LEFTOVER_AGE_S - 5
    os.utime(leftover, (old, old))
    os.chmod(store.path, 0o555)
    try:
        if os.access(store.path, os.W_OK):
            pytest.skip("running as root: permissions do not make a folder read-only")
        assert open_project(store.path)[0].results
        assert leftover.exists()
    finally:
        os.chmod(store.path, 0o755)


def test_a_missing_folder_is_created_and_a_new_project_is_not_damaged(tmp_path):
    store = ProjectStore.create(tmp_path / "New")
    os.rmdir(store.path / "assets")
    asset = store.import_image(write_image(tmp_path / "a.png"))
    assert store.asset_path(asset).is_file()


def test_a_chosen_name_no_file_system_takes_is_one_sentence(saved, tmp_path):
    project, store = saved
    long_name = "é" * 130  # 260 bytes of UTF-8
    for call in (lambda: ProjectStore.create(tmp_path / long_name), lambda: store.save_as(project, tmp_path / long_name),
                 lambda: open_project(tmp_path / long_name / "project.json")):
        with pytest.raises(ProjectError, match="longer than 255 bytes|too long"):
            call()
    for call in (lambda: ProjectStore.create(tmp_path / "a\0b"), lambda: store.save_as(project, tmp_path / "a\0b"),
                 lambda: open_project(tmp_path / "a\0b")):
        with pytest.raises(ProjectError, match="NUL"):
            call()
