"""The playback clock: frame ticks at the project's fps, timed from one start instant.

A QTimer alone drifts: each interval is rounded to a millisecond and starts late by however long the
event loop was busy. Here every tick is scheduled for its absolute due time (start + k / fps, read
from a QElapsedTimer in nanoseconds), so errors never accumulate; a timer that fires early is simply
re-armed, and one that fires late jumps to the frame that is due now, which is what a player must
show. Skipped ticks are counted (`skipped`). Nothing ever sleeps: the GUI thread stays free.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal

NS_PER_S = 1_000_000_000


class PlaybackClock(QObject):
    """Emits `tick(k)` when frame k (counted from start(), k >= 1) is due."""

    tick = Signal(int)

    def __init__(self, fps: float = 24.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fps = float(fps)
        self._elapsed = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)  # millisecond accuracy, not the default 5 %
        self._timer.timeout.connect(self._on_timeout)
        self._ticks = 0
        self.skipped = 0

    @property
    def fps(self) -> float:
        return self._fps

    def set_fps(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        running = self.is_running()
        self._fps = float(fps)
        if running:
            self.start()  # re-anchor: tick k must mean k frames of the new rate

    def is_running(self) -> bool:
        return self._timer.isActive()

    @property
    def ticks(self) -> int:
        """Frames advanced since start()."""
        return self._ticks

    def elapsed_s(self) -> float:
        return self._elapsed.nsecsElapsed() / NS_PER_S if self._elapsed.isValid() else 0.0

    def due_s(self, tick: int) -> float:
        """When tick `tick` is due, in seconds after start()."""
        return tick / self._fps

    def start(self) -> None:
        """Start (or restart) counting from now: tick 1 comes one frame period later."""
        self._elapsed.start()
        self._ticks = 0
        self.skipped = 0
        self._arm()

    def stop(self) -> None:
        self._timer.stop()

    def _arm(self) -> None:
        due_ns = (self._ticks + 1) * NS_PER_S / self._fps
        remaining_ms = (due_ns - self._elapsed.nsecsElapsed()) / 1e6
        self._timer.start(max(0, math.ceil(remaining_ms)))

    def _on_timeout(self) -> None:
        due = int(self._elapsed.nsecsElapsed() * self._fps // NS_PER_S)
        if due > self._ticks:
            self.skipped += due - self._ticks - 1
            self._ticks = due
            self._arm()  # before emitting: a slot may stop() the clock
            self.tick.emit(due)
        else:
            self._arm()  # woke a little early: wait for the rest of the period
