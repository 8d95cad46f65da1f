"""What the player marks on the timeline: the in/out range (I/O keys) and the shots its chunks belong to.

    player.in_out                 # InOutRange(first=48, last=95), or None when neither mark is set
    player.in_out.chunks          # (2, 3): the storyboard chunk positions the range touches
    export_video(project, store, path, frame_range=player.in_out.frames)   # (48, 96), half-open
    player.inOutChanged.connect(...)   # InOutRange | None, on every change
    player.set_shots([ShotSpan("Shot 1", 0, 4), ShotSpan("Opening", 4, 2)])
    chunk_name(shots, 5)          # "Opening · chunk 2": the numbering the storyboard's cards use
    timecode(71, 24)              # "00:00:02:23"

Frames and chunk positions count over the whole storyboard in playing order (24 frames a chunk), as
the player's FrameStore does; the range is inclusive at both ends. An in mark alone runs to the last
frame, an out mark alone from the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from magi_engine.config import CHUNK_FRAMES


@dataclass(frozen=True)
class InOutRange:
    """Frames first..last (inclusive) of the storyboard, chosen with Mark In (I) and Mark Out (O)."""

    first: int
    last: int

    @property
    def frame_count(self) -> int:
        return self.last - self.first + 1

    @property
    def frames(self) -> tuple[int, int]:
        """(first, stop): the half-open frame range export_video's `frame_range` takes."""
        return self.first, self.last + 1

    @property
    def chunks(self) -> tuple[int, int]:
        """The first and last storyboard chunk positions the range touches."""
        return self.first // CHUNK_FRAMES, self.last // CHUNK_FRAMES


@dataclass(frozen=True)
class ShotSpan:
    """One shot of the storyboard as the player sees it: a name over a run of chunk positions."""

    name: str
    first_chunk: int
    chunk_count: int


def shot_of(shots: Sequence[ShotSpan], chunk: int) -> tuple[int, ShotSpan] | None:
    """(index in `shots`, span) of the shot holding storyboard chunk `chunk`, or None."""
    for index, span in enumerate(shots):
        if span.first_chunk <= chunk < span.first_chunk + span.chunk_count:
            return index, span
    return None


def chunk_name(shots: Sequence[ShotSpan], chunk: int) -> str:
    """"Shot 2 · chunk 3" (numbered within its shot, as on the cards); "Chunk 7" when no shot holds it."""
    found = shot_of(shots, chunk)
    if found is None:
        return f"Chunk {chunk + 1}"
    span = found[1]
    return f"{span.name} · chunk {chunk - span.first_chunk + 1}"


def timecode(frame: int, fps: float) -> str:
    """Frame index → "HH:MM:SS:FF" at `fps` (rounded to whole frames a second), FF the frame within its second."""
    fps_whole = max(1, round(fps))
    seconds, frames = divmod(max(0, frame), fps_whole)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"
