"""GenerationController: Generate (storyboard, shot, from a chunk on), Regenerate from chunk N, Resume.

    generation = GenerationController(session, worker, player_sync=player_sync, settings=settings)
    generation.chunkJobState.connect(timeline.set_job_state)        # queued / denoising % / failed
    generation.progressChanged.connect(progress_widget.show_progress)
    generation.generate_storyboard()                                # or generate_shot / regenerate_from / ...
    generation.cancel()                                             # finished chunks are kept
    generation.pause(); generation.resume_paused()                  # and the queue: run_queue.RunQueue

A run is a queue of requests (run_queue: a shot from a chunk on, or one variation of it), generated one
engine job at a time in the order asked (Generate asks for the shots in storyboard order: a continued shot
needs the one before it finished); a request made during a run joins its queue. Its phase is a RunPhase
(run_state): IDLE → LOADING (the project's model) → PLANNING (a request) → RUNNING (its engine job) →
DRAINING (its finished chunks committed) → the next request's LOADING or PLANNING, or IDLE, or PAUSED
between jobs when the user paused; `_enter` is the only place the phase changes, and an illegal move raises.

This file holds the controller itself: its signals and state, the user's hand on the run as a whole (cancel,
stop, continue what a cancel left), the run's start and end (`_begin`, `_end_run`, the run marker) and what
becomes of a request that is over. The rest of the run lives in mixins, one idea each, that move the phase
only through `_enter`:

    run_queue.RunQueue        the requests that fill the queue, and the user's hand on it (reorder, pause, retry)
    job_planning.JobPlanning  LOADING and PLANNING: the project's model loaded, the queue's head planned off the
                              GUI thread on a snapshot of the project, its engine job started
    job_events.JobEvents      RUNNING and DRAINING: the engine's events; each finished chunk written off the GUI
                              thread, then committed to its take through the undo stack and autosaved; the
                              job's end, and the next request once its chunks are committed

The player gets each chunk (and live previews) through a GenerationFeed the moment the engine delivers it, by
chunk id: PlayerSync places them where their chunk is when they arrive.

Engine failures reach the user through EngineWorker.failed (the main window's one error path);
what only this controller knows — a plan that cannot be made, a chunk that cannot be written —
goes out as `errorReported(error)`, an EngineError (ProjectError included) with a `.title`.
"""

from __future__ import annotations

import logging
import random
import time

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal

from magi_engine.errors import EngineError
from magi_studio.controllers.common import Autosaver, SerialTasks
from magi_studio.controllers.job_events import JobEvents
from magi_studio.controllers.job_planning import JobPlanning
from magi_studio.controllers.reseeds import Reseeds
from magi_studio.controllers.run_queue import RunQueue
from magi_studio.controllers.run_state import (ChunkJobState, ChunkJobStates, CompletedRequest, GenerationProgress,
                                               QueuedShot, QueueItem, RequestState, RunningJob, RunPhase,
                                               RunProgress)
from magi_studio.document.model import first_pending_chunk
from magi_studio.document.run_marker import clear_run_marker, write_run_marker
from magi_studio.document_session import DocumentSession
from magi_studio.engine_worker import EngineWorker

log = logging.getLogger(__name__)

__all__ = ["GenerationController", "GenerationProgress", "RunPhase", "ChunkJobState"]


