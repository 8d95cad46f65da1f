"""The queue side of a GenerationController: what its run will generate, in order, and the user's hand on it.

    generation.queue()                     # [QueueItem]: the shot under way first, then the waiting ones
    generation.move_queued(shot_id, -1)    # earlier; remove_queued(shot_id) takes it out of the run
    generation.pause()                     # within one step; finished chunks kept; resume_paused() goes on

A mixin of GenerationController (generation.py), kept apart to keep that file small: it reads and changes
the controller's run (`_queue`, `_shot`, `_phase`) and moves the phase only through the controller's
`_enter`, so the state machine stays in one place.
"""

from __future__ import annotations

from magi_studio.controllers.run_state import QueueItem, RunPhase


class RunQueue:
    """Queue methods of GenerationController (which provides the attributes and signals they use)."""

    def queue(self) -> list[QueueItem]:
        """What the run will generate, in order: the shot under way first (when one is)."""
        if self._session is None or self._phase is RunPhase.IDLE:
            return []
        names = {shot.id: shot.name for shot in self._session.document.project.shots}
        items = [QueueItem(self._shot[0], self._shot[1], None, current=True)] if self._shot[0] else []
        return items + [QueueItem(shot_id, names[shot_id], index) for shot_id, index in self._queue
                        if shot_id in names]

    def move_queued(self, shot_id: str, offset: int) -> None:
        """Move a waiting shot `offset` places later (negative: earlier) in the queue."""
        position = next((i for i, (s, _) in enumerate(self._queue) if s == shot_id), None)
        if position is None:
            return
        item = self._queue.pop(position)
        self._queue.insert(max(0, min(len(self._queue), position + offset)), item)
        self.queueChanged.emit()

    def remove_queued(self, shot_id: str) -> None:
        """Take a waiting shot out of the run (the shot under way is stopped with cancel, not removed)."""
        if not any(s == shot_id for s, _ in self._queue):
            return
        self._queue = [(s, i) for s, i in self._queue if s != shot_id]
        self._progress.estimates.pop(shot_id, None)
        self._states.settle(shot_id)
        self.queueChanged.emit()
        self._emit_progress()

    def pause(self) -> None:
        """Hold the run: a running job stops within one step (its finished chunks kept); the shot goes back to
        the head of the queue and generates from its first chunk not done when the run is resumed."""
        if self._phase in (RunPhase.IDLE, RunPhase.PAUSED) or self._stop is not None or self._pausing:
            return
        self._pausing = True
        if self._phase is RunPhase.RUNNING:
            self.worker.cancel(self._job.job_id)
            self._emit_progress()  # "Pausing after this step…"
        elif self._phase is RunPhase.LOADING:
            self._hold()
        # PLANNING: the plan's delivery holds the run; DRAINING: the end of the draining does

    def resume_paused(self) -> None:
        if self._phase is RunPhase.PAUSED:
            self._pausing = False
            self._when_model_ready()

    def is_paused(self) -> bool:
        return self._phase is RunPhase.PAUSED

    def _hold(self) -> None:
        if self._shot[0]:
            self._queue.insert(0, (self._shot[0], None))
            self._mark_queued(self._session.document.project, self._shot[0], None)
        self._shot = ("", "")
        self._set_busy([])
        self._enter(RunPhase.PAUSED)
