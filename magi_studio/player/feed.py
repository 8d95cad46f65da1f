"""GenerationFeed: passes one generation job's previews and chunks on to the player as its events arrive.

    feed = GenerationFeed(worker, player_sync, job_id, slot_of=job.chunk_id)   # the app: by chunk id
    feed = GenerationFeed(worker, player.store, job_id, chunk_offset=2)        # a bare job: by slot index

The feed writes nothing itself: its target does. In the app the target is PlayerSync, the player's one
writer, and `slot_of` names each engine chunk by its chunk id, so a chunk lands where that chunk is in
the storyboard when it arrives (an edit to an earlier shot during the run moves it with its chunk). A
job with no document behind it (tests, benchmarks) feeds a FrameStore directly, engine chunk i at slot
`chunk_offset + i`. Live previews go into the chunks being denoised; each ChunkFinished replaces its
preview with the chunk's frames. When the job ends (finished, cancelled or failed) the previews still
showing are cleared, so a cancelled chunk falls back to what it was before (a hole, or its previous
take), and the feed disconnects itself.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from magi_engine.events import Cancelled, ChunkFinished, Failed, Finished, StepProgress


class GenerationFeed(QObject):
    #: (slot: the target's key, a chunk id or a slot index) after a chunk's frames were passed on.
    chunkStored = Signal(object)
    #: The job ended and the feed let go of its target.
    done = Signal()

    def __init__(self, worker, target, job_id: int, chunk_offset: int = 0, previews: bool = True, *,
                 slot_of: Callable[[int], object] | None = None, parent: QObject | None = None) -> None:
        """`target` has set_preview(slot, preview, progress), set_frames(slot, frames) and clear_preview(slot);
        `slot_of(engine chunk)` is its slot (None: not one to show), `chunk_offset + chunk` when not given."""
        # Owned by the target unless told otherwise: a feed nobody references must not be collected mid-job.
        super().__init__(parent if parent is not None else target)
        self.worker, self.target, self.job_id = worker, target, job_id
        self.slot_of = slot_of if slot_of is not None else (lambda chunk: chunk_offset + chunk)
        self.previews = previews
        self._previewing: set = set()
        self._connected = True
        worker.event.connect(self._on_event)

    def _on_event(self, job_id: int, event) -> None:
        if job_id != self.job_id:
            return
        if isinstance(event, StepProgress):
            self._on_step(event)
        elif isinstance(event, ChunkFinished):
            self._on_chunk_finished(event)
        elif isinstance(event, (Finished, Cancelled, Failed)):  # the job's last event
            self._on_job_ended()

    def _on_step(self, event: StepProgress) -> None:
        if not self.previews or not event.previews:
            return
        for chunk, preview in event.previews.items():
            if (slot := self.slot_of(chunk)) is None:
                continue
            progress = event.chunk_steps.get(chunk, 0) / max(1, event.steps_per_chunk)
            self.target.set_preview(slot, preview, progress)
            self._previewing.add(slot)

    def _on_chunk_finished(self, event: ChunkFinished) -> None:
        if event.frames is None or (slot := self.slot_of(event.chunk)) is None:
            return
        self.target.set_frames(slot, event.frames)
        self._previewing.discard(slot)
        self.chunkStored.emit(slot)

    def _on_job_ended(self) -> None:
        for slot in self._previewing:
            self.target.clear_preview(slot)
        self._previewing.clear()
        if self._connected:
            self._connected = False
            self.worker.event.disconnect(self._on_event)
        self.done.emit()
        self.deleteLater()
