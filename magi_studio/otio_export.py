"""Export the storyboard as an OpenTimelineIO cut: a `.otio` timeline over the exported mp4, for Resolve,
Kdenlive, Premiere or Flame to finish.

    outcome = export_timeline(project, store, "cut.otio", clips=SHOT)    # writes cut.otio, cut.mp4, cut.json
    write_timeline(outcome.video.sidecar, "cut.otio", clips=CHUNK)       # the timeline again, from the sidecar

The video is written first by magi_studio.export.export_video (the mp4 beside the timeline, with its
sidecar), and the timeline is built from that sidecar alone, so it describes exactly the frames that
were written: one video track, one clip per chunk or one per shot (consecutive chunks of a shot), each
an ExternalReference to the mp4 with its source range in the video's frames at the video's frame rate.
Every clip carries what made it under metadata["magi_studio"] (a chunk clip: its prompt, seed, take,
result id; a shot clip: the same for each of its chunks), and the first clip of each shot carries a
marker named after the shot. No Qt here.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from magi_engine.errors import ExportError
from magi_engine.output_files import read_regular_file
from magi_studio.document.model import Project
from magi_studio.export import SIDECAR_FORMAT, ExportResult, export_video, sidecar_path, write_text_atomically

if TYPE_CHECKING:
    import opentimelineio as otio

TIMELINE_SUFFIX = ".otio"
#: One clip per chunk, or one per shot.
CHUNK, SHOT = "chunk", "shot"
#: A sidecar holds a few hundred bytes a chunk; anything far larger is not ours.
MAX_SIDECAR_BYTES = 64 * 2**20
#: The metadata key our clips, markers and timeline carry.
METADATA_KEY = "magi_studio"
#: What a chunk clip tells of its chunk (from the sidecar's chunk records).
CHUNK_FIELDS = ("index", "chunk_id", "prompt", "seed", "take_id", "take", "state", "model", "result_id")


@dataclass(frozen=True)
class TimelineExport:
    timeline: Path
    video: ExportResult


def video_path(output: str | os.PathLike) -> Path:
    """The mp4 a timeline refers to: beside it, with the same name."""
    return Path(output).with_suffix(".mp4")


def export_timeline(project: Project, store, output: str | os.PathLike, *, clips: str = CHUNK,
                    **video_options) -> TimelineExport | None:
    """Write the mp4 (with its sidecar) beside `output`, then the timeline; None when cancelled.

    `video_options` are export_video's (chunk_range, frame_range, fps, aspect, scale, progress, cancel, ...).
    An mp4 of that name that MAGI Studio did not write (no sidecar of ours beside it) is never replaced.
    """
    output = Path(output)
    _check_clips(clips)
    if output.suffix.lower() != TIMELINE_SUFFIX:
        raise ExportError(f"Choose a timeline file name ending in {TIMELINE_SUFFIX}, not '{output.name}'.")
    video = video_path(output)
    if video.exists() and not is_our_export(video):
        raise ExportError(f"'{video}' exists and was not written by MAGI Studio; the timeline's video would "
                          "replace it. Choose another name for the timeline or move that file.")
    outcome = export_video(project, store, video, **video_options)
    if outcome is None:
        return None
    return TimelineExport(write_timeline(outcome.sidecar, output, clips=clips), outcome)


def is_our_export(video: Path) -> bool:
    """Whether `video` has the sidecar of a MAGI Studio export beside it."""
    try:
        return read_sidecar(sidecar_path(video)).get("format") == SIDECAR_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_sidecar(sidecar: Path) -> dict:
    """The JSON of a sidecar; OSError when it is not a regular file (a FIFO would block a plain read forever)."""
    return json.loads(read_regular_file(sidecar, MAX_SIDECAR_BYTES).decode("utf-8"))


def write_timeline(sidecar: str | os.PathLike, output: str | os.PathLike, *, clips: str = CHUNK) -> Path:
    """Build the timeline from an export's sidecar and write it to `output` (whole or not at all)."""
    output = Path(output)
    timeline = timeline_from_sidecar(sidecar, clips=clips)
    import opentimelineio as otio  # 0.2 s of imports: when a timeline is written, not at startup

    write_text_atomically(output, otio.adapters.write_to_string(timeline, "otio_json"),
                          f"The video was written, but its timeline '{output}' could not be")
    return output


def timeline_from_sidecar(sidecar: str | os.PathLike, *, clips: str = CHUNK) -> otio.schema.Timeline:
    import opentimelineio as otio

    """The cut an export's sidecar describes: one clip per chunk (CHUNK) or per shot (SHOT)."""
    _check_clips(clips)
    sidecar = Path(sidecar)
    try:
        data = read_sidecar(sidecar)
    except (OSError, ValueError) as error:
        raise ExportError(f"'{sidecar}' cannot be read as the sidecar of a MAGI Studio export "
                          f"({getattr(error, 'strerror', None) or error}).") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise ExportError(f"'{sidecar}' is not the sidecar of a MAGI Studio export.")
    rate = float(data["fps"])
    video = sidecar.with_name(data["video"])
    media = otio.schema.ExternalReference(
        target_url=video.resolve().as_uri(),
        available_range=otio.opentime.TimeRange(_time(0, rate), _time(data["frames"], rate)))
    media.name = video.name
    timeline = otio.schema.Timeline(name=data["project"], global_start_time=_time(0, rate))
    timeline.metadata[METADATA_KEY] = {key: data[key] for key in ("project", "fps", "project_fps", "width", "height")
                                       if key in data}
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for shot_id, group in itertools.groupby(data["chunks"], key=lambda record: record["shot_id"]):
        records = list(group)
        shot = {"shot": records[0]["shot"], "shot_id": shot_id}
        if clips == SHOT:
            pieces = [(records[0]["shot"], records, {**shot, "chunks": [_chunk_fields(r) for r in records]})]
        else:
            pieces = [(f"{r['shot']} · chunk {r['index'] + 1}", [r], {**shot, **_chunk_fields(r)}) for r in records]
        for number, (name, covered, metadata) in enumerate(pieces):
            clip = otio.schema.Clip(name=name, media_reference=media.clone(), source_range=otio.opentime.TimeRange(
                _time(covered[0]["frames"][0], rate), _time(covered[-1]["frames"][1] - covered[0]["frames"][0], rate)))
            clip.metadata[METADATA_KEY] = metadata
            if number == 0:  # the shot starts here
                marker = otio.schema.Marker(name=shot["shot"], color=otio.schema.MarkerColor.GREEN,
                                            marked_range=otio.opentime.TimeRange(clip.source_range.start_time,
                                                                                 _time(0, rate)))
                marker.metadata[METADATA_KEY] = dict(shot)
                clip.markers.append(marker)
            track.append(clip)
    return timeline


def _chunk_fields(record: dict) -> dict:
    return {key: record.get(key) for key in CHUNK_FIELDS}


def _time(frames: int, rate: float) -> otio.opentime.RationalTime:
    import opentimelineio as otio

    return otio.opentime.RationalTime(frames, rate)


def _check_clips(clips: str) -> None:
    if clips not in (CHUNK, SHOT):
        raise ExportError(f"A timeline has one clip per '{CHUNK}' or per '{SHOT}', not {clips!r}.")
