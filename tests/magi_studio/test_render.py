"""`magi-studio render`: generate the missing chunks with a real (tiny) model, save them, export (an mp4, or an
.otio timeline with its mp4), resume."""

from __future__ import annotations

import json
import os

import pytest

from magi_engine.bundle import save_native_bundle
from magi_engine.events import CancelToken
from magi_engine.session import GenerationSession
from magi_engine.video_io import probe_video, read_video
from magi_studio.cli import main
from magi_studio.document.commands import AddChunk, AddShot, SetPrompt, SetShotStart, new_chunk
from magi_studio.document.model import ProjectSettings, new_project, new_shot, storyboard_states
from magi_studio.document.observer import Document
from magi_studio.document.store import ProjectStore, open_project
from magi_studio.render import generate_missing
from tests.engine.factories import TINY_VOCAB_CAPTIONS, tiny_bundle


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_native_bundle(tiny_bundle(), folder)
    return folder


@pytest.fixture
def project_path(model_dir, tmp_path):
    """Two shots (2 + 1 chunks, the second continuing the first), nothing generated, saved."""
    project = new_project(ProjectSettings(model=str(model_dir), width=64, height=64))
    document = Document(project)
    first = project.shots[0]
    document.apply(SetPrompt(first.id, first.chunks[0].id, TINY_VOCAB_CAPTIONS[0]))
    document.apply(AddChunk(first.id, new_chunk(project, first.id, 1, TINY_VOCAB_CAPTIONS[1])))
    second = new_shot(project, prompt=TINY_VOCAB_CAPTIONS[2], seed=5)
    document.apply(AddShot(second))
    document.apply(SetShotStart(second.id, "continue"))
    store = ProjectStore.create(tmp_path / "Film")
    store.save(project)
    return store.path


def _states(path):
    project, _ = open_project(path)
    return [s.value for states in storyboard_states(project).values() for s in states]


def test_render_generates_missing_chunks_saves_them_and_exports(project_path, tmp_path, capsys):
    out = tmp_path / "film.mp4"
    assert main(["render", str(project_path), "-o", str(out)]) == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height, round(info.fps)) == (72, 64, 64, 24)
    assert read_video(out).shape == (72, 64, 64, 3)
    assert _states(project_path) == ["done", "done", "done"]  # generated chunks are in the project, saved
    sidecar = json.loads((tmp_path / "film.json").read_text())
    assert [c["prompt"] for c in sidecar["chunks"]] == list(TINY_VOCAB_CAPTIONS)
    err = capsys.readouterr().err
    assert "Shot 1: generating chunks 1-2 of 2" in err and "wrote 72 frames (64x64)" in err


def test_render_fits_the_model_to_the_project_as_the_app_does(project_path, tmp_path, monkeypatch):
    from magi_engine.loading.memory import MemoryTarget
    from magi_studio.document.planning import memory_target

    asked = []
    load = GenerationSession.load.__func__
    monkeypatch.setattr(GenerationSession, "load", classmethod(lambda cls, model, **kw: asked.append(kw) or load(
        cls, model, **kw)))
    assert main(["render", str(project_path), "-o", str(tmp_path / "a.mp4"), "-q"]) == 0
    project, _ = open_project(project_path)
    # The second shot (one chunk) continues the first (two): its run attends three chunks.
    assert memory_target(project.settings, project) == MemoryTarget(64, 64, None, 3)
    assert asked == [dict(width=64, height=64, window=None, chunks=3)]


def test_a_complete_project_renders_without_loading_the_model(project_path, tmp_path, model_dir):
    assert main(["render", str(project_path), "-o", str(tmp_path / "a.mp4"), "-q"]) == 0
    project, store = open_project(project_path)
    project.settings.model = str(tmp_path / "no-such-model")  # loading it would fail
    store.save(project)
    assert main(["render", str(project_path), "-o", str(tmp_path / "b.mp4"), "-q"]) == 0
    assert probe_video(tmp_path / "b.mp4").frames == 72


def test_an_interrupted_render_keeps_finished_chunks_and_the_next_one_resumes(project_path, tmp_path, model_dir):
    project, store = open_project(project_path)
    document = Document(project)
    session = GenerationSession.load(str(model_dir))
    token = CancelToken()
    original_apply = document.apply

    def apply_then_cancel(command):  # stop the run right after its first chunk is committed
        original_apply(command)
        token.cancel()

    document.apply = apply_then_cancel
    assert generate_missing(document, store, session, cancel=token) == 1
    assert _states(project_path) == ["done", "empty", "empty"]  # saved to disk at once

    assert main(["render", str(project_path), "-o", str(tmp_path / "film.mp4"), "-q"]) == 0
    reopened, _ = open_project(project_path)
    assert _states(project_path) == ["done"] * 3
    assert len(reopened.shots[0].takes) == 1  # resumed into the same take
    assert probe_video(tmp_path / "film.mp4").frames == 72


