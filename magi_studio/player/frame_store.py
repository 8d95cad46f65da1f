"""The player's frames, chunk by chunk: filled while generation runs, with holes and live previews.

The timeline is a row of chunks of CHUNK_FRAMES frames. Each chunk slot is one of
  * a hole (not generated yet),
  * finished frames, uint8 [24, H, W, 3], as the engine's ChunkFinished delivers them,
  * loading: finished frames that exist (in the project) but are still being decoded off the GUI
    thread, or were dropped to bound memory and will be decoded again when the playhead nears them;
    optionally with a poster, a still of the chunk already at hand (its timeline thumbnail) that the
    view paints dimmed meanwhile, so the picture never blinks to a text placeholder,
  * unreadable: finished frames whose file could not be read, a hole that says so,
  * a live preview of a chunk being denoised: the engine's cheap predicted-clean frames, uint8
    [n, h, w, 3] at latent resolution (n = 6 latent frames stand for 24 pixel frames), with its progress.
A preview is shown over older frames of the same slot (regenerating chunk N shows N's new preview,
not its previous take) until the new frames arrive or the preview is cleared.

Frames are kept as the numpy arrays the engine produced; the QImages painted from them are thin
views over that memory, built on first use and dropped with the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from PySide6.QtCore import QObject, QSize, Signal
from PySide6.QtGui import QImage, QPixmap

from magi_engine.config import CHUNK_FRAMES


class SlotState(str, Enum):
    """What one chunk slot of the player holds (the document's ChunkState says whether a chunk is generated)."""

    EMPTY = "empty"
    PREVIEW = "preview"
    FRAMES = "frames"
    #: Frames exist but are not in memory yet (being decoded): painted as a placeholder, never as stale frames.
    LOADING = "loading"
    #: Frames exist in the project but their file could not be read: a hole that says so.
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class FrameImage:
    """What to paint for one frame of the timeline."""

    frame: int
    chunk: int
    state: SlotState
    image: QImage | None = None
    #: Denoising progress of a preview, 0..1 (None when unknown or not a preview).
    progress: float | None = None
    #: A loading chunk's stand-in picture (e.g. its thumbnail, smaller than the video), None when none is at hand.
    poster: QPixmap | None = None


def _as_images(frames: np.ndarray) -> list[QImage]:
    # Views, not copies: `frames` must stay alive as long as the images (the store keeps both).
    _, height, width, _ = frames.shape
    return [QImage(frame.data, width, height, 3 * width, QImage.Format.Format_RGB888) for frame in frames]


def _check_frames(frames: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"{what} must be uint8 RGB frames [n, H, W, 3], got "
                         f"{getattr(frames, 'dtype', type(frames).__name__)} {getattr(frames, 'shape', '')}")
    if frames.shape[0] == 0:
        raise ValueError(f"{what} holds no frames")
    return np.ascontiguousarray(frames)


class _Slot:
    __slots__ = ("frames", "images", "preview", "preview_images", "progress", "loading", "poster", "unreadable")

    def __init__(self) -> None:
        self.frames: np.ndarray | None = None
        self.images: list[QImage] | None = None
        self.preview: np.ndarray | None = None
        self.preview_images: list[QImage] | None = None
        self.progress: float | None = None
        self.loading = False
        self.poster: QPixmap | None = None
        self.unreadable = False


class FrameStore(QObject):
    """Chunk-indexed frames for the preview player (GUI thread only)."""

    #: A chunk's frames or preview changed (or it became a hole).
    chunkChanged = Signal(int)
    #: The number of chunks or the resolution changed.
    layoutChanged = Signal()

    def __init__(self, chunk_count: int = 0, size: QSize | tuple[int, int] = (256, 256),
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._slots: list[_Slot] = [_Slot() for _ in range(chunk_count)]
        self._size = QSize(*size) if isinstance(size, tuple) else QSize(size)

    # Layout -----------------------------------------------------------------------------------
    @property
    def chunk_count(self) -> int:
        return len(self._slots)

    @property
    def frame_count(self) -> int:
        return len(self._slots) * CHUNK_FRAMES

    @property
    def frame_size(self) -> QSize:
        """The video's resolution (holes are drawn at this aspect ratio)."""
        return QSize(self._size)

    def set_chunk_count(self, count: int) -> None:
        """Grow with holes or shrink (dropping the last chunks)."""
        if count < 0:
            raise ValueError(f"chunk count must be 0 or more, got {count}")
        if count == len(self._slots):
            return
        del self._slots[count:]
        self._slots += [_Slot() for _ in range(count - len(self._slots))]
        self.layoutChanged.emit()

    def set_frame_size(self, width: int, height: int) -> None:
        if QSize(width, height) != self._size:
            self._size = QSize(width, height)
            self.layoutChanged.emit()

    def _slot(self, chunk: int, grow: bool = False) -> _Slot:
        if chunk < 0:
            raise IndexError(f"chunk index must be 0 or more, got {chunk}")
        if chunk >= len(self._slots):
            if not grow:
                raise IndexError(f"chunk {chunk} is past the last chunk ({len(self._slots) - 1})")
            self.set_chunk_count(chunk + 1)
        return self._slots[chunk]

    # Filling ----------------------------------------------------------------------------------
    def set_frames(self, chunk: int, frames: np.ndarray) -> None:
        """Store a finished chunk's frames [24, H, W, 3] (the store grows to hold `chunk`); clears its preview."""
        frames = _check_frames(frames, "chunk frames")
        if frames.shape[0] != CHUNK_FRAMES:
            raise ValueError(f"a chunk has {CHUNK_FRAMES} frames, got {frames.shape[0]}")
        slot = self._slot(chunk, grow=True)
        slot.frames, slot.images, slot.loading, slot.poster, slot.unreadable = frames, None, False, None, False
        slot.preview, slot.preview_images, slot.progress = None, None, None
        if not any(s.frames is not None for i, s in enumerate(self._slots) if i != chunk):
            self.set_frame_size(frames.shape[2], frames.shape[1])  # the first frames set the resolution
        self.chunkChanged.emit(chunk)

    def set_preview(self, chunk: int, preview: np.ndarray, progress: float | None = None) -> None:
        """Show a live preview [n, h, w, 3] for a chunk being denoised (progress 0..1 if known)."""
        preview = _check_frames(preview, "a chunk preview")
        slot = self._slot(chunk, grow=True)
        slot.preview, slot.preview_images = preview, None
        slot.progress = None if progress is None else min(max(float(progress), 0.0), 1.0)
        self.chunkChanged.emit(chunk)

    def clear_preview(self, chunk: int) -> None:
        """Drop a chunk's preview (e.g. after a cancel): its older frames, if any, show again."""
        if 0 <= chunk < len(self._slots) and self._slots[chunk].preview is not None:
            slot = self._slots[chunk]
            slot.preview, slot.preview_images, slot.progress = None, None, None
            self.chunkChanged.emit(chunk)

    def set_loading(self, chunk: int, poster: QPixmap | None = None) -> None:
        """Mark `chunk` as loading: its frames (if any) are dropped and `poster` (a still of the chunk, or
        the text placeholder when None) shows until set_frames. A live preview over the slot stays on top."""
        slot = self._slot(chunk, grow=True)
        if poster is not None and poster.isNull():  # an unreadable thumbnail file: no picture after all
            poster = None
        if slot.loading and slot.frames is None and slot.poster is poster:
            return
        slot.frames, slot.images, slot.loading, slot.poster, slot.unreadable = None, None, True, poster, False
        self.chunkChanged.emit(chunk)

    def set_unreadable(self, chunk: int) -> None:
        """Mark `chunk` as a result that could not be read: a hole that says so, not "not generated yet"."""
        slot = self._slot(chunk, grow=True)
        if slot.unreadable:  # every other setter clears it: frames and loading are gone already
            return
        slot.frames, slot.images, slot.loading, slot.poster, slot.unreadable = None, None, False, None, True
        self.chunkChanged.emit(chunk)  # a live preview over the slot stays on top, as over a loading one

    def clear_chunk(self, chunk: int) -> None:
        """Make `chunk` a hole."""
        if 0 <= chunk < len(self._slots):
            self._slots[chunk] = _Slot()
            self.chunkChanged.emit(chunk)

    def clear(self) -> None:
        """Every chunk becomes a hole (the chunk count stays)."""
        self._slots = [_Slot() for _ in self._slots]
        self.layoutChanged.emit()

    # Reading ----------------------------------------------------------------------------------
    def state(self, chunk: int) -> SlotState:
        slot = self._slots[chunk]
        if slot.preview is not None:
            return SlotState.PREVIEW
        if slot.frames is not None:
            return SlotState.FRAMES
        if slot.loading:
            return SlotState.LOADING
        return SlotState.UNREADABLE if slot.unreadable else SlotState.EMPTY

    def frames(self, chunk: int) -> np.ndarray | None:
        """The finished frames of `chunk` (None for a hole); a preview does not hide them here."""
        return self._slots[chunk].frames

    def preview_progress(self, chunk: int) -> float | None:
        return self._slots[chunk].progress

    def frame_image(self, frame: int) -> FrameImage:
        """What to show at timeline frame `frame` (0-based)."""
        if not 0 <= frame < self.frame_count:
            raise IndexError(f"frame {frame} is outside 0..{self.frame_count - 1}")
        chunk, local = divmod(frame, CHUNK_FRAMES)
        slot = self._slots[chunk]
        if slot.preview is not None:
            if slot.preview_images is None:
                slot.preview_images = _as_images(slot.preview)
            # n preview frames stand for the chunk's 24 frames (MAGI-1: one latent frame per 4 pixel frames).
            index = min(local * len(slot.preview_images) // CHUNK_FRAMES, len(slot.preview_images) - 1)
            return FrameImage(frame, chunk, SlotState.PREVIEW, slot.preview_images[index], slot.progress)
        if slot.frames is not None:
            if slot.images is None:
                slot.images = _as_images(slot.frames)
            return FrameImage(frame, chunk, SlotState.FRAMES, slot.images[local])
        if slot.loading:
            return FrameImage(frame, chunk, SlotState.LOADING, poster=slot.poster)
        return FrameImage(frame, chunk, SlotState.UNREADABLE if slot.unreadable else SlotState.EMPTY)
