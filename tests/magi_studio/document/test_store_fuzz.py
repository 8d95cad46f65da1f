"""Property-based: whatever a project folder holds, opening and using it ends in a Project or a ProjectError.

Three generators, each bounded (the whole file runs in well under 30 s on two cores) and derandomized
so CI is repeatable: arbitrary bytes as project.json; a real manifest with random fields replaced,
removed or duplicated (at every schema version, so the migrations are covered as they are added); and
a real project folder with its files cut, flipped, emptied, removed or replaced by links out of the
folder. Any other exception fails the test, and so does a link that was followed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magi_engine.errors import EngineError
from magi_studio.document import manifest
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import storyboard_states
from magi_studio.document.planning import plan_resume
from magi_studio.document.store import open_project
from tests.magi_studio.document.fakes import rich_project

BOUNDED = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))

TRICKY = st.sampled_from([
    0, -1, -16, 2**63, 2**64, 10**30, 1e308, -0.0, True, False, None, "", " ", "..", "../x", "/etc/passwd", "C:x",
    "a\0b", "\ud800", "x" * 300, "é" * 200, [], {}, [[]], {"": None}, [1, "a"], {"latent": 1}])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


@pytest.fixture(scope="module")
def real_project(tmp_path_factory):
    """A saved project with takes, an image shot, a continued shot and generated chunks."""
    project, store = rich_project(tmp_path_factory.mktemp("fuzz"))
    store.save(project)
    return store.path


@pytest.fixture(scope="module")
def outside(real_project, tmp_path_factory):
    """A copy of the project out of every fuzzed folder: link targets that would pass every check if followed."""
    return Path(shutil.copytree(real_project, tmp_path_factory.mktemp("outside") / "P.magi"))


def _places(node, prefix=()):
    """Every place in a JSON tree, as a path of keys and indices."""
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _places(child, prefix + (key,))


@st.composite
def mutated_manifests(draw, base: dict):
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in _places(data) if p]
        if not places:
            break
        place = places[draw(st.integers(0, len(places) - 1))]
        parent = data
        for key in place[:-1]:
            parent = parent[key]
        operation = draw(st.sampled_from(["replace", "remove", "duplicate"]))
        if operation == "replace":
            parent[place[-1]] = draw(JSON_VALUES)
        elif operation == "remove":
            del parent[place[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[place[-1]]))
        else:
            parent[place[-1]] = [parent[place[-1]], parent[place[-1]]]
    data["schema_version"] = draw(st.sampled_from(list(range(1, manifest.SCHEMA_VERSION + 1))
                                                  + [data.get("schema_version", 1)]))
    return data


def _use(project, store) -> None:
    """What the app does with an opened project: states, every result's files, planning every shot."""
    storyboard_states(project)
    for result in project.results.values():
        for read in (store.read_latent, store.read_frames):
            try:
                read(result)
            except ProjectError:
                pass
        store.thumbnail_path(result)
    for asset in project.assets.values():
        try:
            store.asset_path(asset)
        except ProjectError:
            pass
    for shot in project.shots:
        try:
            plan_resume(project, store, shot.id)
        except EngineError:  # ProjectError, or the engine's own refusal of a request
            pass


@settings(BOUNDED, max_examples=300)
@given(raw=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_a_manifest_give_a_project_or_a_project_error(raw):
    try:
        manifest.parse_manifest(raw, "project.json")
    except ProjectError:
        pass


@settings(BOUNDED, max_examples=250)
@given(data=st.data())
def test_a_mutated_manifest_at_any_version_gives_a_project_or_a_project_error(real_project, data):
    base = json.loads((real_project / "project.json").read_text())
    mutated = data.draw(mutated_manifests(base))
    raw = json.dumps(mutated, ensure_ascii=data.draw(st.booleans())).encode("utf-8", "surrogatepass")
    try:
        project = manifest.parse_manifest(raw, "project.json")
    except ProjectError:
        return
    storyboard_states(project)
    manifest.manifest_bytes(project)  # what was read can be written back


FILE_DAMAGE = ["cut", "flip", "empty", "remove", "link out", "link folder out", "garbage"]


@settings(BOUNDED, max_examples=100)
@given(data=st.data())
def test_a_damaged_project_folder_opens_or_says_why_and_never_follows_a_link(real_project, outside, data):
    files = sorted(str(p.relative_to(real_project)) for p in real_project.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "P.magi"
        shutil.copytree(real_project, folder)
        linked = []
        for _ in range(data.draw(st.integers(1, 3))):
            relative = data.draw(st.sampled_from(files))
            path, damage = folder / relative, data.draw(st.sampled_from(FILE_DAMAGE))
            if not path.is_file() or not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder)):
                continue  # gone, or behind a link made by an earlier damage: never write through it
            raw = path.read_bytes()
            if damage == "cut":
                path.write_bytes(raw[:data.draw(st.integers(0, max(0, len(raw) - 1)))])
            elif damage == "flip" and raw:
                at = data.draw(st.integers(0, len(raw) - 1))
                path.write_bytes(raw[:at] + bytes([raw[at] ^ (1 << data.draw(st.integers(0, 7)))]) + raw[at + 1:])
            elif damage == "empty":
                path.write_bytes(b"")
            elif damage == "remove":
                path.unlink()
            elif damage == "garbage":
                path.write_bytes(data.draw(st.binary(max_size=64)))
            elif damage == "link out":
                path.unlink()
                os.symlink(outside / relative, path)
                linked.append(relative)
            elif damage == "link folder out" and path.parent != folder:
                shutil.rmtree(path.parent)
                os.symlink(outside / path.parent.relative_to(folder), path.parent)
                linked.append(str(path.parent.relative_to(folder)))
        try:
            project, store = open_project(folder)
        except ProjectError:
            return
        _use(project, store)
        for result in project.results.values():  # a result behind a link is damaged, never read through it
            if any(f.startswith(link) for f in (result.files["latent"], result.files["frames"]) for link in linked):
                assert result.id in project.damaged
