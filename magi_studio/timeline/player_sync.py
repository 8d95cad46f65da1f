"""PlayerSync: the preview player shows the document's active path, and its playhead follows the selection.

    sync = PlayerSync(player, timeline)
    sync.set_session(session)
    sync.remember_frames(result.id, event.frames)   # optional: frames the controller already holds

Whenever the document changes (an edit, a finished chunk, another active take) or a take is
previewed, the player's FrameStore gets one slot per storyboard chunk, up to the last one generated,
holding the frames of that chunk's result on the active path — done and stale results alike, never
generated again, read with store.read_frames — or a hole. Slots whose result did not change are left alone, and frames already
in memory move with their result when chunks are inserted, deleted or moved, so an edit costs no
decoding. The player's current chunk and the session's selected chunk follow each other, and the
timeline's playhead follows the player's frame.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject

from magi_studio.document.model import active_path, resolve_take, storyboard_chunks
from magi_studio.player.frame_store import ChunkState

log = logging.getLogger(__name__)


class PlayerSync(QObject):
    def __init__(self, player, timeline=None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.player, self.timeline, self.session = player, timeline, None
        self._connections: list = []
        self._shown: list[str | None] = []  # result id per FrameStore slot, as last filled
        self._handed: dict[str, np.ndarray] = {}
        self._seeking = False
        player.chunkChanged.connect(self._on_player_chunk)
        if timeline is not None:
            player.frameChanged.connect(timeline.set_playhead)
            player.store.layoutChanged.connect(self._show_playhead)

    def _show_playhead(self) -> None:
        # The generation feed can add the first frames before any document change: show the playhead then.
        self.timeline.set_playhead(self.player.current_frame if self.player.frame_count else None)

    def set_session(self, session) -> None:
        for signal, slot in self._connections:
            signal.disconnect(slot)
        self._connections = []
        self.session = session
        self._shown = []
        self._handed.clear()
        self.player.store.clear()
        if session is None:
            self.player.store.set_chunk_count(0)
            return
        for signal, slot in ((session.changed, self.refresh), (session.previewTakeChanged, self._on_preview),
                             (session.selectionChanged, self._on_selection), (session.storeChanged, self.refresh)):
            signal.connect(slot)
            self._connections.append((signal, slot))
        self.refresh()
        self._on_selection(session.selected_shot_id, session.selected_chunk_id)

    def remember_frames(self, result_id: str, frames: np.ndarray) -> None:
        """Frames of a result about to be committed (the controller has them from ChunkFinished): used
        instead of decoding the result's files again when it lands on the active path."""
        self._handed[result_id] = frames

    def shown_results(self) -> list[str | None]:
        """The result id shown in each chunk slot of the player (None: a hole)."""
        return list(self._shown)

    # Frames -----------------------------------------------------------------------------------
    def path_results(self) -> list[str | None]:
        """The result of every storyboard chunk: the active path, or the previewed take for its shot."""
        project = self.session.project
        preview_shot, preview_take = self.session.preview_take
        ids: list[str | None] = []
        for shot in project.shots:
            path = resolve_take(shot, preview_take) if shot.id == preview_shot else active_path(shot)
            ids += [rid if rid in project.results else None for rid in path]
        return ids

    def refresh(self) -> None:
        if self.session is None:
            return
        project, store = self.session.project, self.player.store
        if self.player.fps != project.settings.fps:
            self.player.set_fps(project.settings.fps)
        ids = self.path_results()
        held = {rid: store.frames(p) for p, rid in enumerate(self._shown)
                if rid is not None and p < store.chunk_count and store.frames(p) is not None}
        if not held:  # holes are drawn at the project's aspect ratio until frames arrive
            store.set_frame_size(project.settings.width, project.settings.height)
        store.set_chunk_count(self._slots_needed(ids))
        shown = list(self._shown[:store.chunk_count]) + [None] * max(0, store.chunk_count - len(self._shown))
        for position, result_id in enumerate(ids[:store.chunk_count]):
            if shown[position] == result_id:
                continue  # unchanged (a slot the generation feed just filled is left to it as well)
            frames = self._frames_for(result_id, held) if result_id is not None else None
            if frames is not None:
                store.set_frames(position, frames)
            elif store.state(position) != ChunkState.EMPTY:
                store.clear_chunk(position)
            shown[position] = result_id if frames is not None else None
        self._shown = shown
        # Handed frames serve the refresh that commits their result; one that landed off the shown path
        # (another take previewed meanwhile) is read from its file when it is shown: memory is not held.
        self._handed = {rid: f for rid, f in self._handed.items() if rid not in project.results}
        if self.timeline is not None:  # no playhead over the cards while there is nothing to play
            self._show_playhead()
        if not self.player.is_playing():  # a chunk selected before it had frames: the playhead goes there now
            self._on_selection(self.session.selected_shot_id, self.session.selected_chunk_id)

    def _slots_needed(self, ids: list[str | None]) -> int:
        """Slots up to the last chunk with something to show: trailing chunks not generated yet are left
        out (a new storyboard has nothing to play), holes between generated chunks stay. A slot the
        generation feed is filling (a live preview, or frames not committed yet) is kept too."""
        store, needed = self.player.store, next((i + 1 for i in reversed(range(len(ids))) if ids[i]), 0)
        for position in range(needed, min(store.chunk_count, len(ids))):
            state = store.state(position)
            ours = position < len(self._shown) and self._shown[position] is not None
            if state == ChunkState.PREVIEW or (state == ChunkState.FRAMES and not ours):
                needed = position + 1
        return needed

    def _frames_for(self, result_id: str, held: dict) -> np.ndarray | None:
        if result_id in held:
            return held[result_id]
        if result_id in self._handed:
            return self._handed.pop(result_id)
        result = self.session.project.results[result_id]
        try:
            return self.session.store.read_frames(result)
        except Exception as error:  # a damaged or missing file: say so once, show a hole
            log.warning("could not read the frames of result %s: %s", result_id, error)
            self.session.report_error(error)
            return None

    def _on_preview(self, *_ids) -> None:
        self.refresh()

    # Playhead and selection -------------------------------------------------------------------
    def _on_player_chunk(self, position: int) -> None:
        if self._seeking or self.session is None:
            return
        refs = storyboard_chunks(self.session.project)
        if 0 <= position < len(refs):
            self.session.select(refs[position].shot_id, refs[position].chunk_id)

    def _on_selection(self, shot_id: str, chunk_id: str) -> None:
        refs = storyboard_chunks(self.session.project) if self.session else []
        position = next((r.position for r in refs if r.chunk_id == chunk_id), None)
        if position is None or self.player.current_chunk == position or position >= self.player.store.chunk_count:
            return  # already there (never yank a playing playhead back), or nothing generated there yet
        self._seeking = True
        try:
            self.player.seek_chunk(position)
        finally:
            self._seeking = False
