"""From a queued request to a running engine job: the LOADING and PLANNING phases of a GenerationController's run.

    _when_model_ready()   # the project's model: loaded already (plan the queue's head), or loading first (LOADING)
    _plan_next()          # the queue's head planned off the GUI thread (PLANNING), by plan_request
    _start_job(...)       # its plan delivered: the engine job starts (RUNNING), or the next request is planned

Each request is planned by magi_studio.document.planning on a snapshot of the project on the results task
thread (planning reads latents and the reference image), so a chunk before N is never re-encoded: its clean
latents are read back bit-exactly as context. A request whose plan cannot be made fails alone, with its
sentence; the run goes on with the next one.

A mixin of GenerationController (generation.py), kept apart to keep that file small, as run_queue.py and
job_events.py are: it reads and changes the controller's run and moves the phase only through the
controller's `_enter`, so the state machine stays in one place.
"""

from __future__ import annotations

import time

from magi_engine.errors import ConfigError
from magi_studio.controllers.common import snapshot_project
from magi_studio.controllers.run_state import ChunkJobState, QueuedShot, RequestState, RunningJob, RunPhase
from magi_studio.document.model import first_pending_chunk, resolve_take
from magi_studio.document.planning import (GenerationPlan, ResultCommitter, memory_target, plan_final_quality,
                                           plan_generation, sampling_for)
from magi_studio.document_session import DocumentSession
from magi_studio.player.feed import GenerationFeed


def plan_request(project, store, item: QueuedShot, sampling, take_id: str | None = None) -> GenerationPlan | None:
    """The plan of a queued request on a snapshot of the project (a task thread: planning reads latents and
    images); None when it has nothing left to make. `take_id`: the take a variation's finished chunks went to
    (it was stopped or paused): the variation goes on filling it from its first chunk without one."""
    shot = project.shot(item.shot_id)
    if item.final_of is not None:
        return plan_final_quality(project, store, item.shot_id, item.final_of, sampling=sampling, filling=take_id)
    if item.seeds is not None:  # a variation: as many chunks as it has seeds (while the shot has them)
        start, stop = item.from_index, min(len(shot.chunks), item.from_index + len(item.seeds))
        if take_id is not None and shot.find_take(take_id) is not None:
            path = resolve_take(shot, take_id)
            start = next((index for index in range(item.from_index, stop) if path[index] is None), None)
            if start is None:
                return None
        else:
            take_id = None  # never started, or its take was deleted meanwhile: a new take, as asked
        return plan_generation(project, store, item.shot_id, start, sampling=sampling,
                               seeds=item.seeds[start - item.from_index:max(0, stop - item.from_index)],
                               stop_index=stop, new_take=take_id is None, activate=False, on_take=take_id,
                               draft=item.draft)
    start = first_pending_chunk(project, item.shot_id) if item.from_index is None else item.from_index
    if start is None or (item.stop_index is not None and start >= item.stop_index):
        return None
    return plan_generation(project, store, item.shot_id, start, sampling=sampling, stop_index=item.stop_index,
                           new_take=item.new_take, activate=item.activate, draft=item.draft)


