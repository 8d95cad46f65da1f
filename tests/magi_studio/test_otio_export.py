"""OpenTimelineIO export: the .otio read back with opentimelineio — clip count, source ranges at the video's
rate, media references to the mp4 written beside it, prompts, seeds and takes as metadata, shot markers."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import opentimelineio as otio
import pytest

from magi_engine.errors import ExportError
from magi_engine.video_io import probe_video
from magi_studio.document.model import active_path
from magi_studio.export import owning_take
from magi_studio.otio_export import CHUNK, METADATA_KEY, SHOT, export_timeline, is_our_export, timeline_from_sidecar
from tests.magi_studio.document.fakes import fake_generate, rich_project


@pytest.fixture
def complete(tmp_path):
    """Three shots (4 + 2 + 2 chunks of 64x64), all generated; shot 1 has two takes."""
    project, store = rich_project(tmp_path)
    fake_generate(project, store, project.shots[2].id)
    return project, store


def clips_of(path: Path) -> list:
    timeline = otio.adapters.read_from_file(str(path))
    assert len(timeline.tracks) == 1 and timeline.tracks[0].kind == otio.schema.TrackKind.Video
    return list(timeline.tracks[0].find_clips())


def media_file(clip) -> Path:
    return Path(unquote(urlparse(clip.media_reference.target_url).path))


def test_one_clip_per_chunk_with_what_made_it(complete, tmp_path):
    project, store = complete
    outcome = export_timeline(project, store, tmp_path / "cut.otio", preset="ultrafast")
    assert outcome.timeline == tmp_path / "cut.otio" and outcome.video.path == tmp_path / "cut.mp4"
    assert probe_video(tmp_path / "cut.mp4").frames == 192 and (tmp_path / "cut.json").is_file()
    clips = clips_of(tmp_path / "cut.otio")
    assert len(clips) == 8
    starts = [clip.source_range.start_time for clip in clips]
    assert [(t.value, t.rate) for t in starts] == [(24 * i, 24) for i in range(8)]
    assert all(clip.source_range.duration == otio.opentime.RationalTime(24, 24) for clip in clips)
    assert {media_file(clip) for clip in clips} == {tmp_path / "cut.mp4"}
    assert clips[0].media_reference.available_range.duration.value == 192
    expected = []
    for shot in project.shots:
        for chunk, result_id in zip(shot.chunks, active_path(shot)):
            result = project.results[result_id]
            take = owning_take(shot, chunk.id, result_id)
            expected.append((shot.name, chunk.id, result.prompt, result.seed, take.id, take.name, result_id))
    got = [(m["shot"], m["chunk_id"], m["prompt"], m["seed"], m["take_id"], m["take"], m["result_id"])
           for m in (clip.metadata[METADATA_KEY] for clip in clips)]
    assert got == expected
    assert got[2][5] == "Take 2" and got[0][5] == "Take 1"  # shot 1's chunk 3 on was regenerated
    markers = [(i, m.name, m.marked_range.start_time.value) for i, c in enumerate(clips) for m in c.markers]
    assert markers == [(0, "Shot 1", 0), (4, "Shot 2", 96), (6, "Shot 3", 144)]


def test_one_clip_per_shot_over_an_in_out_range_at_another_rate(complete, tmp_path):
    project, store = complete
    export_timeline(project, store, tmp_path / "shots.otio", clips=SHOT, frame_range=(30, 170), fps=30,
                    preset="ultrafast")
    clips = clips_of(tmp_path / "shots.otio")
    # storyboard frames 30-96 of shot 1, 96-144 of shot 2, 144-170 of shot 3, at 30 fps
    assert [clip.name for clip in clips] == ["Shot 1", "Shot 2", "Shot 3"]
    assert [(c.source_range.start_time.value, c.source_range.duration.value) for c in clips] == [
        (0, 83), (83, 60), (143, 32)]
    assert all(c.source_range.duration.rate == 30 for c in clips)
    assert sum(c.source_range.duration.value for c in clips) == probe_video(tmp_path / "shots.mp4").frames == 175
    first = clips[0].metadata[METADATA_KEY]
    assert [c["index"] for c in first["chunks"]] == [1, 2, 3] and first["shot"] == "Shot 1"
    assert [c["prompt"] for c in first["chunks"]] == [project.results[r].prompt for r in active_path(project.shots[0])[1:]]


def test_a_video_that_is_not_ours_is_never_replaced(complete, tmp_path):
    project, store = complete
    (tmp_path / "cut.mp4").write_bytes(b"someone else's film")
    with pytest.raises(ExportError, match="was not written by MAGI Studio"):
        export_timeline(project, store, tmp_path / "cut.otio", clips=CHUNK)
    assert (tmp_path / "cut.mp4").read_bytes() == b"someone else's film" and not (tmp_path / "cut.otio").exists()
    (tmp_path / "cut.mp4").unlink()
    export_timeline(project, store, tmp_path / "cut.otio", chunk_range=(0, 1), preset="ultrafast")
    export_timeline(project, store, tmp_path / "cut.otio", chunk_range=(0, 2), preset="ultrafast")  # ours: replaced
    assert len(clips_of(tmp_path / "cut.otio")) == 2
    assert json.loads((tmp_path / "cut.json").read_text())["frames"] == 48


def test_a_fifo_sidecar_is_refused_at_once_instead_of_blocking(tmp_path):
    video, sidecar = tmp_path / "cut.mp4", tmp_path / "cut.json"
    video.write_bytes(b"someone else's film")
    os.mkfifo(sidecar)  # no writer: reading it with read_text() blocked forever
    answers = []
    reader = threading.Thread(target=lambda: answers.append(is_our_export(video)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # free the blocked reader before failing, so the run goes on
        os.close(os.open(sidecar, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("is_our_export blocked on a FIFO sidecar")
    assert answers == [False]
    with pytest.raises(ExportError, match="cannot be read as the sidecar"):
        timeline_from_sidecar(sidecar)
