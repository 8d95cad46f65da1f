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
    """A 1 ms timer on the GUI thread; the gaps between its ticks are how long the thread was blocked.

    On Linux it also reads the GUI thread's scheduler counters (/proc/thread-self/schedstat: time run, time
    waited for a core) at each tick, and splits each gap into the thread's CPU time, its wait for a core (what
    other processes on a shared machine add) and the rest (waiting for the interpreter lock, or a blocking call).
    The longest gap less its wait for a core says what a machine with a core to spare would show, roughly."""

    def __init__(self) -> None:
        self.gaps_ns: list[int] = []
        self.ends_ns: list[int] = []  # when each gap ended (perf_counter_ns)
        self.cpu_ns: list[int] = []  # per gap, the GUI thread's own CPU time in it
        self.core_waits_ns: list[int] = []  # per gap, where the counters can be read
        self._last, self._last_cpu = time.perf_counter_ns(), 0
        self._schedstat = None
        self._last_wait = 0
        self._ticker = QTimer()
        self._ticker.setTimerType(Qt.TimerType.PreciseTimer)
        self._ticker.setInterval(1)
        self._ticker.timeout.connect(self._tick)

    def _core_wait_ns(self) -> int:
        self._schedstat.seek(0)
        return int(self._schedstat.read().split()[1])

    def _tick(self) -> None:
        now, cpu = time.perf_counter_ns(), time.thread_time_ns()
        self.gaps_ns.append(now - self._last)
        self.ends_ns.append(now)
        self.cpu_ns.append(cpu - self._last_cpu)
        self._last, self._last_cpu = now, cpu
        if self._schedstat is not None:
            wait = self._core_wait_ns()
            self.core_waits_ns.append(wait - self._last_wait)
            self._last_wait = wait

    def start(self) -> None:
        try:
            self._schedstat = self._schedstat or open("/proc/thread-self/schedstat", "rb", buffering=0)  # noqa: SIM115
            self._last_wait = self._core_wait_ns()
        except OSError:  # not Linux: wall-clock gaps only
            self._schedstat = None
        self._last, self._last_cpu = time.perf_counter_ns(), time.thread_time_ns()
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
        if self._schedstat is not None:
            self._schedstat.close()
            self._schedstat = None

    def worst(self, count: int) -> list[dict]:
        """The `count` longest gaps: when each started and ended (perf_counter_ns), its length, the GUI thread's CPU
        time in it, its wait for a core (where known) and the rest (the interpreter lock, a blocking call), in ms."""
        waits = self.core_waits_ns if len(self.core_waits_ns) == len(self.gaps_ns) else [0] * len(self.gaps_ns)
        gaps = sorted(zip(self.gaps_ns, self.ends_ns, self.cpu_ns, waits), reverse=True)[:count]
        return [{"start_ns": end - gap, "end_ns": end, "ms": round(gap / 1e6, 1), "gui_cpu_ms": round(cpu / 1e6, 1),
                 "core_wait_ms": round(wait / 1e6, 1), "rest_ms": round((gap - cpu - wait) / 1e6, 1)}
                for gap, end, cpu, wait in gaps]

    def summary(self) -> dict:
        """Longest gap (the worst stall), 99th percentile and mean, in ms, and the number of ticks; where the
        scheduler's counters were read, also the longest gap less the GUI thread's wait for a core in it; and the most
        GUI-thread CPU time in one gap (`max_gap_gui_cpu_ms`: the thread's own work between two ticks, which neither
        the load nor the interpreter lock inflates much: a long gap with little CPU in it was a wait)."""
        gaps_ms = sorted(g / 1e6 for g in self.gaps_ns)
        result = {"max_stall_ms": round(gaps_ms[-1], 2), "p99_gap_ms": round(gaps_ms[int(0.99 * (len(gaps_ms) - 1))], 2),
                  "mean_gap_ms": round(sum(gaps_ms) / len(gaps_ms), 3), "ticks": len(gaps_ms),
                  "max_gap_gui_cpu_ms": round(max(self.cpu_ns) / 1e6, 2)}
        if self.core_waits_ns and len(self.core_waits_ns) == len(self.gaps_ns):
            own = sorted((g - w) / 1e6 for g, w in zip(self.gaps_ns, self.core_waits_ns))
            result["max_stall_less_core_wait_ms"] = round(own[-1], 2)
            result["core_wait_share"] = round(sum(self.core_waits_ns) / max(1, sum(self.gaps_ns)), 3)
        return result
