"""PreviewPlayer: the picture, the transport and frame-clock playback over a FrameStore.

    player = PreviewPlayer(fps=24)
    player.store.set_frames(0, frames)           # uint8 [24, H, W, 3], e.g. from a ChunkFinished
    player.play(); player.seek_chunk(3); player.set_looping(True); player.set_loop_chunks(2, 4)
    player.frameChanged.connect(timeline.follow_frame)   # the playhead, for the timeline to follow

Keys while the player has focus: Space play/pause, Left/Right one frame (pausing first), Shift+Left/
Right one chunk, Home/End, L loop. Playback is driven by PlaybackClock (absolute-time ticks, no
sleeping). What reached the screen is measured where it happens, in the view's paint: `stats`
reports frames presented and frames dropped (due but never painted) since the last play().
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QElapsedTimer, Qt, Signal, Slot
from PySide6.QtWidgets import QVBoxLayout, QWidget

from magi_studio.player.clock import PlaybackClock
from magi_studio.player.frame_store import FRAMES_PER_CHUNK, FrameStore
from magi_studio.player.frame_view import FrameView
from magi_studio.player.transport import TransportBar

DEFAULT_FPS = 24


@dataclass(frozen=True)
class PlaybackStats:
    """Counted since the last play(): frames painted after the first, frames skipped, lateness."""

    presented: int
    dropped: int
    elapsed_s: float
    fps: float
    #: Worst delay between a frame's due time and its paint, in milliseconds.
    max_late_ms: float

    @property
    def due(self) -> int:
        """Frames that fell due in `elapsed_s` (the ones that should have been presented)."""
        return int(self.elapsed_s * self.fps)


class PreviewPlayer(QWidget):
    """The preview player widget (GUI thread)."""

    #: Current frame (0-based, over the whole timeline), on every change.
    frameChanged = Signal(int)
    #: Current chunk, when the playhead enters another chunk.
    chunkChanged = Signal(int)
    playingChanged = Signal(bool)
    loopingChanged = Signal(bool)

    def __init__(self, store: FrameStore | None = None, fps: float = DEFAULT_FPS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PlayerPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.store = store if store is not None else FrameStore(parent=self)
        self.view = FrameView()
        self.transport = TransportBar(self.store)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.transport)

        self._clock = PlaybackClock(fps, self)
        self._clock.tick.connect(self._on_tick)
        self._frame = 0
        self._chunk = 0
        self._anchor = 0          # the frame shown at clock tick 0
        self._tick = 0            # the latest clock tick shown
        self._looping = False
        self._loop_range: tuple[int, int] | None = None
        self._play_timer = QElapsedTimer()
        self._played_s = 0.0      # length of the last playback, frozen at pause
        self._painted_tick = 0
        self._presented = self._dropped = 0
        self._max_late_ms = 0.0

        self.view.framePainted.connect(self._on_frame_painted)
        self.store.chunkChanged.connect(self._on_chunk_changed)
        self.store.layoutChanged.connect(self._on_layout_changed)
        t = self.transport
        t.play.clicked.connect(lambda: self.toggle_play())
        t.step_back.clicked.connect(lambda: self.step(-1))
        t.step_forward.clicked.connect(lambda: self.step(1))
        t.go_start.clicked.connect(lambda: self.go_to_start())
        t.go_end.clicked.connect(lambda: self.go_to_end())
        t.loop.toggled.connect(self.set_looping)
        t.scrub.scrubbed.connect(self.seek)
        t.chunk_box.valueChanged.connect(lambda value: self.seek_chunk(value - 1))
        self._refresh()

    # Properties -------------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return self._clock.fps

    def set_fps(self, fps: float) -> None:
        """The project's frame rate (24 for MAGI-1)."""
        self._clock.set_fps(fps)
        if self.is_playing():
            self._anchor, self._tick, self._painted_tick = self._frame, 0, 0
        self._refresh()

    @property
    def current_frame(self) -> int:
        return self._frame

    @property
    def current_chunk(self) -> int:
        return self._chunk

    @property
    def frame_count(self) -> int:
        return self.store.frame_count

    def is_playing(self) -> bool:
        return self._clock.is_running()

    def is_looping(self) -> bool:
        return self._looping

    @property
    def loop_range(self) -> tuple[int, int] | None:
        """The frames (first, last, inclusive) looped over, or None for the whole timeline."""
        return self._loop_range

    @property
    def stats(self) -> PlaybackStats:
        elapsed = self._play_timer.nsecsElapsed() / 1e9 if self.is_playing() else self._played_s
        return PlaybackStats(self._presented, self._dropped, elapsed, self.fps, self._max_late_ms)

    # Transport --------------------------------------------------------------------------------
    @Slot()
    def play(self) -> None:
        if self.frame_count == 0 or self.is_playing():
            return
        first, last = self._play_range()
        if self._looping and not first <= self._frame <= last:
            self._set_frame(first)
        elif not self._looping and self._frame >= last:
            self._set_frame(first)  # play at the end starts over, like every player
        self._anchor, self._tick, self._painted_tick = self._frame, 0, 0
        self._presented = self._dropped = 0
        self._max_late_ms = 0.0
        self._play_timer.start()
        self._clock.start()
        self.transport.show_playing(True)
        self.playingChanged.emit(True)

    @Slot()
    def pause(self) -> None:
        if self.is_playing():
            self._played_s = self._play_timer.nsecsElapsed() / 1e9
            self._clock.stop()
            self.transport.show_playing(False)
            self.playingChanged.emit(False)

    @Slot()
    def toggle_play(self) -> None:
        self.pause() if self.is_playing() else self.play()

    @Slot(int)
    def seek(self, frame: int) -> None:
        """Move the playhead (clamped); playback, if running, continues from there."""
        if self.frame_count == 0:
            return
        self._set_frame(min(max(frame, 0), self.frame_count - 1))
        if self.is_playing():
            self._anchor, self._tick, self._painted_tick = self._frame, 0, 0
            self._clock.start()

    @Slot(int)
    def seek_chunk(self, chunk: int) -> None:
        """Move the playhead to the first frame of `chunk` (the timeline calls this on selection)."""
        self.seek(chunk * FRAMES_PER_CHUNK)

    @Slot(int)
    def step(self, frames: int) -> None:
        """Step by `frames` (negative: back); pauses playback, as frame stepping does in editors."""
        self.pause()
        self.seek(self._frame + frames)

    @Slot(int)
    def step_chunk(self, chunks: int) -> None:
        """To the start of the next/previous chunk; backwards from inside a chunk goes to its start first."""
        self.pause()
        chunk = self._chunk + chunks
        if chunks < 0 and self._frame % FRAMES_PER_CHUNK:
            chunk += 1
        self.seek_chunk(min(max(chunk, 0), max(0, self.store.chunk_count - 1)))

    @Slot()
    def step_backward(self) -> None:
        self.step(-1)

    @Slot()
    def step_forward(self) -> None:
        self.step(1)

    @Slot()
    def previous_chunk(self) -> None:
        self.step_chunk(-1)

    @Slot()
    def next_chunk(self) -> None:
        self.step_chunk(1)

    @Slot()
    def go_to_start(self) -> None:
        self.seek(0)

    @Slot()
    def go_to_end(self) -> None:
        self.seek(self.frame_count - 1)

    @Slot(bool)
    def set_looping(self, looping: bool) -> None:
        if looping == self._looping:
            return
        self._looping = looping
        blocked = self.transport.loop.blockSignals(True)
        self.transport.loop.setChecked(looping)
        self.transport.loop.blockSignals(blocked)
        if self.is_playing():
            self.seek(self._frame)  # re-anchor under the new rule
        self.loopingChanged.emit(looping)

    def set_loop_range(self, first: int, last: int) -> None:
        """Loop over frames first..last (inclusive) when looping is on."""
        if first > last or first < 0:
            raise ValueError(f"loop range must satisfy 0 <= first <= last, got {first}..{last}")
        self._loop_range = (first, last)
        self.transport.scrub.set_loop_range(self._loop_range)
        if self.is_playing():
            self.seek(self._frame)

    def set_loop_chunks(self, first: int, last: int) -> None:
        """Loop over chunks first..last (inclusive)."""
        self.set_loop_range(first * FRAMES_PER_CHUNK, (last + 1) * FRAMES_PER_CHUNK - 1)

    def clear_loop_range(self) -> None:
        """Loop over the whole timeline."""
        self._loop_range = None
        self.transport.scrub.set_loop_range(None)

    def _play_range(self) -> tuple[int, int]:
        last_frame = max(0, self.frame_count - 1)
        if self._looping and self._loop_range is not None:
            first, last = self._loop_range
            first = min(first, last_frame)
            return first, min(max(last, first), last_frame)
        return 0, last_frame

    # Clock and painting -----------------------------------------------------------------------
    def _on_tick(self, tick: int) -> None:
        first, last = self._play_range()
        if self._looping:
            frame = first + (self._anchor - first + tick) % (last - first + 1)
        else:
            frame = self._anchor + tick
            if frame > last:
                self._set_frame(last)
                self.pause()
                return
        self._tick = tick
        self._set_frame(frame)

    def _on_frame_painted(self, frame: int) -> None:
        if not self.is_playing() or frame != self._frame:
            return
        gap = self._tick - self._painted_tick
        if gap >= 1:  # a paint of a new tick; ticks in between never reached the screen
            self._presented += 1
            self._dropped += gap - 1
            self._painted_tick = self._tick
            late_ms = (self._clock.elapsed_s() - self._clock.due_s(self._tick)) * 1000
            self._max_late_ms = max(self._max_late_ms, late_ms)

    # Position ---------------------------------------------------------------------------------
    def _set_frame(self, frame: int) -> None:
        changed = frame != self._frame
        self._frame = frame
        self._refresh()
        if changed:
            self.frameChanged.emit(frame)
        chunk = frame // FRAMES_PER_CHUNK
        if chunk != self._chunk:
            self._chunk = chunk
            self.chunkChanged.emit(chunk)

    def _refresh(self) -> None:
        count = self.frame_count
        image = self.store.frame_image(self._frame) if count else None
        self.view.set_frame(image, self.store.frame_size)
        self.transport.show_position(self._frame, count, self._frame // FRAMES_PER_CHUNK, self.store.chunk_count,
                                     self.fps)

    def _on_chunk_changed(self, chunk: int) -> None:
        if chunk == self._frame // FRAMES_PER_CHUNK:
            self._refresh()

    def _on_layout_changed(self) -> None:
        if self._frame >= self.frame_count:
            self.pause()
            self._set_frame(max(0, self.frame_count - 1))
        self._refresh()

    # Keyboard ---------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        key, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if key == Qt.Key.Key_Space:
            self.toggle_play()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            direction = -1 if key == Qt.Key.Key_Left else 1
            self.step_chunk(direction) if shift else self.step(direction)
        elif key == Qt.Key.Key_Home:
            self.go_to_start()
        elif key == Qt.Key.Key_End:
            self.go_to_end()
        elif key == Qt.Key.Key_L:
            self.set_looping(not self._looping)
        else:
            super().keyPressEvent(event)
            return
        event.accept()
