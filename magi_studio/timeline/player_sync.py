"""PlayerSync: the preview player shows the document's active path, and its playhead follows the selection.

    sync = PlayerSync(player, timeline)
    sync.set_session(session)
    sync.remember_frames(result.id, event.frames)   # optional: frames the controller already holds
    sync.set_preview(chunk_id, preview, 0.5); sync.set_frames(chunk_id, frames)   # a run's (GenerationFeed)

PlayerSync is the one writer of the player's FrameStore: the document's chunks and a running job's
previews and finished frames alike are placed by chunk id, in the slot where that chunk is now, so an
edit during a run (a chunk added to an earlier shot) moves the run's frames with their chunk.

Whenever the document changes (an edit, a finished chunk, another active take) or a take is
previewed, the player's FrameStore gets one slot per storyboard chunk, up to the last one generated,
holding the frames of that chunk's result on the active path — done and stale results alike, never
generated again — or a hole. Slots whose result did not change are left alone, and frames already
in memory move with their result when chunks are inserted, deleted or moved, so an edit costs no
decoding.

Frames not in memory are never decoded on the GUI thread (~10 ms a chunk at 128 px, far more at 720p:
a 60-chunk take would freeze the window): their slots show as loading at once — with the card's
thumbnail as a dimmed poster when the timeline has one — and a FrameLoader decodes them in the
background, the chunk under the playhead first, then outwards. Decoded frames come back tagged with
their result id; frames of a result no longer shown (another take was picked meanwhile) are dropped.
Memory is bounded: only the FRAME_BUDGET bytes of chunks nearest the playhead are kept, the others go
back to loading and are decoded again when the playhead nears them.

A result the project marked damaged when it opened (Project.damaged: its files are missing, linked or
broken; the project said so once) is shown as a hole at once and never read: reading it would only
report the same damage again. Any other result whose file cannot be read is reported (the error banner)
and shown as a hole that says so. It is read again only when the user asks to see its chunk again — the
playhead is moved into it by a seek, step or scrub, its card is selected, or its hole in the player is clicked
— once per such request and never during playback, so a damaged file costs no retry loop; a file repaired (or a disk
back) meanwhile then shows without reopening the project.

The player's current chunk and the session's selected chunk follow each other, and the timeline's
playhead follows the player's frame.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QPixmap

from magi_engine.config import CHUNK_FRAMES
from magi_studio.document.model import active_path, resolve_take, storyboard_chunks
from magi_studio.player.frame_loader import FrameLoader
from magi_studio.player.frame_store import SlotState
from magi_studio.player.marks import ShotSpan

log = logging.getLogger(__name__)


@dataclass
class _RunFrames:
    """What a running job put in a chunk's slot that the document does not show yet."""

    preview: np.ndarray | None = None
    progress: float | None = None
    #: Finished frames not committed yet: they give way when the chunk's result on the path changes.
    frames: np.ndarray | None = None
    #: The result shown for the chunk when `frames` came.
    under: str | None = None


