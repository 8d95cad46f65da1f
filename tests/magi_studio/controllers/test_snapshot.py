"""snapshot_project: a copy of the project that no later edit of the original reaches."""

from __future__ import annotations

import copy
import dataclasses

from magi_studio.controllers.common import snapshot_project
from magi_studio.document.model import Chunk, Project, ProjectSettings, Shot, Take, TakeSpec, new_project

#: The fields holding a list or a dict, which snapshot_project copies one by one (every other field holds an
#: immutable value). A new one must be copied there too: this test names it.
COPIED = {Project: {"shots", "results", "assets", "damaged"}, Shot: {"chunks", "takes"}, Take: {"results", "specs"},
          Chunk: set(), ProjectSettings: set()}


def test_every_list_or_dict_field_is_one_the_snapshot_copies():
    for cls, copied in COPIED.items():
        containers = {f.name for f in dataclasses.fields(cls) if "list[" in str(f.type) or "dict[" in str(f.type)}
        assert containers == copied, cls.__name__


def test_no_edit_of_the_original_reaches_the_snapshot():
    project = new_project(ProjectSettings(model="tiny", width=64, height=64))
    shot = project.shots[0]
    shot.chunks.append(Chunk("c2", "a second chunk", 7))
    shot.takes.append(Take("t1", "Take 1", results={shot.chunks[0].id: "r1"},
                           specs={shot.chunks[0].id: TakeSpec("first", 1)}))
    snapshot = snapshot_project(project)
    before = copy.deepcopy(snapshot)
    assert snapshot == project

    project.settings.width = 128
    shot.name, shot.prompt = "Renamed", "a shot prompt"
    shot.chunks[0].prompt, shot.chunks[1].seed = "edited", 8
    shot.chunks.append(Chunk("c3"))
    shot.takes[0].results["c2"] = "r2"
    shot.takes[0].specs["c2"] = TakeSpec("second", 2)
    shot.takes[0].name = "Take 1 renamed"
    shot.takes.append(Take("t2", "Take 2"))
    project.shots.append(Shot("s2", "Shot 2"))
    project.results["r9"] = None
    assert snapshot == before and snapshot != project