class JobPlanning:
    """Model loading, planning and job start of GenerationController (which provides the attributes and signals
    they use)."""

    def _when_model_ready(self) -> None:
        """Generate with the project's model: load it first when the engine holds another (or none)."""
        if not self._queue:
            return self._end_run()
        wanted = self._session.document.project.settings.model
        info = self.worker.model_info
        if self.worker.is_loading():  # ours or a newer one (Settings, start-up): the newest load decides
            return self._enter(RunPhase.LOADING)  # re-checked when that load ends
        # Fitted to the project's size and window for runs of any length: a storyboard that grows by a chunk
        # never reloads the model (on a GPU, seconds to minutes); a new size or window does.
        target = memory_target(self._session.document.project.settings)
        replan = info is not None and info.memory_target is not None and not info.memory_target.covers(target)
        if info is not None and info.spec == wanted and not replan:
            return self._plan_next()
        if info is not None and info.remote:  # a remote engine is never swapped for a local load
            from magi_engine.remote.client import serves_model

            if serves_model(info.spec, info.name, wanted):
                return self._plan_next()
            self._report(ConfigError(f"The project uses the model '{wanted}'; the remote engine at {info.remote} "
                                     f"serves '{info.spec}'. Change the project's model, or the engine in Settings."))
            self._stop = self._stop or "failed"
            return self._end_run()
        if not self.worker.is_running():  # shut down (the app is quitting): nothing can load
            self._stop = self._stop or "cancelled"
            return self._end_run()
        # No load is under way and the engine holds another model (or none): load the project's, again if a
        # load of another model superseded ours. A load that fails ends the run (_on_engine_event).
        options = self.settings.load_options() if self.settings is not None else {}  # none: the worker's defaults
        if replan and info.spec == wanted:  # the same model, fitted again: a larger size, another window, more chunks
            self.queueNotice.emit(f"Reloading {info.label} to fit the project's memory: it was fitted to "
                                  f"{info.memory_target.describe()}, the project needs {target.describe()}.")
        self._load_job = self.worker.load_model(wanted, target=target, **options)
        self._enter(RunPhase.LOADING)

    def _plan_next(self) -> None:
        if self._stop is not None:
            return self._end_run()
        project = self._session.document.project
        while self._queue:
            item = self._queue.pop(0)
            shot = project.find_shot(item.shot_id)
            if item.id not in self._progress.estimates or shot is None:
                continue
            snapshot, store, session = snapshot_project(project), self._session.store, self._session
            sampling = sampling_for(project.settings, self.worker.model_info.sampling)
            self._current, self._current_name = item, shot.name
            self._current_since = time.monotonic()
            self._set_busy([item.shot_id])

            take_id = self._item_takes.get(item.id)  # a variation stopped or paused after some of its chunks

            def plan(snapshot=snapshot, item=item, take_id=take_id):  # task thread: reads latents and images
                return plan_request(snapshot, store, item, sampling, take_id)

            self._tasks.submit(plan, on_done=lambda p, i=item: self._start_job(session, i, p, sampling),
                               on_error=lambda error, i=item: self._on_plan_error(i, error))
            return self._enter(RunPhase.PLANNING)
        self._end_run()

    def _start_job(self, session: DocumentSession, item: QueuedShot, plan: GenerationPlan | None, sampling) -> None:
        if self._stop is not None or session is not self._session:
            return self._end_run()
        if self._pausing:
            return self._hold()
        project, shot_id = session.document.project, item.shot_id
        if self._dropping_current or plan is None or not any(s.id == shot_id for s in project.shots):
            self._leave_current(item)
            if plan is None and not self._dropping_current and self._item_made.get(item.id):
                self._complete(item, project)  # resumed with nothing left: what it made before is all it makes
            self._list_cancelled_current(item)
            self._dropping_current = False  # replaced by the request now at the queue's head, or nothing to do
            self._forget_unstarted(item, project)
            return self._plan_next()
        shot = project.shot(shot_id)
        # It may start elsewhere than queued: the shot's other chunks go idle; its own stay queued (not idle and
        # queued again: 40 card redraws at the start of a 20-chunk job, the slowest event of a run).
        self._states.settle(chunk_ids={c.id for c in shot.chunks} - self._waiting_chunks() - set(plan.chunk_ids))
        for chunk_id in plan.chunk_ids:
            self._states.set(shot_id, chunk_id, ChunkJobState.QUEUED)
        self._progress.estimates[item.id] = len(plan.chunk_ids) + self._progress.finished_in.get(item.id, 0)
        job_id = self.worker.generate(plan.request)
        sampling = plan.request.sampling or sampling  # a draft's own (fewer steps), recorded with its results
        self._job = RunningJob(session, project, plan, ResultCommitter(plan, session.store, sampling), job_id,
                               shot.name, steps_per_chunk=sampling.num_steps if sampling is not None else 0,
                               item_id=item.id)
        self._progress.timer.new_job()
        if self.player_sync is not None:
            GenerationFeed(self.worker, self.player_sync, job_id, slot_of=self._job.chunk_id)
        self._enter(RunPhase.RUNNING)

    def _on_plan_error(self, item: QueuedShot, error: BaseException) -> None:
        """This request cannot be generated (a reference image gone, chunks before it missing): it alone fails,
        with its sentence in the banner and on its row of the queue; the run goes on with the next one."""
        reported = self._report(error)
        self._leave_current(item)
        self._cancelling_current = False  # it failed before it could stop: failed it is
        self._end_request(item, RequestState.FAILED, str(reported))
        self._current, self._current_name, self._dropping_current = None, "", False
        self._forget_unstarted(item, self._session.document.project)
        if self._pausing:
            return self._hold()
        self._plan_next()  # or the run ends, when it was stopped meanwhile

    def _forget_unstarted(self, item: QueuedShot, project) -> None:
        """`item` ends before an engine job of its own (nothing left to make, given up, or its plan failed): it no
        longer counts in the run's estimate, a regeneration takes back the seed it made nothing with, and its
        shot's chunks that no waiting request makes stop showing as queued."""
        self._progress.estimates.pop(item.id, None)
        self._settle_reseeds({item.id})
        shot = project.find_shot(item.shot_id)
        self._states.settle(chunk_ids={c.id for c in shot.chunks} - self._waiting_chunks() if shot else set())