def test_render_regenerates_stale_chunks_as_a_new_take(project_path, tmp_path):
    assert main(["render", str(project_path), "-o", str(tmp_path / "a.mp4"), "-q"]) == 0
    project, store = open_project(project_path)
    first = project.shots[0]
    SetPrompt(first.id, first.chunks[1].id, "a green triangle grows").apply(project)
    store.save(project)
    assert _states(project_path) == ["done", "stale", "stale"]
    assert main(["render", str(project_path), "-o", str(tmp_path / "b.mp4"), "-q"]) == 0
    reopened, _ = open_project(project_path)
    assert _states(project_path) == ["done"] * 3
    assert [t.name for t in reopened.shots[0].takes] == ["Take 1", "Take 2"]
    assert [t.name for t in reopened.shots[1].takes] == ["Take 1", "Take 2"]  # the continued shot followed


def test_render_errors_are_one_clear_line(project_path, tmp_path, capsys):
    assert main(["render", str(tmp_path / "missing.magi"), "-o", str(tmp_path / "x.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The project") and "does not exist" in err and "Traceback" not in err
    manifest = project_path / "project.json"
    manifest.write_text("{ not json")
    assert main(["render", str(project_path), "-o", str(tmp_path / "x.mp4")]) == 1
    assert "is damaged" in capsys.readouterr().err and manifest.read_text() == "{ not json"
    assert not (tmp_path / "x.mp4").exists()


def test_render_to_otio_writes_the_timeline_and_its_mp4_beside_it(project_path, tmp_path, capsys):
    import opentimelineio as otio

    assert main(["render", str(project_path), "-o", str(tmp_path / "cut.otio")]) == 0
    assert probe_video(tmp_path / "cut.mp4").frames == 72 and (tmp_path / "cut.json").is_file()
    clips = list(otio.adapters.read_from_file(str(tmp_path / "cut.otio")).find_clips())
    assert [c.metadata["magi_studio"]["prompt"] for c in clips] == list(TINY_VOCAB_CAPTIONS)
    assert [c.source_range.duration.value for c in clips] == [24, 24, 24]
    assert "the timeline in " + str(tmp_path / "cut.otio") in capsys.readouterr().err

    assert main(["render", str(project_path), "-o", str(tmp_path / "cut.otio"), "--otio-clips", "shot", "-q"]) == 0
    shots = list(otio.adapters.read_from_file(str(tmp_path / "cut.otio")).find_clips())
    assert [c.source_range.duration.value for c in shots] == [48, 24]
    assert [[chunk["prompt"] for chunk in c.metadata["magi_studio"]["chunks"]] for c in shots] == [
        list(TINY_VOCAB_CAPTIONS[:2]), [TINY_VOCAB_CAPTIONS[2]]]
    assert main(["render", str(project_path), "-o", str(tmp_path / "cut.mp4"), "--otio-clips", "shot"]) == 1
    assert "--otio-clips is for a timeline output ending in .otio" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["render", str(project_path), "-o", str(tmp_path / "cut.otio"), "--otio-clips", "take"])
    assert "argument --otio-clips: invalid choice: 'take'" in capsys.readouterr().err


@pytest.mark.parametrize("output, blocker, message", [
    ("film.mp4", "fifo", "video '{o}': it is a named pipe (FIFO)"),
    ("film.mp4", "folder", "video '{o}': it is a folder"),
    ("film.json", None, "Choose a video file name ending in .mp4"),
    ("film.mp4", "sidecar fifo", "sidecar '{d}/film.json': it is a named pipe"),
    ("cut.otio", "mp4 fifo", "video '{d}/cut.mp4': it is a named pipe"),
    ("cut.otio", "sidecar folder", "sidecar '{d}/cut.json': it is a folder"),
    ("missing/film.mp4", None, "the folder '{d}/missing' does not exist"),
])
def test_bad_outputs_are_refused_before_anything_is_generated(project_path, tmp_path, capsys, monkeypatch, output,
                                                              blocker, message):
    monkeypatch.setattr(GenerationSession, "load", classmethod(lambda *a, **k: pytest.fail("a model was loaded")))
    out = tmp_path / output
    blocked = {"fifo": out, "folder": out, "sidecar fifo": tmp_path / "film.json", "mp4 fifo": tmp_path / "cut.mp4",
               "sidecar folder": tmp_path / "cut.json"}.get(blocker)
    if blocker is not None:
        os.mkfifo(blocked) if "fifo" in blocker else blocked.mkdir()
    before = (project_path / "project.json").read_bytes()
    assert main(["render", str(project_path), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message.format(o=out, d=tmp_path) in err and err.count("\n") == 1
    assert (project_path / "project.json").read_bytes() == before
    assert _states(project_path) == ["empty"] * 3
