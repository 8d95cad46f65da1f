"""SideBySide: two takes of one shot next to each other in the player area, frame-locked.

    compare = SideBySide(player)
    compare.set_session(session)
    compare.show_takes(shot_id, take_id)   # take B beside the player's picture (A)
    compare.leave()                        # or Esc outside a text field, or the takes view's button again

The player goes on showing what it shows — the active path, or the take the takes view previews —
and that is "A". Beside its picture a second FrameView shows take "B" of the same shot: it has a
FrameStore of its own, one slot per storyboard chunk up to the end of the compared shot, filled only
for that shot's chunks with B's results (decoded in the background by a FrameLoader, the chunks
nearest the playhead first, within FRAME_BUDGET). B follows the player's frameChanged, so play,
scrub, J/K/L, frame and chunk steps move both pictures to the same frame. Each picture is labelled
("A · Take 3", "B · Take 1 (active)"). A shot or take that goes away (deleted, undone, another
project) ends the comparison.

Esc leaves while no text field has the keyboard (the event filter on the main window runs before
the window's Esc shortcut, Stop Generating, so the first Esc leaves the comparison and the next one
stops a run).
"""

from __future__ import annotations


import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QWidget

from magi_engine.config import CHUNK_FRAMES
from magi_studio.document.model import resolve_take, shot_frame_range
from magi_studio.keyboard import is_text_field
from magi_studio.player.frame_loader import FrameLoader
from magi_studio.player.frame_store import FrameStore, SlotState
from magi_studio.player.frame_view import FrameView
from magi_studio.timeline.player_sync import decode_requests, slots_near_playhead


