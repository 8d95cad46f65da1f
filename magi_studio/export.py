"""Export the storyboard's active takes (or a range of chunks) to an mp4, with a sidecar JSON beside it.

    pending = pending_chunks(project)           # before exporting: name what is missing or stale
    if pending: ask_user(describe_pending(project, pending))
    outcome = export_video(project, store, "film.mp4", scale=0.5, progress=on_progress, cancel=token)

The video goes through engine.video_io.VideoWriter (H.264 yuv420p at the project's fps, written
atomically); frames are read chunk by chunk from the project's results, so memory stays flat. The
sidecar `film.json` records, for each chunk, its shot, index, prompt, seed, model, settings and
result id. No Qt here: the export dialog runs this in a worker and shows the progress.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.errors import ExportError
from engine.video_io import VideoInfo, VideoWriter
from magi_studio.document.model import (CHUNK_FRAMES, ChunkRef, ChunkState, Project, active_path, storyboard_chunks,
                                        storyboard_states)

SIDECAR_FORMAT = "magi-studio-export"


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


def pending_chunks(project: Project, chunk_range: tuple[int, int] | None = None) -> list[PendingChunk]:
    """Chunks in the export that are not generated (empty) or out of date (stale), in playing order."""
    states = storyboard_states(project)
    names = {shot.id: shot.name for shot in project.shots}
    return [PendingChunk(ref, names[ref.shot_id], states[ref.shot_id][ref.index])
            for ref in selected_chunks(project, chunk_range) if states[ref.shot_id][ref.index] is not ChunkState.DONE]


def describe_pending(pending: list[PendingChunk], limit: int = 6) -> str:
    """One message for the user, e.g. "2 chunks are not generated yet: Shot 1, chunk 3; Shot 2, chunk 1."."""
    parts = []
    for state, what in ((ChunkState.EMPTY, "not generated yet"), (ChunkState.STALE, "out of date (stale)")):
        chosen = [p.label for p in pending if p.state is state]
        if chosen:
            shown = "; ".join(chosen[:limit]) + (f" and {len(chosen) - limit} more" if len(chosen) > limit else "")
            verb = "chunk is" if len(chosen) == 1 else "chunks are"
            parts.append(f"{len(chosen)} {verb} {what}: {shown}.")
    return " ".join(parts)


def sidecar_path(output: str | os.PathLike) -> Path:
    return Path(output).with_suffix(".json")


def export_video(project: Project, store, output: str | os.PathLike, *,
                 chunk_range: tuple[int, int] | None = None, scale: float | tuple[int, int] | None = None,
                 crf: int = 18, preset: str = "medium",
                 progress: Callable[[int, int], Any] | None = None,
                 cancel: Callable[[], bool] | Any | None = None,
                 project_name: str | None = None) -> ExportResult | None:
    """Write the chunks' active results to `output`; None when cancelled (then nothing is written).

    Empty chunks cannot be exported (ExportError naming them); stale chunks are exported as they are,
    since the user was told by `pending_chunks`. `progress(frames_written, total_frames)`; `cancel` is a
    callable or an object with is_set(), checked before every frame. `project_name` is what the sidecar
    calls the project (default: the bundle's folder name; an untitled project's is a scratch folder's).
    """
    output = Path(output)
    refs = selected_chunks(project, chunk_range)
    if not refs:
        raise ExportError("There is nothing to export: the storyboard (or the chosen range) has no chunks.")
    empty = [p for p in pending_chunks(project, chunk_range) if p.state is ChunkState.EMPTY]
    if empty:
        raise ExportError(describe_pending(empty) + " Generate them before exporting.")
    if sidecar_path(output) == output:
        raise ExportError(f"Choose a video file name ending in .mp4, not '{output.name}'.")
    should_stop = _cancel_check(cancel)
    paths = {shot.id: active_path(shot) for shot in project.shots}
    states = storyboard_states(project)
    sizes = {(r.width, r.height) for r in (project.results[paths[ref.shot_id][ref.index]] for ref in refs)}
    if len(sizes) > 1:  # one video has one size: stale chunks from before a resolution change cannot join
        listed = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise ExportError(f"The chunks to export were generated at different sizes ({listed}). "
                          "Regenerate the stale chunks at the project's size first.")
    total = CHUNK_FRAMES * len(refs)
    records = []
    with VideoWriter(output, project.settings.fps, scale=scale, crf=crf, preset=preset) as writer:
        for ref in refs:
            result = project.results[paths[ref.shot_id][ref.index]]
            first_frame = writer.frames_written
            for frame in store.read_frames(result):
                if should_stop():
                    writer.abort()
                    return None
                writer.write(frame)
                if progress is not None:
                    progress(writer.frames_written, total)
            records.append(_chunk_record(project, ref, result, states[ref.shot_id][ref.index], first_frame,
                                         writer.frames_written))
        if should_stop():
            writer.abort()
            return None
        info = writer.close()
    sidecar = sidecar_path(output)
    _write_sidecar(sidecar, {
        "format": SIDECAR_FORMAT, "version": 1, "video": output.name,
        "project": project_name or store.path.name,
        "fps": project.settings.fps, "width": info.width, "height": info.height, "frames": info.frames,
        "chunks": records})
    return ExportResult(info, output, sidecar)


def _chunk_record(project: Project, ref: ChunkRef, result, state: ChunkState, first_frame: int,
                  stop_frame: int) -> dict:
    """What the sidecar says of one chunk: the prompt and seed its frames were generated from."""
    shot = project.shot(ref.shot_id)
    return {
        "shot": shot.name, "shot_id": shot.id, "index": ref.index, "chunk_id": ref.chunk_id,
        "frames": [first_frame, stop_frame], "prompt": result.prompt, "seed": result.seed, "state": state.value,
        "model": result.model, "settings": {"width": result.width, "height": result.height,
                                            "sampling": result.sampling},
        "result_id": result.id,
    }


def _write_sidecar(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"The video was written, but its sidecar '{path}' could not be: "
                          f"{error.strerror or error}.") from error


def _cancel_check(cancel: Any) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel
