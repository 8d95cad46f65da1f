"""Export the storyboard's active takes (or a range of chunks or frames) to an mp4, with a sidecar JSON beside it.

    pending = pending_chunks(project)           # before exporting: name what is missing or stale
    if pending: ask_user(describe_pending(project, pending))
    outcome = export_video(project, store, "film.mp4", scale=0.5, progress=on_progress, cancel=token)
    export_video(project, store, "in-out.mp4", frame_range=(30, 100), fps=25, aspect=(16, 9))

The video goes through magi_engine.video_io.VideoWriter (H.264 yuv420p, written atomically); frames are
read chunk by chunk from the project's results, so memory stays flat. What is exported is the whole
storyboard, storyboard chunk positions [start, stop) (`chunk_range`) or storyboard frames [in, out)
(`frame_range`: the player's in/out points; the first and last chunk are trimmed). The video runs at
the project's fps, or at another `fps` by showing each frame of the project as many times as the new
rate needs (the nearest earlier frame, as an editor's conform does). `aspect` (w, h) pads the picture
to that shape with black bars (`fit="pad"`) or crops its middle (`fit="crop"`).

The sidecar `film.json` records, for each chunk, its shot, index, the frames it covers in the video,
prompt, seed, take, model, settings and result id; magi_studio.otio_export builds its timeline from
it. No Qt here: the export dialog runs this in a worker and shows the progress.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from magi_engine.errors import ExportError
from magi_engine.output_files import check_output_file, create_temporary, replace_output_file
from magi_engine.video_io import VideoInfo, VideoWriter, fit_image
from magi_studio.document.model import (CHUNK_FRAMES, ChunkRef, ChunkState, Project, Shot, Take, active_path,
                                        resolve_specs, storyboard_chunks, storyboard_states, total_frames)

SIDECAR_FORMAT = "magi-studio-export"
#: How `aspect` is reached: black bars around the whole picture, or the picture's middle.
PAD, CROP = "pad", "crop"


@dataclass(frozen=True)
class PendingChunk:
    """A chunk an export would show without a current result."""

    ref: ChunkRef
    shot_name: str
    state: ChunkState

    @property
    def label(self) -> str:
        return f"{self.shot_name}, chunk {self.ref.index + 1}"


@dataclass(frozen=True)
class ExportResult:
    video: VideoInfo
    path: Path
    sidecar: Path


def selected_chunks(project: Project, chunk_range: tuple[int, int] | None = None) -> list[ChunkRef]:
    """The chunks to export: all, or storyboard positions [start, stop)."""
    refs = storyboard_chunks(project)
    return refs if chunk_range is None else refs[max(0, chunk_range[0]):max(0, chunk_range[1])]


def chunks_of_frames(frame_range: tuple[int, int]) -> tuple[int, int]:
    """The storyboard chunk positions [start, stop) that storyboard frames [in, out) touch."""
    first, stop = frame_range
    return first // CHUNK_FRAMES, -(-stop // CHUNK_FRAMES)


def owning_take(shot: Shot, chunk_id: str, result_id: str) -> Take | None:
    """The take that generated `result_id` for chunk `chunk_id` (None if no take holds it)."""
    return next((take for take in shot.takes if take.results.get(chunk_id) == result_id), None)


def pending_chunks(project: Project, chunk_range: tuple[int, int] | None = None) -> list[PendingChunk]:
    """Chunks in the export that are not generated (empty) or out of date (stale), in playing order."""
    states = storyboard_states(project)
    names = {shot.id: shot.name for shot in project.shots}
    return [PendingChunk(ref, names[ref.shot_id], states[ref.shot_id][ref.index])
            for ref in selected_chunks(project, chunk_range) if states[ref.shot_id][ref.index] is not ChunkState.DONE]


def draft_chunks(project: Project, chunk_range: tuple[int, int] | None = None) -> list[ChunkRef]:
    """Chunks in the export whose active result is a draft (made in Draft mode), in playing order."""
    specs = {shot.id: resolve_specs(shot, shot.active_take_id) for shot in project.shots}
    return [ref for ref in selected_chunks(project, chunk_range)
            if (spec := specs[ref.shot_id][ref.index]) is not None and spec.draft]


def describe_drafts(project: Project, drafts: list[ChunkRef], limit: int = 6) -> str:
    """The one sentence that refuses to export drafts, naming them."""
    names = {shot.id: shot.name for shot in project.shots}
    labels = [f"{names[ref.shot_id]}, chunk {ref.index + 1}" for ref in drafts]
    shown = "; ".join(labels[:limit]) + (f" and {len(labels) - limit} more" if len(labels) > limit else "")
    verb = "chunk is a draft" if len(labels) == 1 else "chunks are drafts"
    return (f"{len(labels)} {verb} ({shown}): render {'it' if len(labels) == 1 else 'them'} at final quality "
            "(Generate › Render at Final Quality) before exporting, or export with drafts scaled to the "
            "project's size.")


def describe_pending(pending: list[PendingChunk], limit: int = 6) -> str:
    """One message for the user, e.g. "2 chunks are not generated yet: Shot 1, chunk 3; Shot 2, chunk 1."."""
    parts = []
    for state, what in ((ChunkState.EMPTY, "not generated yet"), (ChunkState.STALE, "out of date (stale)"),
                        (ChunkState.DAMAGED, "damaged (their files are missing or unreadable)")):
        chosen = [p.label for p in pending if p.state is state]
        if chosen:
            shown = "; ".join(chosen[:limit]) + (f" and {len(chosen) - limit} more" if len(chosen) > limit else "")
            verb = "chunk is" if len(chosen) == 1 else "chunks are"
            parts.append(f"{len(chosen)} {verb} {what}: {shown}.")
    return " ".join(parts)


def sidecar_path(output: str | os.PathLike) -> Path:
    return Path(output).with_suffix(".json")


def export_video(project: Project, store, output: str | os.PathLike, *,
                 chunk_range: tuple[int, int] | None = None, frame_range: tuple[int, int] | None = None,
                 fps: int | None = None, aspect: tuple[int, int] | None = None, fit: str = PAD,
                 scale: float | tuple[int, int] | None = None, crf: int = 18, preset: str = "medium",
                 progress: Callable[[int, int], Any] | None = None,
                 cancel: Callable[[], bool] | Any | None = None,
                 project_name: str | None = None, drafts: bool = False) -> ExportResult | None:
    """Write the chunks' active results to `output`; None when cancelled (then nothing is written).

    Empty chunks cannot be exported (ExportError naming them); stale chunks are exported as they are,
    since the user was told by `pending_chunks`. Drafts are refused (ExportError naming them), as an editor
    delivers from the full-quality media and never from its proxies unless told to: `drafts=True` is that
    telling, and exports them scaled up to the project's size. `progress(frames_written, total_frames)`; `cancel` is a
    callable or an object with is_set(), checked before every frame. `project_name` is what the sidecar
    calls the project (default: the bundle's folder name; an untitled project's is a scratch folder's).
    """
    output = Path(output)
    if chunk_range is not None and frame_range is not None:
        raise ExportError("Export either a range of chunks or a range of frames, not both.")
    if frame_range is not None:
        frame_range = _check_frame_range(project, frame_range)
        chunk_range = chunks_of_frames(frame_range)
    refs = selected_chunks(project, chunk_range)
    if not refs:
        raise ExportError("There is nothing to export: the storyboard (or the chosen range) has no chunks.")
    empty = [p for p in pending_chunks(project, chunk_range) if p.state in (ChunkState.EMPTY, ChunkState.DAMAGED)]
    if empty:
        raise ExportError(describe_pending(empty) + " Generate them before exporting.")
    if sidecar_path(output) == output:
        raise ExportError(f"Choose a video file name ending in .mp4, not '{output.name}'.")
    check_output_file(sidecar_path(output), "sidecar")  # before the video is encoded
    source_fps = project.settings.fps
    fps = source_fps if fps is None else _check_fps(fps)
    reshape = _reshaper(aspect, fit)
    should_stop = _cancel_check(cancel)
    draft_refs = draft_chunks(project, chunk_range)
    if draft_refs and not drafts:
        raise ExportError(describe_drafts(project, draft_refs))
    scaled = {ref.chunk_id for ref in draft_refs}  # drafts shown at the project's size
    final_size = (project.settings.width, project.settings.height)
    paths = {shot.id: active_path(shot) for shot in project.shots}
    states = storyboard_states(project)
    sizes = {final_size if ref.chunk_id in scaled else (result.width, result.height)
             for ref, result in ((ref, project.results[paths[ref.shot_id][ref.index]]) for ref in refs)}
    if len(sizes) > 1:  # one video has one size: stale chunks from before a resolution change cannot join
        listed = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise ExportError(f"The chunks to export were generated at different sizes ({listed}). "
                          "Regenerate the stale chunks at the project's size first.")
    start_frame = refs[0].start_frame if frame_range is None else frame_range[0]
    stop_frame = refs[-1].stop_frame if frame_range is None else frame_range[1]
    total = _frames_at(stop_frame - start_frame, source_fps, fps)
    records, shown = [], 0  # shown: frames of the project written so far
    with VideoWriter(output, fps, scale=scale, crf=crf, preset=preset) as writer:
        for ref in refs:
            result = project.results[paths[ref.shot_id][ref.index]]
            first_frame = writer.frames_written
            keep = range(max(start_frame, ref.start_frame) - ref.start_frame,
                         min(stop_frame, ref.stop_frame) - ref.start_frame)
            for offset, frame in enumerate(store.read_frames(result)):
                if should_stop():
                    writer.abort()
                    return None
                if offset not in keep:
                    continue
                if ref.chunk_id in scaled and frame.shape[1::-1] != final_size:
                    frame = fit_image(frame, *final_size, "cover")
                frame = reshape(frame)
                for _ in range(_frames_at(shown + 1, source_fps, fps) - _frames_at(shown, source_fps, fps)):
                    writer.write(frame)
                shown += 1
                if progress is not None:
                    progress(writer.frames_written, total)
            records.append(_chunk_record(project, ref, result, states[ref.shot_id][ref.index], first_frame,
                                         writer.frames_written, keep, draft=ref.chunk_id in scaled))
        if should_stop():
            writer.abort()
            return None
        info = writer.close()
    sidecar = sidecar_path(output)
    write_text_atomically(sidecar, json.dumps({
        "format": SIDECAR_FORMAT, "version": 1, "video": output.name,
        "project": project_name or store.path.name,
        "fps": fps, "project_fps": source_fps, "width": info.width, "height": info.height, "frames": info.frames,
        "chunks": records}, indent=1, ensure_ascii=False) + "\n",
        f"The video was written, but its sidecar '{sidecar}' could not be")
    return ExportResult(info, output, sidecar)


def _frames_at(frames: int, source_fps: int, fps: int) -> int:
    """How many frames at `fps` show the first `frames` frames at `source_fps` (each video frame shows the
    latest project frame that has started by its time)."""
    return -(-frames * fps // source_fps)


def _check_frame_range(project: Project, frame_range: tuple[int, int]) -> tuple[int, int]:
    first, stop = (int(frame) for frame in frame_range)
    last = total_frames(project)
    if not 0 <= first < stop <= last:
        raise ExportError(f"The in/out range (frames {first} to {stop}) must lie inside the storyboard's "
                          f"{last} frames and hold at least one frame.")
    return first, stop


def _check_fps(fps: int) -> int:
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= 240:
        raise ExportError(f"The export frame rate must be a whole number of frames per second from 1 to 240, "
                          f"not {fps!r}.")
    return fps


def _reshaper(aspect: tuple[int, int] | None, fit: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function that brings a frame to the `aspect` (w, h) shape by padding with black or cropping."""
    if aspect is None:
        return lambda frame: frame
    if fit not in (PAD, CROP):
        raise ExportError(f"An aspect is reached by '{PAD}' or '{CROP}', not {fit!r}.")
    wide, tall = aspect
    if not (isinstance(wide, int) and isinstance(tall, int) and wide > 0 and tall > 0):
        raise ExportError(f"An aspect ratio is two positive whole numbers such as 16:9, not {aspect!r}.")

    def reshape(frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        new_width, new_height = shaped_size(width, height, aspect, fit)
        if new_height != height:
            return _fit_rows(frame, new_height)
        if new_width != width:
            return np.swapaxes(_fit_rows(np.swapaxes(frame, 0, 1), new_width), 0, 1)
        return frame

    return reshape


def shaped_size(width: int, height: int, aspect: tuple[int, int] | None, fit: str = PAD) -> tuple[int, int]:
    """The size a `width` x `height` picture has at `aspect` (w, h): padded (PAD) or cropped (CROP), even."""
    if aspect is None or width * aspect[1] == height * aspect[0]:
        return width, height
    wide, tall = aspect
    if (fit == PAD) == (width * tall > height * wide):  # pad a wide picture or crop a tall one: new height
        return width, _even(width * tall / wide)
    return _even(height * wide / tall), height


def _even(size: float) -> int:
    return max(2, int(round(size / 2)) * 2)


def _fit_rows(frame: np.ndarray, rows: int) -> np.ndarray:
    """`frame` with `rows` rows: its middle rows, or itself between black bars."""
    height = frame.shape[0]
    if rows < height:
        top = (height - rows) // 2
        return np.ascontiguousarray(frame[top:top + rows])
    padded = np.zeros((rows, *frame.shape[1:]), frame.dtype)
    top = (rows - height) // 2
    padded[top:top + height] = frame
    return padded


def _chunk_record(project: Project, ref: ChunkRef, result, state: ChunkState, first_frame: int,
                  stop_frame: int, kept: range, draft: bool = False) -> dict:
    """What the sidecar says of one chunk: the prompt, seed and take its frames were generated from."""
    shot = project.shot(ref.shot_id)
    take = owning_take(shot, ref.chunk_id, result.id)
    record = {
        "shot": shot.name, "shot_id": shot.id, "index": ref.index, "chunk_id": ref.chunk_id,
        "frames": [first_frame, stop_frame], "prompt": result.prompt, "seed": result.seed, "state": state.value,
        "take_id": take.id if take else None, "take": take.name if take else None,
        "model": result.model, "settings": {"width": result.width, "height": result.height,
                                            "sampling": result.sampling},
        "result_id": result.id,
    }
    if draft:  # a draft, scaled up to the project's size: not the final picture
        record["draft"] = True
    if len(kept) != CHUNK_FRAMES:  # trimmed by an in/out range: which of the chunk's frames are in the video
        record["chunk_frames"] = [kept.start, kept.stop]
    return record


def write_text_atomically(path: Path, text: str, failure: str) -> None:
    """Write `text` to `path` whole or not at all; ExportError "`failure`: <reason>." when it cannot be."""
    tmp = path.with_name(f".{path.name}.tmp")
    created = False
    try:
        with os.fdopen(create_temporary(tmp), "w", encoding="utf-8") as handle:  # never through a link
            created = True
            handle.write(text)
        replace_output_file(tmp, path)
    except OSError as error:
        if created:  # only the file we made: a link or file that refused O_EXCL is not ours to remove
            tmp.unlink(missing_ok=True)
        raise ExportError(f"{failure}: {error.strerror or error}.") from error


def _cancel_check(cancel: Any) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel
