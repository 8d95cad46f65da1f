"""PreviewPlayer: the picture, the transport and frame-clock playback over a FrameStore.

    player = PreviewPlayer(fps=24)
    player.store.set_frames(0, frames)           # uint8 [24, H, W, 3], e.g. from a ChunkFinished
    player.play(); player.seek_chunk(3); player.set_looping(True); player.set_loop_chunks(2, 4)
    player.shuttle(1); player.shuttle(1)         # L, L: forward at 2x (J: backward; K: pause)
    player.mark_in(); player.mark_out(95)        # I / O: the in/out range Loop plays (player.in_out)
    player.frameChanged.connect(timeline.follow_frame)   # the playhead, for the timeline to follow

Keys while the player has focus (the main window's actions give them to the whole window): Space
play/pause, J/K/L shuttle, I/O in and out, Left/Right one frame (pausing first), Shift+Left/Right
one chunk, Home/End; with K held, J/L step one frame. Playback is driven by PlaybackClock (absolute-time ticks, no sleeping); at a
shuttle rate of n, each tick moves n frames (forward or back), as editors' J/K/L do. What reached the
screen is measured where it happens, in the view's paint: `stats` reports frames presented and
frames dropped (due but never painted) since playback last started.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QElapsedTimer, Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from magi_engine.config import CHUNK_FRAMES
from magi_studio.player.clock import PlaybackClock
from magi_studio.player.frame_store import FrameStore
from magi_studio.player.frame_view import FrameView
from magi_studio.player.marks import InOutRange, ShotSpan, chunk_name
from magi_studio.player.transport import TransportBar

DEFAULT_FPS = 24
#: J/L pressed again while playing that way doubles the speed, up to this many frames a tick.
MAX_SHUTTLE = 8


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
    #: Frames per clock tick while playing (negative: backwards), 0 when paused.
    rateChanged = Signal(int)
    #: The in/out range (InOutRange), or None once both marks are cleared.
    inOutChanged = Signal(object)

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
        #: The picture row: the player's own view, and a second picture beside it while two takes are compared.
        self._pictures = QHBoxLayout()
        self._pictures.setSpacing(2)
        self._pictures.addWidget(self.view, 1)
        self._side: QWidget | None = None
        layout.addLayout(self._pictures, 1)
        layout.addWidget(self.transport)

        self._clock = PlaybackClock(fps, self)
        self._clock.tick.connect(self._on_tick)
        self._frame = 0
        self._chunk = 0
        self._anchor = 0          # the frame shown at clock tick 0
        self._tick = 0            # the latest clock tick shown
        self._looping = False
        self._rate = 1            # frames per tick while playing
        self._stop_held = False   # K is down: J/L step frames
        self._mark_in: int | None = None
        self._mark_out: int | None = None
        self._shots: tuple[ShotSpan, ...] = ()
        self.view.set_chunk_namer(self.chunk_name)
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
        self._refresh()

    def set_side_view(self, widget: QWidget | None) -> None:
        """Show `widget` beside the picture, as wide as it (side-by-side compare); None takes it away."""
        if widget is self._side:
            return
        if self._side is not None:
            self._pictures.removeWidget(self._side)
            self._side.hide()
        self._side = widget
        if widget is not None:
            self._pictures.addWidget(widget, 1)
            widget.show()

    @property
    def side_view(self) -> QWidget | None:
        return self._side

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
    def playback_rate(self) -> int:
        """Frames per tick: 1 playing, 2/4/8 shuttling forward, negative backward, 0 paused."""
        return self._rate if self.is_playing() else 0

    @property
    def in_out(self) -> InOutRange | None:
        """The in/out range (see magi_studio.player.marks), None when neither mark is set. Loop plays it;
        export and generation may read it."""
        if self._mark_in is None and self._mark_out is None:
            return None
        first = self._mark_in or 0
        last = self._mark_out if self._mark_out is not None else max(0, self.frame_count - 1)
        return InOutRange(first, max(first, last))

    @property
    def loop_range(self) -> tuple[int, int] | None:
        """The frames (first, last, inclusive) looped over — the in/out range — or None for the whole timeline."""
        marks = self.in_out
        return None if marks is None else (marks.first, marks.last)

    @property
    def shots(self) -> tuple[ShotSpan, ...]:
        return self._shots

    def set_shots(self, shots) -> None:
        """The storyboard's shots over the chunk positions: the scrub bar marks their boundaries, and
        chunks are named as the cards number them ("Shot 2 · chunk 3")."""
        shots = tuple(shots)
        if shots != self._shots:
            self._shots = shots
            self.transport.scrub.set_shots(shots)
            self.view.update()
            self._refresh()

    def chunk_name(self, chunk: int) -> str:
        return chunk_name(self._shots, chunk)

    @Slot(bool)
    def set_frame_counter(self, frames: bool) -> None:
        """Show the position as frame numbers instead of timecode (View › Frame Numbers)."""
        self.transport.set_frame_counter(frames)
        self._refresh()

    @property
    def stats(self) -> PlaybackStats:
        elapsed = self._play_timer.nsecsElapsed() / 1e9 if self.is_playing() else self._played_s
        return PlaybackStats(self._presented, self._dropped, elapsed, self.fps, self._max_late_ms)

    # Transport --------------------------------------------------------------------------------
    @Slot()
    def play(self) -> None:
        """Play forward at normal speed (Space); a shuttle already going forward slows back to 1x."""
        if not (self.is_playing() and self._rate == 1):
            self._run(1)

    @Slot(int)
    def shuttle(self, direction: int) -> None:
        """J (-1) / L (+1): play that way; pressed again while playing that way, twice as fast (up to 8x).
        With K held down, one frame that way instead (K+J, K+L), as in editors."""
        if self._stop_held:
            self.step(direction)
            return
        same_way = self.is_playing() and self._rate * direction > 0
        self._run(direction * (min(MAX_SHUTTLE, abs(self._rate) * 2) if same_way else 1))

    @Slot()
    def shuttle_forward(self) -> None:
        self.shuttle(1)

    @Slot()
    def shuttle_backward(self) -> None:
        self.shuttle(-1)

    @Slot()
    def hold_stop(self) -> None:
        """K pressed: stop; while it is held, J and L step one frame."""
        self._stop_held = True
        self.pause()

    @Slot()
    def release_stop(self) -> None:
        """K released (or the window lost the keyboard): J and L shuttle again."""
        self._stop_held = False

    def _run(self, rate: int) -> None:
        if self.frame_count == 0:
            return
        first, last = self._play_range()
        if self._looping and not first <= self._frame <= last:
            self._set_frame(first if rate > 0 else last)
        elif not self._looping and rate > 0 and self._frame >= last:
            self._set_frame(first)  # play at the end starts over, like every player
        elif not self._looping and rate < 0 and self._frame <= first:
            self._set_frame(last)  # and backwards from the start, from the end
        was_playing = self.is_playing()
        self._rate = rate
        self._anchor, self._tick, self._painted_tick = self._frame, 0, 0
        self._presented = self._dropped = 0
        self._max_late_ms = 0.0
        self._play_timer.start()
        self._clock.start()
        if not was_playing:
            self.transport.show_playing(True)
            self.playingChanged.emit(True)
        self.transport.show_rate(rate)
        self.rateChanged.emit(rate)

    @Slot()
    def pause(self) -> None:
        if self.is_playing():
            self._played_s = self._play_timer.nsecsElapsed() / 1e9
            self._clock.stop()
            self._rate = 1
            self.transport.show_playing(False)
            self.transport.show_rate(0)
            self.playingChanged.emit(False)
            self.rateChanged.emit(0)

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
        self.seek(chunk * CHUNK_FRAMES)

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
        if chunks < 0 and self._frame % CHUNK_FRAMES:
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

    # In and out --------------------------------------------------------------------------------
    @Slot()
    def mark_in(self, frame: int | None = None) -> None:
        """I: the range starts at `frame` (the playhead); an out mark before it is dropped."""
        frame = self._frame if frame is None else max(0, frame)
        self._set_marks(frame, self._mark_out if self._mark_out is None or self._mark_out >= frame else None)

    @Slot()
    def mark_out(self, frame: int | None = None) -> None:
        """O: the range ends at `frame` (the playhead, inclusive); an in mark after it is dropped."""
        frame = self._frame if frame is None else max(0, frame)
        self._set_marks(self._mark_in if self._mark_in is None or self._mark_in <= frame else None, frame)

    @Slot()
    def clear_in_out(self) -> None:
        self._set_marks(None, None)

    @Slot()
    def go_to_in(self) -> None:
        if self.in_out is not None:
            self.seek(self.in_out.first)

    @Slot()
    def go_to_out(self) -> None:
        if self.in_out is not None:
            self.seek(self.in_out.last)

    def set_loop_range(self, first: int, last: int) -> None:
        """Set the in/out range to frames first..last (inclusive): Loop plays it."""
        if first > last or first < 0:
            raise ValueError(f"loop range must satisfy 0 <= first <= last, got {first}..{last}")
        self._set_marks(first, last)

    def set_loop_chunks(self, first: int, last: int) -> None:
        """The in/out range over chunks first..last (inclusive)."""
        self.set_loop_range(first * CHUNK_FRAMES, (last + 1) * CHUNK_FRAMES - 1)

    def clear_loop_range(self) -> None:
        """Loop over the whole timeline (clears the in/out range)."""
        self.clear_in_out()

    def _set_marks(self, first: int | None, last: int | None) -> None:
        if (first, last) == (self._mark_in, self._mark_out):
            return
        self._mark_in, self._mark_out = first, last
        self.transport.scrub.set_marks(first, last)
        self._refresh()
        if self.is_playing():
            self.seek(self._frame)  # re-anchor under the new range
        self.inOutChanged.emit(self.in_out)

    def _play_range(self) -> tuple[int, int]:
        last_frame = max(0, self.frame_count - 1)
        marks = self.in_out
        if self._looping and marks is not None:
            first = min(marks.first, last_frame)
            return first, min(max(marks.last, first), last_frame)
        return 0, last_frame

    # Clock and painting -----------------------------------------------------------------------
    def _on_tick(self, tick: int) -> None:
        first, last = self._play_range()
        frame = self._anchor + tick * self._rate
        if self._looping:
            frame = first + (frame - first) % (last - first + 1)
        elif not first <= frame <= last:
            self._set_frame(last if frame > last else first)
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
        chunk = frame // CHUNK_FRAMES
        if chunk != self._chunk:
            self._chunk = chunk
            self.chunkChanged.emit(chunk)

    def _refresh(self) -> None:
        count = self.frame_count
        image = self.store.frame_image(self._frame) if count else None
        self.view.set_frame(image, self.store.frame_size)
        chunk = self._frame // CHUNK_FRAMES
        self.transport.show_position(self._frame, count, self.chunk_name(chunk) if count else "", self.fps,
                                     self.in_out)

    def _on_chunk_changed(self, chunk: int) -> None:
        if chunk == self._frame // CHUNK_FRAMES:
            self._refresh()

    def _on_layout_changed(self) -> None:
        if self._frame >= self.frame_count:
            self.pause()
            self._set_frame(max(0, self.frame_count - 1))
        self._refresh()

    # Keyboard ---------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        key, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        letters = {Qt.Key.Key_J: self.shuttle_backward, Qt.Key.Key_K: self.hold_stop, Qt.Key.Key_L: self.shuttle_forward,
                   Qt.Key.Key_I: self.go_to_in if shift else self.mark_in,
                   Qt.Key.Key_O: self.go_to_out if shift else self.mark_out}
        if key == Qt.Key.Key_Space:
            self.toggle_play()
        elif key in letters:
            letters[key]()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            direction = -1 if key == Qt.Key.Key_Left else 1
            self.step_chunk(direction) if shift else self.step(direction)
        elif key == Qt.Key.Key_Home:
            self.go_to_start()
        elif key == Qt.Key.Key_End:
            self.go_to_end()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_K and not event.isAutoRepeat():
            self.release_stop()
        super().keyReleaseEvent(event)  # ignored: the window hears it too
