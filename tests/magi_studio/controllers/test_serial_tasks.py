"""SerialTasks: work off the GUI thread, outcomes on it, and every callable released on the GUI thread.

A task's callables are usually bound methods or signals of Qt objects. Releasing the last reference to
one on the pool thread needs Qt's connection lock; if the GUI thread meanwhile holds the GIL and waits for
that lock (destroying a finished export dialog), the two wait on each other forever (the GUI soak hung
three times in export).
"""

from __future__ import annotations

import threading

from magi_studio.controllers.common import SerialTasks


class Tracked:
    """A callable that records the thread its last reference was dropped on."""

    released_on: list[str] = []

    def __init__(self, result=None, error: str | None = None) -> None:
        self.result, self.error = result, error

    def __call__(self, *args):
        if self.error is not None:
            raise ValueError(self.error)  # a new one each time: a stored one would tie self into a cycle
        return self.result

    def __del__(self) -> None:
        Tracked.released_on.append(threading.current_thread().name)


def test_outcomes_arrive_on_the_gui_thread_in_order(qtbot):
    tasks = SerialTasks("test-tasks")
    seen = []
    for i in range(5):
        tasks.submit(lambda i=i: (i, threading.current_thread().name),
                     on_done=lambda value: seen.append((value, threading.current_thread().name)))
    qtbot.waitUntil(lambda: len(seen) == 5)
    main = threading.current_thread().name
    assert [value[0] for value, _ in seen] == list(range(5))
    assert all(worker != main for (_, worker), _ in seen) and all(thread == main for _, thread in seen)
    assert tasks.pending == 0


def test_every_callable_is_released_on_the_gui_thread(qtbot):
    Tracked.released_on = []
    tasks = SerialTasks("test-tasks")
    delivered = []
    tasks.submit(Tracked(result=7), on_done=Tracked(), on_error=Tracked())
    tasks.submit(Tracked(error="no"), on_done=Tracked(), on_error=Tracked())
    tasks.submit(lambda: None, on_done=delivered.append)
    qtbot.waitUntil(lambda: len(delivered) == 1)
    tasks.flush()  # every task has run and every outcome is delivered
    assert Tracked.released_on == [threading.current_thread().name] * 6, Tracked.released_on


def test_an_error_reaches_on_error_and_the_next_task_still_runs(qtbot):
    tasks = SerialTasks("test-tasks")
    errors, results = [], []

    def fail():
        raise RuntimeError("disk full")

    tasks.submit(fail, on_done=results.append, on_error=errors.append)
    tasks.submit(lambda: "next", on_done=results.append)
    qtbot.waitUntil(lambda: results == ["next"])
    assert [str(e) for e in errors] == ["disk full"]