def slots_near_playhead(shown: list, current: int, settings, budget: int) -> tuple[list[int], list[int]]:
    """The slots with a result (``shown[p]`` not None) split into those to keep decoded and those beyond
    the memory budget: nearest the playhead's chunk first, then outwards, ahead before behind; at least one
    is kept. Shared by the player and the side-by-side view, which keep frames by the same rule."""
    ours = sorted((p for p, result_id in enumerate(shown) if result_id is not None),
                  key=lambda p: (abs(p - current), p < current))
    chunk_bytes = CHUNK_FRAMES * settings.width * settings.height * 3
    count = max(1, budget // max(1, chunk_bytes))
    return ours[:count], ours[count:]



def decode_requests(positions: list[int], shown: list, frame_store, session) -> list:
    """The loader's requests for the slots at `positions` still waiting for frames, one per result (a
    result shown in two slots is decoded once). The store and result are bound now: the loader's worker
    never touches the document."""
    requests, asked = [], set()
    for position in positions:
        result_id = shown[position]
        if frame_store.state(position) == SlotState.LOADING and result_id not in asked:
            asked.add(result_id)
            requests.append((result_id, functools.partial(session.store.read_frames,
                                                          session.project.results[result_id])))
    return requests

class PlayerSync(QObject):
    #: Decoded frames kept in memory, in bytes (~14 chunks at 720x720, ~430 at 128 px): chunks nearest the
    #: playhead are kept, at least one however large.
    FRAME_BUDGET = 512 * 1024 * 1024

    def __init__(self, player, timeline=None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.player, self.timeline, self.session = player, timeline, None
        self._connections: list = []
        self._shown: list[str | None] = []  # result id per FrameStore slot, as last filled or being loaded
        self._handed: dict[str, np.ndarray] = {}
        self._failed: set[str] = set()  # results whose files could not be read: holes until the user asks again
        self._run: dict[str, _RunFrames] = {}  # chunk id -> what a running job put there
        self._run_at: dict[int, str] = {}  # slot -> the chunk id whose run frames it shows
        self._seeking = False    # the player moves because the selection did: not a request of its own
        self._following = False  # the selection moves because the playhead did: not a request of its own
        self.loader = FrameLoader(self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        player.chunkChanged.connect(self._on_player_chunk)
        player.view.retryRequested.connect(self._read_again)  # a click on the hole of an unreadable chunk
        if timeline is not None:
            player.frameChanged.connect(timeline.set_playhead)
            timeline.chunkClicked.connect(self._on_chunk_clicked)
            player.store.layoutChanged.connect(self._show_playhead)

    def shutdown(self) -> None:
        """The window closes: stop decoding frames for it (a decode in progress is waited for, briefly)."""
        self.loader.shutdown()

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
        self._failed.clear()
        self._run.clear()
        self._run_at.clear()
        self.loader.want([])  # a decode still running for the old session is dropped when it lands
        self.player.store.clear()
        if session is None:
            self.player.store.set_chunk_count(0)
            self.player.set_shots(())
            return
        for signal, slot in ((session.changed, self.refresh), (session.previewTakeChanged, self._on_preview),
                             (session.selectionChanged, self._on_selection), (session.storeChanged, self.refresh)):
            signal.connect(slot)
            self._connections.append((signal, slot))
        self.refresh()
        self._follow_selection(session.selected_chunk_id)

    def remember_frames(self, result_id: str, frames: np.ndarray) -> None:
        """Frames of a result about to be committed (the controller has them from ChunkFinished): used
        instead of decoding the result's files again when it lands on the active path."""
        self._handed[result_id] = frames

    def shown_results(self) -> list[str | None]:
        """The result id shown (or loading) in each chunk slot of the player (None: a hole)."""
        return list(self._shown)

    def loading(self) -> list[int]:
        """The chunk slots whose frames are not in memory yet (decoding, or dropped to bound memory)."""
        store = self.player.store
        return [p for p in range(store.chunk_count) if store.state(p) == SlotState.LOADING]

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
        self.player.set_shots(shot_spans(project))  # shot boundaries, and chunks named as the cards number them
        ids = self.path_results()
        chunk_ids = [ref.chunk_id for ref in storyboard_chunks(project)]
        runs = self._run_positions(chunk_ids, ids)
        # Frames in memory move with their result; anything else is decoded in the background.
        held = {rid: store.frames(p) for p, rid in enumerate(self._shown)
                if rid is not None and p < store.chunk_count and store.frames(p) is not None
                and p not in self._run_at}
        if not held:  # holes are drawn at the project's aspect ratio until frames arrive
            store.set_frame_size(project.settings.width, project.settings.height)
        store.set_chunk_count(max(self._slots_needed(ids), max(runs.values(), default=-1) + 1))
        shown = list(self._shown[:store.chunk_count]) + [None] * max(0, store.chunk_count - len(self._shown))
        rewrite = {p for p, chunk_id in self._run_at.items() if runs.get(chunk_id) != p and p < store.chunk_count}
        for position in rewrite:  # it showed a run's frames of a chunk now elsewhere (or done): its own again
            store.clear_preview(position)
            shown[position] = _REWRITE
        for position, result_id in enumerate(ids[:store.chunk_count]):
            if shown[position] == result_id:
                continue  # unchanged (a slot showing a run's frames is left to them as well)
            rewrite.add(position)
            frames = held.get(result_id) if result_id is not None else None
            if frames is None and result_id is not None:
                frames = self._handed.pop(result_id, None)
            if frames is not None:
                store.set_frames(position, frames)
            elif result_id is not None and result_id not in self._failed and result_id not in project.damaged:
                store.set_loading(position, self._poster(result_id))
            else:
                if result_id is not None:  # its file could not be read, or is known damaged: a hole that says so
                    store.set_unreadable(position)
                elif store.state(position) != SlotState.EMPTY:
                    store.clear_chunk(position)
                result_id = None
            shown[position] = result_id
        self._shown = shown
        placed = {chunk_id: p for p, chunk_id in self._run_at.items()}
        self._run_at = {}
        for chunk_id, position in runs.items():  # a run's frames over the slot of their chunk, where it is now
            if placed.get(chunk_id) != position or position in rewrite:
                self._write_run(chunk_id, position)
            self._run_at[position] = chunk_id
        self._schedule()
        # Handed frames serve the refresh that commits their result; one that landed off the shown path
        # (another take previewed meanwhile) is read from its file when it is shown: memory is not held.
        self._handed = {rid: f for rid, f in self._handed.items() if rid not in project.results}
        if self.timeline is not None:  # no playhead over the cards while there is nothing to play
            self._show_playhead()
        if not self.player.is_playing():  # a chunk selected before it had frames: the playhead goes there now
            self._follow_selection(self.session.selected_chunk_id)

    @staticmethod
    def _slots_needed(ids: list[str | None]) -> int:
        """Slots up to the last chunk with something to show: trailing chunks not generated yet are left
        out (a new storyboard has nothing to play), holes between generated chunks stay."""
        return next((i + 1 for i in reversed(range(len(ids))) if ids[i]), 0)

    # A running job's frames (GenerationFeed) --------------------------------------------------
    def set_preview(self, chunk_id: str, preview: np.ndarray, progress: float | None = None) -> None:
        """A live preview of chunk `chunk_id` being denoised, over whatever its slot shows."""
        run = self._run.setdefault(chunk_id, _RunFrames())
        run.preview, run.progress = preview, progress
        self._place_run(chunk_id)

    def set_frames(self, chunk_id: str, frames: np.ndarray) -> None:
        """Chunk `chunk_id`'s finished frames, shown until its result enters the document."""
        position = self._position(chunk_id)
        run = self._run.setdefault(chunk_id, _RunFrames())
        run.preview = run.progress = None
        run.frames = frames
        run.under = self._shown[position] if position is not None and position < len(self._shown) else None
        self._place_run(chunk_id)

    def clear_preview(self, chunk_id: str) -> None:
        """The job ended: chunk `chunk_id`'s preview goes, and what was under it shows again."""
        run = self._run.get(chunk_id)
        if run is None or run.preview is None:
            return
        run.preview = run.progress = None
        if run.frames is None:
            del self._run[chunk_id]
        position = next((p for p, c in self._run_at.items() if c == chunk_id), None)
        if position is not None and position < self.player.store.chunk_count:
            self.player.store.clear_preview(position)
            if run.frames is None:
                del self._run_at[position]

    def _place_run(self, chunk_id: str) -> None:
        if self.session is None:
            self._run.pop(chunk_id, None)
            return
        position = self._position(chunk_id)
        if position is None:  # the chunk was deleted during the run: nothing to show
            self._run.pop(chunk_id, None)
            return
        if self._run_at.get(position) != chunk_id:
            self.refresh()  # the slot is laid out anew (and the store grows to it), the run's frames included
        else:
            self._write_run(chunk_id, position)

    def _run_positions(self, chunk_ids: list[str], ids: list[str | None]) -> dict[str, int]:
        """Where each chunk with run frames is now; run frames of a deleted chunk, or finished frames whose
        chunk has its (new) result on the path now, are dropped."""
        where = {chunk_id: p for p, chunk_id in enumerate(chunk_ids)}
        positions = {}
        for chunk_id, run in list(self._run.items()):
            position = where.get(chunk_id)
            if run.frames is not None and (position is None or ids[position] != run.under):
                run.frames = None
            if position is None or (run.frames is None and run.preview is None):
                del self._run[chunk_id]
            else:
                positions[chunk_id] = position
        return positions

    def _write_run(self, chunk_id: str, position: int) -> None:
        run, store = self._run[chunk_id], self.player.store
        if run.frames is not None:
            store.set_frames(position, run.frames)
        if run.preview is not None:
            store.set_preview(position, run.preview, run.progress)
        self._run_at[position] = chunk_id

    # Background decoding ----------------------------------------------------------------------
    def _schedule(self) -> None:
        """Ask the loader for the loading slots nearest the playhead (that one first, then outwards, ahead
        before behind), within the memory budget; frames beyond it go back to loading."""
        store, project = self.player.store, self.session.project
        kept, far = slots_near_playhead(self._shown[:store.chunk_count], self.player.current_chunk,
                                        project.settings, self.FRAME_BUDGET)
        for position in far:
            # far from the playhead: decoded again when it nears (a run's frames stay)
            if store.state(position) == SlotState.FRAMES and position not in self._run_at:
                store.set_loading(position, self._poster(self._shown[position]))
        self.loader.want(decode_requests(kept, self._shown, store, self.session))

    def _on_loaded(self, result_id: str, frames: np.ndarray) -> None:
        # Only slots still waiting for this very result take the frames: a late decode for a take no
        # longer shown, or for a slot the generation feed has filled since, is dropped.
        store = self.player.store
        for position, shown in enumerate(self._shown):
            if shown == result_id and position < store.chunk_count and store.state(position) == SlotState.LOADING:
                store.set_frames(position, frames)

    def _poster(self, result_id: str) -> QPixmap | None:
        # The card's thumbnail, already read for the timeline: the chunk's picture while its frames decode.
        return self.timeline.thumbnail(result_id) if self.timeline is not None else None

    def _on_load_failed(self, result_id: str, error: Exception) -> None:
        if self.session is None or result_id not in self._shown:
            return
        log.warning("could not read the frames of result %s: %s", result_id, error)
        self._failed.add(result_id)  # a damaged or missing file: say so (the banner stays), show a hole
        self.session.report_error(error)
        for position, shown in enumerate(self._shown):
            if shown == result_id:
                self._shown[position] = None
                if position < self.player.store.chunk_count:
                    self.player.store.set_unreadable(position)

    def _on_preview(self, *_ids) -> None:
        self.refresh()

    def _read_again(self, position: int) -> None:
        """The user asks to see chunk `position`: if its result could not be read, try once more."""
        ids = self.path_results() if self._failed else []
        if 0 <= position < len(ids) and ids[position] in self._failed:
            log.info("reading the frames of result %s again", ids[position])
            self._failed.discard(ids[position])
            self.refresh()  # the slot shows as loading and is decoded first (it is under the playhead)

    # Playhead and selection -------------------------------------------------------------------
    def _on_player_chunk(self, position: int) -> None:
        if self.session is None:
            return
        self._schedule()  # the playhead moved: decode around it first, keep memory near it
        if self._seeking:
            return
        refs = storyboard_chunks(self.session.project)
        if 0 <= position < len(refs):
            self._following = True
            try:
                self.session.select(refs[position].shot_id, refs[position].chunk_id)
            finally:
                self._following = False
        # A seek, step or scrub into the chunk (after the selection followed, or the refresh would move the
        # playhead back to the old one); playback's clock never retries.
        if not self.player.is_playing():
            self._read_again(position)

    def _on_selection(self, shot_id: str, chunk_id: str) -> None:
        if self._following:
            return  # the playhead moved there itself
        self._follow_selection(chunk_id)
        position = self._position(chunk_id)
        if position is not None:  # the user picked this chunk: after the seek, so it is decoded first
            self._read_again(position)

    def _on_chunk_clicked(self, chunk_id: str) -> None:
        # A click on the card already selected changes no selection, yet it is the user asking for it.
        position = self._position(chunk_id)
        if self.session is not None and position is not None:
            self._read_again(position)

    def _position(self, chunk_id: str) -> int | None:
        # Counted, not looked up in storyboard_chunks: asked on every engine step, and building 120 ChunkRefs
        # each time was a millisecond of the GUI thread.
        position = 0
        for shot in self.session.project.shots if self.session else []:
            for chunk in shot.chunks:
                if chunk.id == chunk_id:
                    return position
                position += 1
        return None

    def _follow_selection(self, chunk_id: str) -> None:
        position = self._position(chunk_id)
        if position is None or self.player.current_chunk == position or position >= self.player.store.chunk_count:
            return  # already there (never yank a playing playhead back), or nothing generated there yet
        self._seeking = True
        try:
            self.player.seek_chunk(position)
        finally:
            self._seeking = False


_REWRITE = object()  # a slot whose result must be written again (it showed another chunk's run frames)


def shot_spans(project) -> list[ShotSpan]:
    """Each shot's name over its run of storyboard chunk positions."""
    spans, position = [], 0
    for shot in project.shots:
        spans.append(ShotSpan(shot.name, position, len(shot.chunks)))
        position += len(shot.chunks)
    return spans
