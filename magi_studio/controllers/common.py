"""What the controllers share: a serial background-task runner, autosave.

    tasks = SerialTasks("magi-results")
    tasks.submit(lambda: committer.write(event), on_done=commit, on_error=report)   # work off the GUI thread
    tasks.flush()                                                                   # wait, then deliver

`SerialTasks` runs callables one at a time, in submission order, on one pool thread, and delivers each
outcome on the GUI thread in the same order. Order matters twice: a ResultCommitter must write chunk i
before chunk i + 1 (each result records the ones before it as context), and a task submitted after
others is a barrier — its callback runs only once theirs have. `Autosaver` writes autosave.json the
same way: a cheap snapshot of the project on the GUI thread, the JSON and fsync on the task thread.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot

from magi_studio.document.model import Project, Shot, Take
from magi_studio.document.store import ProjectStore, write_autosave

log = logging.getLogger(__name__)


def snapshot_project(project: Project) -> Project:
    """A copy that later edits cannot reach, cheap enough for the GUI thread.

    Shots are copied down to their chunks and takes (and each take's result and spec maps); results,
    assets and take specs are frozen dataclasses that are never changed once made, so they are shared.
    Field by field rather than copy.deepcopy, which took 1.2 ms of the GUI thread per committed chunk of a
    120-chunk storyboard (and much more while the engine's thread competed for the interpreter).
    """
    return dataclasses.replace(project, settings=copy.copy(project.settings),
                               shots=[_copied_shot(shot) for shot in project.shots], results=dict(project.results),
                               assets=dict(project.assets))


def _copied_shot(shot: Shot) -> Shot:
    copied = copy.copy(shot)
    copied.chunks = [copy.copy(chunk) for chunk in shot.chunks]
    copied.takes = [_copied_take(take) for take in shot.takes]
    return copied


def _copied_take(take: Take) -> Take:
    copied = copy.copy(take)
    copied.results, copied.specs = dict(take.results), dict(take.specs)
    return copied


class SerialTasks(QObject):
    """Callables run one at a time, in order, off the GUI thread; outcomes delivered on the GUI thread, in order."""

    _ready = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        # One Python thread: the order of submission is the order of execution. A Python executor, not a
        # QThreadPool: with QThreadPool (a QRunnable subclass, or a callable) the process crashed now and
        # then on the pool thread in the export tests (SIGSEGV, 1 run in about 7).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._futures: list[Future] = []
        # Each task's callables, owned here and dropped only by the GUI thread: a callable is often a bound
        # method or signal of a Qt object, and releasing the last reference to one on the pool thread
        # (which needs Qt's connection lock) while the GUI thread holds the GIL and waits for that lock
        # (destroying the finished dialog) deadlocked the app (GUI soak, three hangs in export).
        self._tasks: dict[int, tuple[Callable[[], Any], Callable | None, Callable | None]] = {}
        self._next_task = 0
        # (task key, value, error) appended by the pool thread, popped by the GUI thread (deque is thread-safe).
        self._outcomes: deque[tuple[int, Any, BaseException | None]] = deque()
        self._pending = 0
        self._ready.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @property
    def pending(self) -> int:
        """Tasks submitted whose outcome has not been delivered yet."""
        return self._pending

    def submit(self, work: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> None:
        self._pending += 1
        key = self._next_task
        self._next_task += 1
        self._tasks[key] = (work, on_done, on_error)

        def run() -> None:  # on the pool thread: it holds no reference of its own once it has queued the outcome
            task_work = self._tasks[key][0]
            try:
                outcome = (key, task_work(), None)
            except Exception as error:  # delivered to on_error on the GUI thread
                outcome = (key, None, error)
            # No local may outlive this call: the GUI thread drops the last references, in _deliver (an error
            # kept here would also tie this frame to its traceback in a cycle the collector frees anywhere).
            del task_work
            self._outcomes.append(outcome)
            del outcome
            self._ready.emit()

        self._futures = [f for f in self._futures if not f.done()] + [self._executor.submit(run)]

    def flush(self) -> None:
        """Block until every submitted task has run, then deliver the outcomes now (GUI thread)."""
        futures_wait(self._futures)
        self._futures = []
        self._deliver()

    @Slot()
    def _deliver(self) -> None:
        while self._outcomes:
            key, value, error = self._outcomes.popleft()
            _work, on_done, on_error = self._tasks.pop(key)
            callback = on_done if error is None else on_error
            self._pending -= 1
            try:
                if error is None:
                    if callback is not None:
                        callback(value)
                elif callback is not None:
                    callback(error)
                else:
                    log.error("background task %s failed", self.objectName(), exc_info=error)
            except Exception:  # one failing callback must not stop the others from being delivered
                log.exception("delivering the outcome of a %s task failed", self.objectName())


class Autosaver(QObject):
    """Writes a project's autosave.json in the background, in request order. Share one per app."""

    #: (bundle path as str) after an autosave is on disk.
    saved = Signal(str)
    #: (ProjectError) an autosave could not be written; the previous one is intact.
    failed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks = SerialTasks("magi-autosave", self)

    @property
    def pending(self) -> int:
        return self._tasks.pending

    def request(self, project: Project, store: ProjectStore) -> None:
        """Snapshot `project` now and write it beside `store`'s manifest off the GUI thread."""
        snapshot, path = snapshot_project(project), store.path
        self._tasks.submit(lambda: write_autosave(snapshot, path), on_done=lambda _: self.saved.emit(str(path)),
                           on_error=self.failed.emit)

    def flush(self) -> None:
        """Wait for the autosaves already requested (before a save, so none lands after it)."""
        self._tasks.flush()
