"""The engine job under way, from its events to its drain: the RUNNING and DRAINING phases of a
GenerationController's run.

What the controller hears from the engine comes through EngineWorker.event, dispatched on the event's type
(`_on_engine_event`): the end of a model load (LOADING), then the job's start, steps and chunks, which move the
chunks' job states and the run's progress, and the job's end (Finished, Cancelled, Failed).

Every ChunkFinished is written to disk by ResultCommitter.write on the results task thread (PNG and
safetensors encoding, fsync), then committed to its take on the GUI thread through the undo stack and followed
by an autosave, so a crash or a cancel loses nothing finished. A write that fails, or a shot deleted during
its job, stops the job (`_fail_job`). Once the job has ended and every chunk it delivered is committed (a
barrier task: `_job_drained`), the run goes on with the next request, holds (paused), or ends.

A mixin of GenerationController (generation.py), kept apart to keep that file small, as run_queue.py and
job_planning.py are: it reads and changes the controller's run and moves the phase only through the
controller's `_enter`, so the state machine stays in one place.
"""

from __future__ import annotations

import logging

from magi_engine.events import Cancelled, ChunkFinished, ChunkStarted, Failed, Finished, GenerationStarted, StepProgress
from magi_studio.controllers.run_state import ChunkJobState, RequestState, RunningJob, RunPhase
from magi_studio.document.errors import ProjectError
from magi_studio.document.take_commands import KeepResult
from magi_studio.engine_worker import is_final

log = logging.getLogger(__name__)