class GenerationController(QObject, RunQueue, JobPlanning, JobEvents):
    #: (shot_id, chunk_id, state, progress 0..1): QUEUED, DENOISING or FAILED while a run touches the chunk; IDLE after.
    chunkJobState = Signal(str, str, str, float)
    #: (list of shot ids) whose undo/redo must wait: the shot being generated (empty when idle).
    busyShotsChanged = Signal(list)
    generatingChanged = Signal(bool)
    #: (RunPhase value) whenever the run's phase changes.
    phaseChanged = Signal(str)
    #: The run's queue (`queue()`) changed: a shot started, was moved or removed, the run paused or ended; or a
    #: request failed, was cancelled, retried or removed (`ended_requests()`).
    queueChanged = Signal()
    #: The list of requests done (`completed()`) changed: one was done, or the list was cleared.
    completedChanged = Signal()
    #: (GenerationProgress) on entering each phase, on every step and every chunk.
    progressChanged = Signal(object)
    #: (shot_id, chunk_id, result_id) after a finished chunk entered the document.
    chunkCommitted = Signal(str, str, str)
    #: (result_id, frames uint8 [24, H, W, 3]) just before a finished chunk enters the document: the
    #: frames the engine delivered, exactly those written, so the player need not decode the file again
    #: on the GUI thread (PlayerSync.remember_frames).
    resultFrames = Signal(str, object)
    #: ("finished" | "cancelled" | "failed") when a run is over and every finished chunk is committed.
    runEnded = Signal(str)
    #: (EngineError) problems that the engine's Failed events do not report: planning, writing, committing.
    errorReported = Signal(object)
    #: (one sentence) what became of a finished chunk that an edit during the run moved, deleted or re-parented.
    noticeReported = Signal(str)
    #: (one sentence) for the status bar: a request added nothing (the run makes it already as asked, or it is done).
    queueNotice = Signal(str)

    def __init__(self, session: DocumentSession | None, worker: EngineWorker, *, player_sync=None, settings=None,
                 autosaver: Autosaver | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session, self.worker, self.player_sync, self.settings = session, worker, player_sync, settings
        self.autosaver = autosaver if autosaver is not None else Autosaver(self)
        self._tasks = SerialTasks("magi-results", self)
        self._phase = RunPhase.IDLE
        self._queue: list[QueuedShot] = []  # the requests waiting, in order (run_queue)
        self._current: QueuedShot | None = None  # the request being planned or generated
        self._current_name = ""  # its shot's name
        self._job: RunningJob | None = None
        self._stop: str | None = None  # why the run stops early ("cancelled" / "failed")
        self._stop_reason = ""  # a failed load's sentence: every request waiting for that model failed for it
        self._pausing = False  # a pause was asked for: the run holds once the current job has drained
        # The current request is given up (replaced by the request at the queue's head, or cancelled alone): the
        # run goes on with the queue (run_queue).
        self._dropping_current = False
        self._cancelling_current = False  # ... because the user cancelled it alone: listed as cancelled once it stops
        self._stopped: list[QueuedShot] = []  # the requests a cancel left to do (continue_stopped)
        self._after_stop: list[QueuedShot] = []  # requests made while the run was stopping: the next run
        self._item_takes: dict[int, str] = {}  # queue item id -> the take its chunks went to (a variation goes on)
        # Requests that failed or were cancelled, each with its row; listed until retried or removed (run_queue).
        self._ended: list[tuple[QueuedShot, QueueItem]] = []
        self._completed: list[CompletedRequest] = []  # requests done, oldest first, until cleared
        self._item_seconds: dict[int, float] = {}  # queue item id -> seconds it has been the current request
        self._item_made: dict[int, list[str]] = {}  # queue item id -> the chunks it committed (ids, in order)
        self._reseeds = Reseeds()  # the new seeds of regenerations, taken back when they make nothing
        self._current_since = 0.0  # time.monotonic() when the current request became current
        self._run_failed: set[int] = set()  # ids of the requests that failed in this run (or the last one)
        self._job_failure = ""  # why the job under way must stop (a write failed, its shot was deleted)
        self._load_job: int | None = None
        self._marked = None  # the project folder holding this run's run marker
        self._run_chunks: list[tuple[str, str]] = []  # (shot id, chunk id) the run is to make, in order
        self._states = ChunkJobStates(self.chunkJobState.emit)
        self._busy: list[str] = []
        self._progress = RunProgress()
        #: Where regeneration's new seeds come from (a test fixes it to make a run repeatable).
        self.seed_source = random.Random()
        worker.event.connect(self._on_engine_event)
        self.queueChanged.connect(self._record_queue)  # the project keeps the queue (saved_queue)
        self.completedChanged.connect(self._record_queue)

    # Requests ---------------------------------------------------------------------------------
    @property
    def session(self) -> DocumentSession | None:
        return self._session

    def cancel(self) -> None:
        """Stop within one denoising step; every finished chunk is still committed."""
        phase = self._phase
        if phase is RunPhase.IDLE:
            return
        self._pausing, self._after_stop = False, []  # Stop again: what was asked while stopping is dropped too
        if self._stop is None:  # what the run still had to do, for continue_stopped (and Retry, row by row)
            current = [self._again(self._current)] if self._current is not None and not self._dropping_current else []
            self._stopped = current + self._queue
            for item in self._stopped:
                self._end_request(item, RequestState.CANCELLED)
        self._stop = self._stop or "cancelled"
        self._queue.clear()
        if phase is RunPhase.RUNNING:
            self.worker.cancel(self._job.job_id)
            self._emit_progress()  # "Stopping after this step…"
        elif phase in (RunPhase.LOADING, RunPhase.PAUSED):
            self._end_run()
        # PLANNING: the plan's delivery ends the run; DRAINING: the end of the draining does

    def continue_stopped(self) -> bool:
        """Generate again what the last cancel left (the request under way from its first chunk not done, and the
        waiting ones as they were asked). False: nothing."""
        items, self._stopped = self._stopped, []
        if not items or self._phase is not RunPhase.IDLE:
            return False
        stopped = {item.id for item in items}
        self._ended = [(item, row) for item, row in self._ended if item.id not in stopped]  # going on: not ended
        for item in items:
            self._reseeds.reroll(self._session, item.id, self.seed_source)
        self._request(items)
        return self.is_generating()

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and wait (running the event loop) until the run has ended and its chunks are committed."""
        if self.is_generating():
            loop, timer = QEventLoop(), QTimer()
            timer.setSingleShot(True)
            timer.timeout.connect(loop.quit)
            self.runEnded.connect(loop.quit)
            self.cancel()
            if self.is_generating():
                timer.start(timeout_ms)
                loop.exec()
            timer.stop()
            self.runEnded.disconnect(loop.quit)
        self.flush()
        return not self.is_generating()

    def flush(self) -> None:
        """Write and commit every chunk the engine has delivered so far (blocks briefly; before Save as)."""
        self._tasks.flush()

    def set_session(self, session: DocumentSession | None) -> None:
        """Another project is open (None: none): stop the run, commit what finished, forget the job states."""
        self.stop()
        self._stopped, self._ended, self._completed = [], [], []  # they were that project's
        self._reseeds.clear()
        self._states.clear()
        self._session = session
        if session is not None:
            self._restore_queue(session.document.project)
        self.queueChanged.emit()
        self.completedChanged.emit()

    def retarget_store(self, store) -> None:
        """After Save as: chunks still to come are written into the new bundle."""
        self.flush()
        if self._job is not None:
            self._job.committer.store = store
        if self._marked is not None:  # the run's marker moves with it (the old folder may be deleted)
            clear_run_marker(self._marked)
            self._marked = None
            self._mark_run(store)

    # State ------------------------------------------------------------------------------------
    @property
    def phase(self) -> RunPhase:
        return self._phase

    def is_generating(self) -> bool:
        return self._phase is not RunPhase.IDLE

    def is_busy(self, shot_id: str) -> bool:
        return shot_id in self._busy

    @property
    def busy_shots(self) -> list[str]:
        return list(self._busy)

    def touches_busy_shot(self, command) -> bool:
        """Whether undoing or redoing a command (a document command, or the QUndoCommand holding one as
        `.command`) would change a shot being generated: the undo and redo actions ask before they act."""
        shot_ids, pending = set(), [command]
        while pending:
            item = pending.pop()
            shot = getattr(item, "shot", None)  # AddShot holds the shot itself
            shot_ids.update({getattr(item, "shot_id", None), getattr(shot, "id", None)})
            pending.extend(getattr(item, "commands", ()))  # MacroCommand
            pending.extend([item.command] if getattr(item, "command", None) is not None else [])
        return any(shot_id in self._busy for shot_id in shot_ids if shot_id)

    def chunk_job_state(self, chunk_id: str) -> tuple[str, float]:
        """(state, progress) of a chunk, for a view that is built while a run goes on."""
        return self._states.get(chunk_id)

    def progress(self) -> GenerationProgress | None:
        """The run's progress now (None when idle): a view's clock asks between the engine's steps."""
        if self._phase is RunPhase.IDLE:
            return None
        model = self._session.document.project.settings.model if self._session is not None else ""
        return self._progress.snapshot(self._phase, self._current_name, self._job, model, self._stop is not None,
                                       self._pausing)

    # The state machine ------------------------------------------------------------------------
    def _enter(self, phase: RunPhase) -> None:
        """The one place the run's phase changes (RunPhase.advance raises on a move the table lacks)."""
        was = self._phase
        self._phase = was.advance(phase)
        if was is RunPhase.IDLE and phase is not RunPhase.IDLE:
            self._mark_run(self._session.store if self._session is not None else None)
        elif phase is RunPhase.IDLE and was is not RunPhase.IDLE and self._marked is not None:
            clear_run_marker(self._marked)  # ended while we live: nothing to resume at the next start
            self._marked = None
        if phase is not was:
            self.phaseChanged.emit(phase.value)
        self.queueChanged.emit()
        if (was is RunPhase.IDLE) != (phase is RunPhase.IDLE):
            self.generatingChanged.emit(phase is not RunPhase.IDLE)
        if phase is not RunPhase.IDLE:
            self._emit_progress()

    def _mark_run(self, store) -> None:
        """Say in the project folder which chunks this run is to make (run_marker), so that a run the app
        does not live to finish is offered again at the next start. A folder we cannot write in costs
        that offer only."""
        if store is None:
            return
        try:
            write_run_marker(store.path, list(dict.fromkeys(self._run_chunks)))  # a chunk asked for twice: once
            self._marked = store.path
        except (OSError, EngineError) as error:
            log.warning("could not mark the run in %s: %s", store.path, error)

    def _begin(self, items: list[QueuedShot]) -> None:
        """A run of these requests (the controller is idle)."""
        self._queue, self._stop, self._load_job, self._stopped, self._run_chunks = [], None, None, [], []
        self._run_failed = set()
        self._item_takes = {k: v for k, v in self._item_takes.items() if k in {item.id for item in items}}
        self._progress.reset()
        project = self._session.document.project
        for item in items:
            chunk_ids = self._mark_queued(project, item)
            if chunk_ids:
                self._queue.append(item)
                self._run_chunks += [(item.shot_id, chunk_id) for chunk_id in chunk_ids]
        if self._queue:
            self._when_model_ready()
        else:  # everything asked for is done already: no run, but an answer (Generate is never silent)
            self.queueNotice.emit("Nothing to generate: the chunks asked for are all done.")

    def _end_run(self) -> None:
        if self._phase is RunPhase.IDLE:
            return
        outcome = self._stop or "finished"
        if self._current is not None:
            self._leave_current(self._current)
            self._list_cancelled_current(self._current)
        reason, self._stop_reason = self._stop_reason, ""
        for item in self._queue if outcome == "failed" else []:  # the run stopped on a failure: they can be retried
            # (a model that did not load failed them all, for the reason its banner gives; not "cancelled")
            self._end_request(item, RequestState.FAILED if reason else RequestState.CANCELLED, reason)
        self._queue.clear()
        self._pausing = self._dropping_current = False
        self._job, self._current, self._current_name = None, None, ""
        self._settle_reseeds(self._reseeds.pending() - {item.id for item in self._after_stop})  # the run is over
        self._states.settle()
        self._set_busy([])
        self._enter(RunPhase.IDLE)
        self.runEnded.emit(outcome)
        waiting, self._after_stop = self._after_stop, []
        if waiting and self._session is not None:  # asked for while this run was stopping
            self._begin(waiting)

    # Requests over: failed, cancelled, done ----------------------------------------------------
    def _leave_current(self, item: QueuedShot) -> None:
        """`item` stops being the current request (done, failed, dropped, held): count the time it was."""
        if self._current_since:
            self._item_seconds[item.id] = self._item_seconds.get(item.id, 0.0) + time.monotonic() - self._current_since
            self._current_since = 0.0

    def _list_cancelled_current(self, item: QueuedShot) -> None:
        """The request the user cancelled alone has stopped: it is listed as cancelled (Retry goes on with it)."""
        if self._cancelling_current:
            self._cancelling_current = False
            self._end_request(self._again(item), RequestState.CANCELLED)

    def _end_request(self, item: QueuedShot, state: RequestState, reason: str = "") -> None:
        """`item` failed or was cancelled: its row stays (Retry, Remove) under the queue."""
        names = {shot.id: shot.name for shot in self._session.document.project.shots} if self._session else {}
        row = QueueItem(item.id, item.shot_id, names.get(item.shot_id, "A deleted shot"), item.from_index,
                        label=item.label, stop_index=item.stop_index, failed=reason, state=state)
        self._ended = [(i, r) for i, r in self._ended if i.id != item.id] + [(item, row)]
        if state is RequestState.FAILED:
            self._run_failed.add(item.id)

    def _complete(self, item: QueuedShot, project) -> None:
        """`item` is done: it joins the Completed list with what it made. Once every chunk of its shot is done, the
        shot's plain requests that failed or were cancelled before have nothing left to do: their rows go."""
        self._reseeds.forget(item.id)  # its new seed made what it made: it stays
        made = self._item_made.pop(item.id, [])
        seconds = self._item_seconds.pop(item.id, 0.0)
        shot = project.find_shot(item.shot_id)
        take_id = self._item_takes.get(item.id, "")
        take = shot.find_take(take_id) if shot is not None else None
        positions = [i + 1 for i, chunk in enumerate(shot.chunks) if chunk.id in made] if shot is not None else []
        if shot is None or take is None or not positions:
            return
        self._completed.append(CompletedRequest(item.id, shot.id, shot.name, take.id, take.name, positions[0],
                                                positions[-1], len(made), seconds, item.label))
        if first_pending_chunk(project, shot.id) is None:  # every chunk of the shot is done now
            before = len(self._ended)
            self._ended = [(i, r) for i, r in self._ended if i.shot_id != shot.id or i.seeds is not None]
            if len(self._ended) != before:
                self.queueChanged.emit()
        self.completedChanged.emit()

    # Helpers ----------------------------------------------------------------------------------
    def _set_busy(self, shot_ids: list[str]) -> None:
        if shot_ids != self._busy:
            self._busy = list(shot_ids)
            self.busyShotsChanged.emit(list(shot_ids))

    def _report(self, error: BaseException) -> EngineError:
        if not isinstance(error, EngineError):
            log.error("generation step failed", exc_info=error)
            error = EngineError(f"Generation stopped on an internal error ({type(error).__name__}: {error}). "
                                "Details are in the log.")
        self.errorReported.emit(error)
        return error

    def _emit_progress(self) -> None:
        progress = self.progress()
        if progress is not None:
            self.progressChanged.emit(progress)
