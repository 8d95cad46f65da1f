"""The document model: layering (no Qt), take resolution, the stale rules, time ranges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from magi_engine.errors import ConfigError
from magi_studio.document.commands import (DeleteChunk, InsertChunk, SetPrompt, SetProjectSettings, SetReferenceImage,
                                           SetSeed, SetShotStart, new_chunk)
from magi_studio.document.model import (CHUNK_FRAMES, Chunk, ChunkState, Project, ProjectSettings, Shot, Take,
                                        active_path, chunk_frame_range, chunk_states, first_missing_chunk,
                                        first_pending_chunk, locate_frame, new_project, resolve_take,
                                        shot_frame_range, storyboard_chunks, storyboard_states, total_frames,
                                        validate_settings)
from tests.magi_studio.document.fakes import fake_generate, rich_project, write_image
from tests.test_architecture import forbidden_imports

REPO_ROOT = Path(__file__).resolve().parents[3]
HEADLESS_SOURCES = [*sorted((REPO_ROOT / "magi_studio" / "document").glob("*.py")),
                    REPO_ROOT / "magi_studio" / "export.py", REPO_ROOT / "magi_studio" / "render.py"]
QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "qasync")
STUDIO_QT_MODULES = ("magi_studio.app", "magi_studio.engine_worker", "magi_studio.player", "magi_studio.settings",
                     "magi_studio.theme")


# --------------------------------------------------------------------------------------------- layering


def test_document_export_and_render_do_not_import_qt():
    assert len(HEADLESS_SOURCES) >= 8
    offences = [f"{path.relative_to(REPO_ROOT)}:{line}: imports {name}"
                for path in HEADLESS_SOURCES
                for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path))
                if name.split(".")[0] in QT or name.startswith(STUDIO_QT_MODULES)]
    assert not offences, "the document layer must not depend on Qt:\n" + "\n".join(offences)


@pytest.mark.slow
def test_document_imports_with_qt_blocked():
    script = f"""
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {QT!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocker())
import magi_studio.document.model, magi_studio.document.commands, magi_studio.document.observer
import magi_studio.document.planning, magi_studio.document.store, magi_studio.export, magi_studio.render
print(sorted(m for m in sys.modules if m.split(".")[0] in {QT!r}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------- basics


def test_new_project_has_one_shot_with_one_chunk_and_studio_mini():
    project = new_project()
    assert project.settings.model == "studio-mini" and project.settings.fps == 24
    assert len(project.shots) == 1 and len(project.shots[0].chunks) == 1
    assert project.shots[0].name == "Shot 1" and project.shots[0].start == "text"
    assert chunk_states(project, project.shots[0].id) == [ChunkState.EMPTY]


def test_find_shot_gives_the_shot_or_none_where_shot_raises():
    project = new_project()
    project.shots.append(Shot("second", "Shot 2", [Chunk("c")]))
    assert project.find_shot("second") is project.shots[1]
    assert project.find_shot(project.shots[0].id) is project.shots[0]
    assert project.find_shot("gone") is None
    assert project.shot("second") is project.shots[1]
    with pytest.raises(KeyError, match="gone"):
        project.shot("gone")


@pytest.mark.parametrize("change, field", [
    ({"width": 100}, "width"), ({"height": 32}, "height"), ({"fps": 0}, "Frames per second"),
    ({"steps": 7}, "Steps"), ({"window": 9}, "window"), ({"seed_policy": "dice"}, "seed policy"),
    ({"model": " "}, "model"), ({"guidance_scale": 99.0}, "guidance"),
])
def test_invalid_settings_name_the_field(change, field):
    settings = ProjectSettings(**change)
    with pytest.raises(ConfigError, match=field):
        validate_settings(settings)


# --------------------------------------------------------------------------------------------- takes


def _shot_with_takes() -> Shot:
    """Chunks a b c d; root T1 has all four; T2 regenerated from c; T3 (child of T2) from d."""
    chunks = [Chunk(i) for i in "abcd"]
    takes = [Take("T1", "Take 1", None, None, {"a": "r1a", "b": "r1b", "c": "r1c", "d": "r1d"}),
             Take("T2", "Take 2", "T1", "c", {"c": "r2c", "d": "r2d"}),
             Take("T3", "Take 3", "T2", "d", {"d": "r3d"}),
             Take("T4", "Take 4", "T1", "b", {"b": "r4b"})]  # cancelled after one chunk
    return Shot("s", "Shot 1", chunks, takes=takes, active_take_id="T3")


def test_active_path_takes_chunks_before_the_first_from_the_parent_chain():
    shot = _shot_with_takes()
    assert active_path(shot) == ["r1a", "r1b", "r2c", "r3d"]
    assert resolve_take(shot, "T2") == ["r1a", "r1b", "r2c", "r2d"]
    assert resolve_take(shot, "T1") == ["r1a", "r1b", "r1c", "r1d"]
    # a take that stopped early shows nothing after its last chunk (never the parent's older chunks)
    assert resolve_take(shot, "T4") == ["r1a", "r4b", None, None]
    assert resolve_take(shot, None) == [None] * 4


def test_a_take_whose_first_chunk_is_gone_owns_nothing():
    shot = _shot_with_takes()
    shot.takes[2].first_chunk_id = "gone"
    assert resolve_take(shot, "T3") == ["r1a", "r1b", "r2c", "r2d"]


# --------------------------------------------------------------------------------------------- stale rules


@pytest.fixture
def generated(tmp_path):
    project, store = rich_project(tmp_path)
    return project, store


def _states(project: Project) -> list[list[str]]:
    return [[s.value for s in states] for states in storyboard_states(project).values()]


def test_rich_project_starts_done_where_generated(generated):
    project, _ = generated
    assert _states(project) == [["done"] * 4, ["done"] * 2, ["empty"] * 2]


@pytest.mark.parametrize("edit", ["prompt", "seed"])
def test_editing_chunk_i_makes_i_and_every_later_chunk_stale_and_keeps_frames(generated, edit):
    project, _ = generated
    shot = project.shots[0]
    before = active_path(shot)
    chunk = shot.chunks[1]
    command = SetPrompt(shot.id, chunk.id, "changed") if edit == "prompt" else SetSeed(shot.id, chunk.id, 999)
    command.apply(project)
    assert _states(project)[0] == ["done", "stale", "stale", "stale"]
    assert active_path(shot) == before  # nothing discarded
    assert first_missing_chunk(project, shot.id) is None and first_pending_chunk(project, shot.id) == 1
    command.revert(project)
    assert _states(project)[0] == ["done"] * 4


def test_changing_or_clearing_the_reference_image_makes_the_image_shot_stale(generated, tmp_path):
    project, store = generated
    shot = project.shots[1]
    other = store.import_image(write_image(tmp_path / "other.png", colour=(200, 10, 10)))
    SetReferenceImage(shot.id, other).apply(project)
    assert _states(project)[1] == ["stale", "stale"]
    SetReferenceImage(shot.id, None).apply(project)
    assert shot.start == "text" and _states(project)[1] == ["stale", "stale"]


def test_a_continued_shot_goes_stale_with_the_shot_it_continues(generated):
    project, store = generated
    third = project.shots[2]
    fake_generate(project, store, third.id)
    assert _states(project)[2] == ["done", "done"]
    second = project.shots[1]
    SetPrompt(second.id, second.chunks[1].id, "it explodes").apply(project)
    assert _states(project)[1:] == [["done", "stale"], ["stale", "stale"]]
    # a shot that starts from text does not depend on the one before
    SetShotStart(third.id, "text").apply(project)
    assert _states(project)[2] == ["stale", "stale"]  # its results were conditioned on shot 2: context differs


def test_inserting_or_deleting_a_chunk_makes_the_later_ones_stale(generated):
    project, _ = generated
    shot = project.shots[0]
    insert = InsertChunk(shot.id, 1, new_chunk(project, shot.id, 1, "new"))
    insert.apply(project)
    assert _states(project)[0] == ["done", "empty", "stale", "stale", "stale"]
    assert first_missing_chunk(project, shot.id) == 1
    insert.revert(project)
    delete = DeleteChunk(shot.id, shot.chunks[0].id)
    delete.apply(project)
    assert _states(project)[0] == ["stale", "stale", "stale"]


def test_changing_the_resolution_makes_everything_stale(generated):
    project, _ = generated
    SetProjectSettings(width=128).apply(project)
    assert _states(project)[:2] == [["stale"] * 4, ["stale"] * 2]
    SetProjectSettings(steps=8).apply(project)  # sampling settings are provenance, not staleness
    SetProjectSettings(width=64).apply(project)
    assert _states(project)[:2] == [["done"] * 4, ["done"] * 2]


# --------------------------------------------------------------------------------------------- time


def test_time_ranges_follow_chunks_and_shots(generated):
    project, _ = generated
    first, second, third = project.shots
    assert shot_frame_range(project, first.id) == (0, 96)
    assert shot_frame_range(project, third.id) == (144, 192)
    assert chunk_frame_range(project, second.id, 1) == (120, 144)
    assert total_frames(project) == 192 == 8 * CHUNK_FRAMES
    refs = storyboard_chunks(project)
    assert [(r.shot_position, r.index, r.start_frame) for r in refs[3:6]] == [(0, 3, 72), (1, 0, 96), (1, 1, 120)]
    ref, offset = locate_frame(project, 130)
    assert (ref.shot_id, ref.index, offset) == (second.id, 1, 10)
    assert locate_frame(project, 192) is None and locate_frame(project, -1) is None
    with pytest.raises(IndexError):
        chunk_frame_range(project, second.id, 2)
