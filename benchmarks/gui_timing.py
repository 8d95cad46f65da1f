"""What the GUI benchmarks share: waiting on the Qt event loop, and timing the GUI thread's stalls."""

from __future__ import annotations

import time

from PySide6.QtCore import QEventLoop, Qt, QTimer

TARGET_MS = 50.0


def wait_for(condition, timeout_s: float, what: str = "the condition") -> None:
    """Run the event loop until `condition()` holds; TimeoutError after `timeout_s`."""
    loop, deadline = QEventLoop(), time.perf_counter() + timeout_s
    poll = QTimer()
    poll.timeout.connect(lambda: (condition() or time.perf_counter() > deadline) and loop.quit())
    poll.start(5)
    loop.exec()
    poll.stop()
    if not condition():
        raise TimeoutError(f"timed out waiting for {what}")


class StallRecorder:
    """A 1 ms timer on the GUI thread; the gaps between its ticks are how long the thread was blocked."""

    def __init__(self) -> None:
        self.gaps_ns: list[int] = []
        self._last = time.perf_counter_ns()
        self._ticker = QTimer()
        self._ticker.setTimerType(Qt.TimerType.PreciseTimer)
        self._ticker.setInterval(1)
        self._ticker.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter_ns()
        self.gaps_ns.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter_ns()
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def summary(self) -> dict:
        """Longest gap (the worst stall), 99th percentile and mean, in ms, and the number of ticks."""
        gaps_ms = sorted(g / 1e6 for g in self.gaps_ns)
        return {"max_stall_ms": round(gaps_ms[-1], 2), "p99_gap_ms": round(gaps_ms[int(0.99 * (len(gaps_ms) - 1))], 2),
                "mean_gap_ms": round(sum(gaps_ms) / len(gaps_ms), 3), "ticks": len(gaps_ms)}