class JobEvents:
    """The engine's events and the job's results and end, for GenerationController (which provides the
    attributes and signals they use)."""

    def _on_engine_event(self, job_id: int, event) -> None:
        job = self._job if self._job is not None and self._job.job_id == job_id else None
        if job is None:
            if is_final(event) and job_id == self._load_job:
                self._load_job = None
                if isinstance(event, Failed) and self._phase is RunPhase.LOADING:
                    self._stop = self._stop or "failed"  # the worker's Failed event says why, to the user
                    self._stop_reason = str(event.error)
                    return self._end_run()
            if is_final(event) and self._phase is RunPhase.LOADING:
                self._when_model_ready()  # a load ended (ours or another): is the project's model there now?
        elif isinstance(event, StepProgress):
            self._on_step(job, event)
        elif isinstance(event, ChunkFinished):
            self._on_chunk_finished(job, event)
        elif isinstance(event, ChunkStarted):
            self._on_chunk_started(job, event.chunk)
        elif isinstance(event, GenerationStarted):
            job.steps = event.total_steps
            self._emit_progress()
        elif isinstance(event, (Finished, Cancelled, Failed)):
            self._on_job_end(job, "finished" if isinstance(event, Finished) else
                             "cancelled" if isinstance(event, Cancelled) else "failed",
                             str(event.error) if isinstance(event, Failed) else "")

    def _on_chunk_started(self, job: RunningJob, chunk: int) -> None:
        if (chunk_id := job.chunk_id(chunk)) is not None:
            job.active[chunk] = 0.0
            job.chunk_steps.setdefault(chunk, 0)
            self._states.set(job.plan.shot_id, chunk_id, ChunkJobState.DENOISING, 0.0)
            self._emit_progress()

    def _on_step(self, job: RunningJob, event: StepProgress) -> None:
        job.step, job.steps, job.steps_per_chunk = event.step, event.total_steps, event.steps_per_chunk
        self._progress.timer.step(event.step, event.elapsed_s)
        for chunk, steps in event.chunk_steps.items():
            if chunk not in job.finished and (chunk_id := job.chunk_id(chunk)) is not None:
                job.chunk_steps[chunk] = steps
                job.active[chunk] = steps / max(1, event.steps_per_chunk)
                self._states.set(job.plan.shot_id, chunk_id, ChunkJobState.DENOISING, job.active[chunk])
        self._emit_progress()

    def _on_chunk_finished(self, job: RunningJob, event: ChunkFinished) -> None:
        job.finished.add(event.chunk)
        job.active.pop(event.chunk, None)
        self._progress.finished += 1
        self._progress.finished_in[job.item_id] = self._progress.finished_in.get(job.item_id, 0) + 1

        def write():  # task thread, in order; never for a job whose earlier chunk could not be written
            if job.broken:
                return None
            try:
                return job.committer.write(event)
            except Exception:
                job.broken = True
                raise

        self._tasks.submit(write, on_done=lambda result: self._commit(job, result, event),
                           on_error=lambda error: self._on_write_error(job, event.chunk, error))
        if (chunk_id := job.chunk_id(event.chunk)) is not None:
            self._states.set(job.plan.shot_id, chunk_id, ChunkJobState.DENOISING, 1.0)  # until it is committed
        self._emit_progress()

    def _commit(self, job: RunningJob, result, event=None) -> None:
        if result is None:
            return  # an earlier write of this job failed (reported then)
        if job.session is not self._session or job.session.document.project is not job.project:
            # Another project was opened before the run could drain (set_session waits for it first).
            log.warning("result %s finished after its project was closed; its files stay in %s", result.id,
                        job.committer.store.path)
            self.noticeReported.emit(f"A chunk of {job.shot_name} finished after its project was closed; its "
                                     f"files are kept in {job.committer.store.path}.")
            return
        project = job.session.document.project
        # Checked before pushing: an exception inside QUndoStack.push (redo) would not reach us.
        if not any(s.id == job.plan.shot_id for s in project.shots):
            # Kept in the project (saved with it, files in the bundle), though no take can show it.
            job.session.push(KeepResult(result), coalesce=True)
            if not job.shot_deleted:  # said once, however many chunks were finishing
                job.shot_deleted = True
                self._fail_job(job, ProjectError(f"{job.shot_name} was deleted while it was being generated; its "
                                                 "finished chunks are kept in the project's results. Generation "
                                                 "stopped."))
            return
        notice = job.committer.notice_for(project, result.chunk_id)
        if event is not None and event.frames is not None:
            self.resultFrames.emit(result.id, event.frames[event.prefix_frames:])
        # The views redraw on the next event-loop turn, once for every chunk committed by then: this event (the
        # write's outcome) stays short, and the redraw and the repaint are turns of their own.
        job.session.push(job.committer.command_for(project, result), coalesce=True)
        self._item_takes[job.item_id] = job.committer.take_id
        self._item_made.setdefault(job.item_id, []).append(result.chunk_id)
        self._states.set(job.plan.shot_id, result.chunk_id, ChunkJobState.IDLE)
        self.chunkCommitted.emit(job.plan.shot_id, result.chunk_id, result.id)
        self.autosaver.request(project, job.session.store)
        if notice is not None:
            self.noticeReported.emit(notice)

    def _on_write_error(self, job: RunningJob, chunk: int, error: BaseException) -> None:
        if (chunk_id := job.chunk_id(chunk)) is not None:
            self._states.set(job.plan.shot_id, chunk_id, ChunkJobState.FAILED)
        self._fail_job(job, error)

    def _fail_job(self, job: RunningJob, error: BaseException) -> None:
        reported = self._report(error)
        if job is self._job:
            self._stop = "failed"
            self._job_failure = self._job_failure or str(reported)
            self._queue.clear()
            self.worker.cancel(job.job_id)

    def _on_job_end(self, job: RunningJob, outcome: str, reason: str = "") -> None:
        job.outcome, job.failure = outcome, reason or ("The engine failed on it." if outcome == "failed" else "")
        if outcome == "failed":
            self._stop = "failed"
            first = job.plan.request.start_chunk
            waiting = [c for c in range(first, first + len(job.plan.chunk_ids)) if c not in job.finished]
            # The chunks being denoised failed; before any step, the first one it had to make.
            for chunk in [c for c in job.active if c not in job.finished] or waiting[:1]:
                if (chunk_id := job.chunk_id(chunk)) is not None:
                    self._states.set(job.plan.shot_id, chunk_id, ChunkJobState.FAILED)
        elif outcome == "cancelled" and not self._pausing and not self._dropping_current:
            self._stop = self._stop or "cancelled"
        self._enter(RunPhase.DRAINING)
        # A barrier: runs once every chunk this job delivered has been written and committed.
        self._tasks.submit(lambda: None, on_done=lambda _: self._job_drained(job))

    def _job_drained(self, job: RunningJob) -> None:
        if job is not self._job:
            return
        self._job = None
        if job.session is self._session:
            job.session.flush_changes()  # its last commits were coalesced: the views show them before it ends
        self._states.settle(chunk_ids=set(job.plan.chunk_ids) - self._waiting_chunks())
        # Why it failed: a write or commit of ours (the engine saw only a cancel), or the engine's own failure.
        failure, self._job_failure = self._job_failure or job.failure, ""
        if self._current is not None:
            self._leave_current(self._current)
            if failure:
                self._end_request(self._current, RequestState.FAILED, failure)
                self._cancelling_current = False
            elif job.outcome == "finished" and not self._dropping_current:
                self._complete(self._current, job.session.document.project)
            self._list_cancelled_current(self._current)
        # The next request, on the project's model (Settings may have loaded another one meanwhile).
        if self._stop is not None:
            self._end_run()
        elif self._pausing:
            self._hold()
        else:
            if self._current is not None:  # given up (replaced, or cancelled alone): a regeneration that made nothing
                self._settle_reseeds({self._current.id})
            self._current, self._current_name, self._dropping_current = None, "", False
            self._when_model_ready()
