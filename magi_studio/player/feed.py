"""GenerationFeed: paints one generation job into a FrameStore as its events arrive.

    feed = GenerationFeed(worker, player.store, job_id, chunk_offset=shot_start)

Live previews go into the chunks being denoised; each ChunkFinished replaces its preview with the
chunk's frames the moment it arrives. Engine chunk indices count from the start of the shot;
`chunk_offset` places the shot on the timeline. When the job ends (finished, cancelled or failed)
the previews still showing are cleared, so a cancelled chunk falls back to what it was before
(a hole, or its previous take), and the feed disconnects itself.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engine.events import Cancelled, ChunkFinished, Failed, Finished, StepProgress
from magi_studio.player.frame_store import FrameStore


class GenerationFeed(QObject):
    #: (timeline chunk index) after a chunk's frames were stored.
    chunkStored = Signal(int)
    #: The job ended and the feed let go of the store.
    done = Signal()

    def __init__(self, worker, store: FrameStore, job_id: int, chunk_offset: int = 0,
                 previews: bool = True, parent: QObject | None = None) -> None:
        # Owned by the store unless told otherwise: a feed nobody references must not be collected mid-job.
        super().__init__(parent if parent is not None else store)
        self.worker, self.store, self.job_id, self.offset = worker, store, job_id, chunk_offset
        self.previews = previews
        self._previewing: set[int] = set()
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
            progress = event.chunk_steps.get(chunk, 0) / max(1, event.steps_per_chunk)
            self.store.set_preview(self.offset + chunk, preview, progress)
            self._previewing.add(self.offset + chunk)

    def _on_chunk_finished(self, event: ChunkFinished) -> None:
        if event.frames is None:
            return
        index = self.offset + event.chunk
        self.store.set_frames(index, event.frames)
        self._previewing.discard(index)
        self.chunkStored.emit(index)

    def _on_job_ended(self) -> None:
        for index in sorted(self._previewing):
            self.store.clear_preview(index)
        self._previewing.clear()
        if self._connected:
            self._connected = False
            self.worker.event.disconnect(self._on_event)
        self.done.emit()
        self.deleteLater()