class SideBySide(QObject):
    #: Decoded frames of take B kept in memory, in bytes: the chunks nearest the playhead, at least one.
    FRAME_BUDGET = 256 * 1024 * 1024

    #: True when a comparison starts, False when it ends.
    changed = Signal(bool)

    def __init__(self, player, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.player = player
        self.session = None
        self.shot_id = self.take_id = ""
        self.store = FrameStore(parent=self)
        self.view = FrameView(player)  # the player's child (hidden until shown beside its picture): never a window
        self.view.hide()
        self.view.setObjectName("SideBySideView")
        self.view.set_empty_text("Nothing to compare", "This take has no chunks here.")
        self.view.set_chunk_namer(player.chunk_name)
        self.loader = FrameLoader(self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self._shown: list[str | None] = []  # B's result id per slot (None: a hole)
        self._connections: list = []
        player.frameChanged.connect(self._follow)
        player.chunkChanged.connect(lambda chunk: self._schedule())

    @property
    def active(self) -> bool:
        return bool(self.take_id)

    def shutdown(self) -> None:
        self.loader.shutdown()

    def watch(self, window: QWidget) -> None:
        """Let Esc in `window` (outside text fields) leave the comparison."""
        window.installEventFilter(self)

    def set_session(self, session) -> None:
        self.leave()
        for signal, slot in self._connections:
            signal.disconnect(slot)
        self._connections = []
        self.session = session
        if session is not None:
            for signal, slot in ((session.changed, self._refresh), (session.previewTakeChanged, self._label),
                                 (session.storeChanged, self._refresh)):
                signal.connect(slot)
                self._connections.append((signal, slot))

    # Entering and leaving ---------------------------------------------------------------------
    def show_takes(self, shot_id: str, take_id: str) -> bool:
        """Show take `take_id` of shot `shot_id` beside the player's picture (False: no such take)."""
        shot = self._shot(shot_id)
        if shot is None or shot.find_take(take_id) is None:
            return False
        was_active = self.active
        if (shot_id, take_id) != (self.shot_id, self.take_id):
            self._forget()
        self.shot_id, self.take_id = shot_id, take_id
        self.player.set_side_view(self.view)
        self._refresh()
        if not was_active:
            self.changed.emit(True)
        return True

    def leave(self) -> None:
        if not self.active:
            return
        self.shot_id = self.take_id = ""
        self._forget()
        self.player.set_side_view(None)
        self.player.view.set_caption("")
        self.changed.emit(False)

    def _forget(self) -> None:
        self.loader.want([])
        self._shown = []
        self.store.clear()
        self.store.set_chunk_count(0)

    # Redrawing --------------------------------------------------------------------------------
    def _shot(self, shot_id: str):
        project = self.session.project if self.session is not None else None
        return project.find_shot(shot_id) if project is not None else None

    def _refresh(self, *_args) -> None:
        if not self.active:
            return
        shot = self._shot(self.shot_id)
        if shot is None or shot.find_take(self.take_id) is None:
            self.leave()  # the shot or the take is gone (deleted, undone, another project)
            return
        project = self.session.project
        first, stop = shot_frame_range(project, shot.id)
        start = first // CHUNK_FRAMES
        path = [r if r in project.results and r not in project.damaged else None
                for r in resolve_take(shot, self.take_id)]
        ids = [None] * start + path
        store = self.store
        store.set_frame_size(project.settings.width, project.settings.height)
        store.set_chunk_count(stop // CHUNK_FRAMES)
        shown = self._shown + [None] * (len(ids) - len(self._shown))
        for position, result_id in enumerate(ids):
            if shown[position] == result_id and (result_id is None or store.state(position) != SlotState.EMPTY):
                continue
            if result_id is None:
                store.clear_chunk(position)
            else:
                store.set_loading(position)
            shown[position] = result_id
        self._shown = shown[:len(ids)]
        self._label()
        self._schedule()
        self._follow(self.player.current_frame)

    def _label(self, *_args) -> None:
        if not self.active:
            return
        shot = self._shot(self.shot_id)
        preview_shot, preview_take = self.session.preview_take
        shown_a = preview_take if preview_shot == shot.id else shot.active_take_id
        self.player.view.set_caption(self._caption("A", shot, shown_a))
        self.view.set_caption(self._caption("B", shot, self.take_id))

    @staticmethod
    def _caption(letter: str, shot, take_id: str | None) -> str:
        take = shot.find_take(take_id)
        if take is None:
            return f"{letter} · no take"
        return f"{letter} · {take.name}" + (" (active)" if take.id == shot.active_take_id else "")

    def _follow(self, frame: int) -> None:
        """Show take B at the player's frame (the frame lock)."""
        if not self.active:
            return
        store = self.store
        image = store.frame_image(frame) if 0 <= frame < store.frame_count else None
        if image is None:
            self.view.set_empty_text("Outside the compared shot", "Take B covers only its own shot's chunks.")
        self.view.set_frame(image, store.frame_size)

    # Background decoding ----------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self.active:
            return
        store, project = self.store, self.session.project
        kept, far = slots_near_playhead(self._shown, self.player.current_chunk, project.settings,
                                        self.FRAME_BUDGET)
        for position in far:
            if store.state(position) == SlotState.FRAMES:
                store.set_loading(position)  # far from the playhead: decoded again when it nears
        self.loader.want(decode_requests(kept, self._shown, store, self.session))

    def _on_loaded(self, result_id: str, frames: np.ndarray) -> None:
        for position, shown in enumerate(self._shown):
            if shown == result_id and self.store.state(position) == SlotState.LOADING:
                self.store.set_frames(position, frames)
        self._follow(self.player.current_frame)

    def _on_failed(self, result_id: str, error: Exception) -> None:
        for position, shown in enumerate(self._shown):
            if shown == result_id:
                self.store.set_unreadable(position)
        self._follow(self.player.current_frame)

    # Esc ---------------------------------------------------------------------------------------
    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if (self.active and kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
                and event.key() == Qt.Key.Key_Escape and not event.modifiers()
                and not is_text_field(QApplication.focusWidget())):
            event.accept()  # on ShortcutOverride: Esc is ours now, not Stop Generating's
            self.leave()
            return True
        return False
