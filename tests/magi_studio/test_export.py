"""Export: an mp4 of the active takes with the right frames and size, a sidecar, pending chunks named first;
an in/out frame range, another frame rate and another aspect (padded or cropped)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from magi_engine.errors import ExportError
from magi_engine.video_io import probe_video, read_video
from magi_studio.document.commands import SetProjectSettings, SetPrompt, SetShotStart
from magi_studio.document.model import ChunkState, active_path
from magi_studio.document.take_commands import SetActiveTake
from magi_studio.export import describe_pending, export_video, pending_chunks, sidecar_path, write_text_atomically
from tests.magi_studio.document.fakes import fake_generate, rich_project, synthetic_chunk


@pytest.fixture
def complete(tmp_path):
    """The rich project with its last shot generated too: 8 chunks, all done."""
    project, store = rich_project(tmp_path)
    fake_generate(project, store, project.shots[2].id)
    return project, store


def test_export_writes_the_active_takes_to_an_mp4_with_a_sidecar(complete, tmp_path):
    project, store = complete
    out = tmp_path / "film.mp4"
    calls = []
    outcome = export_video(project, store, out, progress=lambda done, total: calls.append((done, total)), crf=0)
    info = probe_video(out)
    assert (info.frames, info.width, info.height, round(info.fps)) == (192, 64, 64, 24)
    assert outcome.video.frames == 192 and calls[-1] == (192, 192) and len(calls) == 192

    # the frames are the active path's chunks, in storyboard order (red channel encodes each chunk)
    decoded = read_video(out)
    first_shot = project.shots[0]
    expected = [synthetic_chunk(c.seed, c.prompt)[1] for c in first_shot.chunks]
    for i, frames in enumerate(expected):
        assert np.abs(decoded[24 * i + 12].astype(int) - frames[12]).mean() < 3

    sidecar = json.loads(sidecar_path(out).read_text())
    assert outcome.sidecar == tmp_path / "film.json" and sidecar["frames"] == 192 and sidecar["fps"] == 24
    assert len(sidecar["chunks"]) == 8
    third = sidecar["chunks"][2]
    result_id = active_path(first_shot)[2]
    assert third == {
        "shot": "Shot 1", "shot_id": first_shot.id, "index": 2, "chunk_id": first_shot.chunks[2].id,
        "frames": [48, 72], "prompt": "it rolls right", "seed": first_shot.chunks[2].seed, "state": "done",
        "take_id": first_shot.takes[1].id, "take": "Take 2", "model": "tiny",
        "settings": {"width": 64, "height": 64, "sampling": {}}, "result_id": result_id}


def test_export_of_a_range_at_another_scale(complete, tmp_path):
    project, store = complete
    out = tmp_path / "range.mp4"
    export_video(project, store, out, chunk_range=(3, 5), scale=2.0, preset="ultrafast")
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (48, 128, 128)
    chunks = json.loads(sidecar_path(out).read_text())["chunks"]
    assert [(c["shot"], c["index"], c["frames"]) for c in chunks] == [("Shot 1", 3, [0, 24]), ("Shot 2", 0, [24, 48])]


def test_switching_takes_changes_what_is_exported(complete, tmp_path):
    project, store = complete
    shot = project.shots[0]
    SetActiveTake(shot.id, shot.takes[0].id).apply(project)
    export_video(project, store, tmp_path / "old.mp4", chunk_range=(2, 3), preset="ultrafast")
    chunk = json.loads((tmp_path / "old.json").read_text())["chunks"][0]
    # the old take, made before the edit: switching to it put its prompt back, so it is done
    assert (chunk["prompt"], chunk["state"]) == ("it rolls left", "done")


def test_pending_chunks_are_named_before_export(tmp_path):
    project, store = rich_project(tmp_path)  # shot 3 is not generated
    first = project.shots[0]
    SetPrompt(first.id, first.chunks[3].id, "it waits").apply(project)
    pending = pending_chunks(project)
    assert [(p.label, p.state) for p in pending] == [
        ("Shot 1, chunk 4", ChunkState.STALE), ("Shot 3, chunk 1", ChunkState.EMPTY),
        ("Shot 3, chunk 2", ChunkState.EMPTY)]
    assert describe_pending(pending) == ("2 chunks are not generated yet: Shot 3, chunk 1; Shot 3, chunk 2. "
                                         "1 chunk is out of date (stale): Shot 1, chunk 4.")
    assert pending_chunks(project, (0, 4)) == pending[:1]
    out = tmp_path / "x.mp4"
    with pytest.raises(ExportError, match="2 chunks are not generated yet: Shot 3, chunk 1; Shot 3, chunk 2"):
        export_video(project, store, out)
    assert not out.exists()
    export_video(project, store, out, chunk_range=(0, 6), preset="ultrafast")  # stale chunks export as they are
    assert probe_video(out).frames == 144


def test_cancel_leaves_no_file_and_an_existing_video_untouched(complete, tmp_path):
    project, store = complete
    out = tmp_path / "film.mp4"
    out.write_bytes(b"the previous export")
    frames = []
    outcome = export_video(project, store, out, progress=lambda done, total: frames.append(done),
                           cancel=lambda: len(frames) >= 30, preset="ultrafast")
    assert outcome is None and out.read_bytes() == b"the previous export"
    assert not sidecar_path(out).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_nothing_to_export(tmp_path):
    project, store = rich_project(tmp_path)
    with pytest.raises(ExportError, match="nothing to export"):
        export_video(project, store, tmp_path / "x.mp4", chunk_range=(20, 30))


def test_chunks_of_different_sizes_cannot_be_exported_together(complete, tmp_path):
    project, store = complete
    third = project.shots[2]
    SetProjectSettings(width=128, height=128).apply(project)
    SetShotStart(third.id, "text").apply(project)  # (continuing 64x64 latents at 128x128 is refused by the engine)
    fake_generate(project, store, third.id)  # shot 3 now at 128x128, the rest stale at 64x64
    with pytest.raises(ExportError, match="different sizes \\(64x64, 128x128\\)"):
        export_video(project, store, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    export_video(project, store, tmp_path / "x.mp4", chunk_range=(6, 8), preset="ultrafast")
    assert probe_video(tmp_path / "x.mp4").width == 128


def test_an_in_out_frame_range_trims_the_first_and_last_chunk(complete, tmp_path):
    project, store = complete
    out = tmp_path / "in-out.mp4"
    outcome = export_video(project, store, out, frame_range=(30, 100), crf=0, preset="ultrafast")
    assert outcome.video.frames == 70 and probe_video(out).frames == 70
    chunks = json.loads(sidecar_path(out).read_text())["chunks"]
    assert [(c["index"], c["frames"], c.get("chunk_frames")) for c in chunks] == [
        (1, [0, 18], [6, 24]), (2, [18, 42], None), (3, [42, 66], None), (0, [66, 70], [0, 4])]
    decoded = read_video(out)
    shot = project.shots[0]
    second = synthetic_chunk(shot.chunks[1].seed, shot.chunks[1].prompt)[1]
    assert np.abs(decoded[0].astype(int) - second[6]).mean() < 3  # storyboard frame 30 is chunk 2's frame 6
    with pytest.raises(ExportError, match="in/out range"):
        export_video(project, store, out, frame_range=(100, 300))
    with pytest.raises(ExportError, match="not both"):
        export_video(project, store, out, frame_range=(0, 10), chunk_range=(0, 1))


def test_another_frame_rate_shows_each_frame_for_its_time(complete, tmp_path):
    project, store = complete
    out = tmp_path / "film30.mp4"
    outcome = export_video(project, store, out, chunk_range=(0, 2), fps=30, crf=0, preset="ultrafast")
    info = probe_video(out)
    assert (info.frames, round(info.fps)) == (60, 30) and outcome.video.frames == 60
    sidecar = json.loads(sidecar_path(out).read_text())
    assert (sidecar["fps"], sidecar["project_fps"]) == (30, 24)
    assert [c["frames"] for c in sidecar["chunks"]] == [[0, 30], [30, 60]]
    decoded = read_video(out)
    # frame k at 30 fps shows project frame floor(k * 24 / 30); green is 10x the frame's place in its chunk
    for k in (0, 1, 4, 5, 9, 29, 31, 59):
        assert abs(int(decoded[k][..., 1].mean()) - 10 * ((k * 24 // 30) % 24)) <= 3, k
    with pytest.raises(ExportError, match="frame rate"):
        export_video(project, store, out, fps=0)


@pytest.mark.parametrize("fit, size", [("pad", (114, 64)), ("crop", (64, 36))])
def test_another_aspect_pads_with_black_bars_or_crops_the_middle(complete, tmp_path, fit, size):
    project, store = complete
    out = tmp_path / f"{fit}.mp4"
    export_video(project, store, out, chunk_range=(0, 1), aspect=(16, 9), fit=fit, crf=0, preset="ultrafast")
    info = probe_video(out)
    assert (info.width, info.height) == size
    frame = read_video(out)[12].astype(int)
    shot = project.shots[0]
    source = synthetic_chunk(shot.chunks[0].seed, shot.chunks[0].prompt)[1][12].astype(int)
    if fit == "pad":
        assert frame[:, :20].max() < 20 and frame[:, -20:].max() < 20  # pillarbox bars
        assert np.abs(frame[:, 25:89] - source).mean() < 3
    else:
        assert np.abs(frame - source[14:50]).mean() < 3  # the middle 36 rows


def test_the_sidecar_is_never_written_through_a_link_at_its_temporary_name(tmp_path):
    victim, sidecar = tmp_path / "victim.txt", tmp_path / "cut.json"
    victim.write_text("keep me")
    for target in (victim, tmp_path / "would-be-created"):
        (tmp_path / ".cut.json.tmp").unlink(missing_ok=True)
        (tmp_path / ".cut.json.tmp").symlink_to(target)
        write_text_atomically(sidecar, '{"format": 1}', "The sidecar could not be")
        assert sidecar.read_text() == '{"format": 1}' and not sidecar.is_symlink()
    assert victim.read_text() == "keep me" and not (tmp_path / "would-be-created").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.json", "victim.txt"]
