"""From the document to what the timeline shows: card and shot models, job states, image caches.

`TimelineModels` is the timeline's view state and nothing else: the transient job states the
generation controller sets (queued, denoising, failed — the document knows only empty, done and
stale), and caches of decoded thumbnails and reference images keyed by the immutable result or
asset id. Everything else is recomputed from the session on each redraw.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from magi_engine.config import CHUNK_FRAMES
from magi_studio.document.model import ChunkState, Shot, total_frames
from magi_studio.player.frame_store import SlotState
from magi_studio.timeline.shot_group import ShotModel
from magi_studio.timeline.style import DENOISING, JOB_STATES, time_text
from magi_studio.timeline.thumbnail import CardModel

REFERENCE_PREVIEW_SIZE = 320


class TimelineModels:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, float | None]] = {}
        self._results_seen: dict[str, str | None] = {}
        self._thumbs: dict[str, QPixmap | None] = {}
        self._references: dict[str, QPixmap | None] = {}

    def forget_images(self) -> None:
        """The store changed (another project or Save As): paths resolve elsewhere now."""
        self._thumbs.clear()
        self._references.clear()

    def reset(self) -> None:
        self.jobs.clear()
        self._results_seen.clear()
        self.forget_images()

    def set_job(self, chunk_id: str, state: str | None, progress: float | None) -> None:
        if state is None:
            self.jobs.pop(chunk_id, None)
        elif state not in JOB_STATES:
            raise ValueError(f"job state must be one of {JOB_STATES} or None, got {state!r}")
        else:
            self.jobs[chunk_id] = (state, None if progress is None else min(max(float(progress), 0.0), 1.0))

    def forget_chunks(self, alive: set[str]) -> None:
        for chunk_id in [c for c in self._results_seen if c not in alive]:
            del self._results_seen[chunk_id]

    # Models -----------------------------------------------------------------------------------
    def card(self, session, frame_store, shot: Shot, index: int, doc_state: ChunkState, result_id: str | None,
             position: int, draft: bool = False) -> CardModel:
        """The card of chunk `index`; `draft`: its result on the active take is a draft (model.TakeSpec.draft)."""
        project, chunk = session.project, shot.chunks[index]
        if result_id is not None and self._results_seen.get(chunk.id, result_id) != result_id:
            self.jobs.pop(chunk.id, None)  # a new result arrived: the job's transient state is over
        self._results_seen[chunk.id] = result_id
        state, progress = self.jobs.get(chunk.id, (doc_state.value, None))
        preview = _slot_picture(frame_store, position, SlotState.PREVIEW)
        if preview is not None and state not in JOB_STATES:
            state = DENOISING  # a live preview in the player means the engine is making this chunk now
        if state == DENOISING and progress is None and preview is not None:
            progress = frame_store.preview_progress(position)
        if state == DENOISING and progress == 1.0 and preview is None:
            # Finished, its result still being written: the frames the player has, not an empty 100% picture.
            preview = _slot_picture(frame_store, position, SlotState.FRAMES)
        fps, start = project.settings.fps, position * CHUNK_FRAMES
        image_start = index == 0 and shot.start == "image"
        reference = self._reference(session, shot) if image_start else None
        return CardModel(shot.id, chunk.id, index, shot.name,
                         f"{time_text(start, fps)}–{time_text(start + CHUNK_FRAMES, fps)}", chunk.prompt, chunk.seed,
                         chunk.seed_locked, state, progress, self.thumbnail(session, result_id), preview, reference,
                         awaiting_reference=image_start and reference is None, draft=draft and result_id is not None)

    @staticmethod
    def shot(session, shot: Shot, guidance: bool = True) -> ShotModel:
        take = shot.find_take(shot.active_take_id)
        take_text = f"{take.name} of {len(shot.takes)}" if take and len(shot.takes) > 1 else (take.name if take else "")
        preview_shot, preview_take = session.preview_take
        preview = shot.find_take(preview_take) if preview_shot == shot.id else None
        return ShotModel(shot.id, shot.name, shot.start, take_text, f"Previewing {preview.name}" if preview else "",
                         shot.id == session.selected_shot_id, shot.reference_asset_id is not None, shot.prompt,
                         shot.negative_prompt, guidance)

    @staticmethod
    def summary(project, states: dict) -> str:
        """"3 shots · 9 chunks · 0:09   —   5 done · 1 stale · 3 empty"."""
        counts = {state: sum(s.count(state) for s in states.values()) for state in ChunkState}
        chunks, shots = sum(counts.values()), len(project.shots)
        parts = [f"{shots} shot{'s' * (shots != 1)}", f"{chunks} chunk{'s' * (chunks != 1)}",
                 time_text(total_frames(project), project.settings.fps)]
        detail = [f"{counts[s]} {s.value}" for s in (ChunkState.DONE, ChunkState.STALE, ChunkState.DAMAGED,
                                                         ChunkState.EMPTY) if counts[s]]
        return " · ".join(parts) + ("   —   " + " · ".join(detail) if detail else "")

    # Images -----------------------------------------------------------------------------------
    def thumbnail(self, session, result_id: str | None) -> QPixmap | None:
        """A result's thumbnail, read once and cached (results never change); None when it has none."""
        if result_id is None:
            return None
        if result_id not in self._thumbs:
            result = session.project.results.get(result_id)
            path = session.store.thumbnail_path(result) if result and result.files.get("thumbnail") else None
            self._thumbs[result_id] = QPixmap(str(path)) if path is not None and path.is_file() else None
        return self._thumbs[result_id]

    def _reference(self, session, shot: Shot) -> QPixmap | None:
        asset = session.project.assets.get(shot.reference_asset_id) if shot.reference_asset_id else None
        if asset is None:
            return None
        if asset.id not in self._references:
            try:
                from magi_engine.video_io import load_image  # cv2: when a reference image is first shown

                rgb = load_image(session.store.asset_path(asset))
            except Exception:  # a missing or damaged file: the card shows its placeholder instead
                self._references[asset.id] = None
            else:
                image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
                image = image.scaled(REFERENCE_PREVIEW_SIZE, REFERENCE_PREVIEW_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)  # a copy: rgb may go now
                self._references[asset.id] = QPixmap.fromImage(image)
        return self._references[asset.id]


def _slot_picture(frame_store, position: int, state: SlotState) -> QImage | None:
    """The middle frame of the player's slot `position` when the slot holds `state` (a preview or frames)."""
    if frame_store is None or position >= frame_store.chunk_count or frame_store.state(position) != state:
        return None
    # A copy: the store's image is a view over frames it may drop before this card repaints.
    return frame_store.frame_image(position * CHUNK_FRAMES + CHUNK_FRAMES // 2).image.copy()
