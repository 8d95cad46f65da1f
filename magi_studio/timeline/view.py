"""TimelineView: the storyboard editor — shots as groups of chunk cards on a 24-frame grid.

    timeline = TimelineView()
    timeline.set_session(session)                   # redraws from session.project on every change
    timeline.set_frame_store(player.store)          # cards show the live preview while a chunk denoises
    timeline.set_job_state(chunk_id, "denoising", 0.4)   # the generation controller's transient states
    timeline.regenerateRequested.connect(controller.regenerate_from)

The view derives every card from the document (storyboard_states for empty/done/stale; active_path
for thumbnails) and keeps only view state: job states, image caches, widgets reused by id. Every
gesture — typing, clicks, keys, drags, drops, menus — becomes one command pushed through the
session (see edits.py for what each gesture means), so undo and redo restore it exactly.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from PySide6.QtCore import QCoreApplication, QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QDrag, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolBar, QVBoxLayout, QWidget
from shiboken6 import isValid

from magi_engine.text.words import model_vocabulary
from magi_studio.document.commands import RenameShot, SetPrompt, SetSeed, SetShotNegativePrompt, SetShotPrompt
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import TakeSpec, active_path, resolve_specs, storyboard_states
from magi_studio.document_session import DocumentSession
from magi_studio.timeline import edits, menus
from magi_studio.timeline.card import ChunkCard, card_size
from magi_studio.timeline.derive import TimelineModels
from magi_studio.timeline.editing import TimelineEditing
from magi_studio.timeline.overview import StoryboardOverview
from magi_studio.timeline.shot_group import ShotGroup
from magi_studio.timeline.strip import StoryboardScroll, StoryboardStrip, chunk_mime
from magi_studio.timeline.style import CARD_SPACING, DENOISING, TEXT_WIDTH, TIMELINE_QSS, thumb_width

#: The storyboard's zoom levels, widest first: (thumbnail width as a share of the aspect's, text column
#: width). The cards' height never changes, so zooming never moves the panels around the storyboard.
ZOOM_LEVELS = ((1.0, 320), (1.0, TEXT_WIDTH), (1.0, 0), (0.6, 0), (0.36, 0), (0.18, 0))
DEFAULT_ZOOM = 1
ZOOM_SETTLE_MS = 400
#: After a zoom (and its repaint), the pictures of the cards around the view at the neighbouring
#: levels are drawn ahead, a slice of at most PICTURES_AHEAD_SLICE_S per event-loop turn: never a stall.
PICTURES_AHEAD_DELAY_MS = 40
PICTURES_AHEAD_SLICE_S = 0.003


class TimelineView(QWidget, TimelineEditing):
    #: (shot id, chunk id): "Regenerate from here" — the generation controller implements it.
    regenerateRequested = Signal(str, str)
    #: (shot id): "Generate shot".
    generateShotRequested = Signal(str)
    #: (shot id, chunk id): "Generate from here" — keep the chunks before it, generate it and the rest.
    generateFromRequested = Signal(str, str)
    #: (shot id): the take chip was clicked: show that shot's takes.
    takesRequested = Signal(str)
    #: (chunk id): the user clicked a card, selected already or not (the player reads a chunk whose
    #: frames could not be read again on such a click; selection alone does not say it when unchanged).
    chunkClicked = Signal(str)
    #: (level): the cards were zoomed (0: widest; see ZOOM_LEVELS).
    zoomChanged = Signal(int)
    #: (level): the zoom has stayed at `level` for ZOOM_SETTLE_MS (what to remember: a Ctrl+wheel passes
    #: several levels in a second, and writing the settings file for each one stalled the window).
    zoomSettled = Signal(int)
    #: (folder): a reference image was chosen from this folder (where the dialog opens next, in later sessions too).
    imageFolderChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TimelineView")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet(TIMELINE_QSS)
        self.session: DocumentSession | None = None
        self.frame_store = None
        self._connections: list = []
        self._cards: dict[str, ChunkCard] = {}
        self._groups: dict[str, ShotGroup] = {}
        self._positions: list[str] = []  # chunk ids in playing order
        self.models = TimelineModels()
        #: Does the loaded model use guidance? (A distilled one cannot use a negative prompt.) True until known.
        self.uses_guidance = True
        self._thumb_width = thumb_width(128, 128)
        self.zoom_level = DEFAULT_ZOOM
        #: Ids of the shots the generation run is making or has queued (the window keeps it up to date).
        self.shots_in_run: frozenset[str] = frozenset()
        self._selected_card = ""  # the chunk id whose card shows the selection
        self._overview_seen: list | None = None  # what the overview drew: redrawn only when it changes
        # The document's chunk states as of the last redraw, until the document changes again: a run sets
        # job states and previews on a few cards many times a second, and each one derived all 120 states.
        self._doc_states: dict | None = None
        # The shots the document named since the last redraw (None: all of them), and what each shot's cards were
        # drawn from (its first chunk's place in the storyboard, its chunk states): see _redraw.
        self._changed_shots: set[str] | None = None
        self._drawn_shots: dict[str, tuple] = {}
        #: What each card's model was made from (_card_inputs), so a redrawn shot makes only its changed cards' models.
        self._card_inputs: dict[str, tuple] = {}
        # Inside held_redraws: whether the document changed, and the cards whose job state changed (None: not held).
        self._held_redraw = False
        self._held_cards: set[str] | None = None
        self._zoom_settle = QTimer(self)
        self._zoom_settle.setObjectName("ZoomSettle")
        self._zoom_settle.setSingleShot(True)
        self._zoom_settle.setInterval(ZOOM_SETTLE_MS)
        self._zoom_settle.timeout.connect(lambda: self.zoomSettled.emit(self.zoom_level))
        self._zoom_settle.timeout.connect(lambda: self.overview.set_hold_layer(False))
        # The settled zoom's cards out of view, two per event-loop turn: a few milliseconds each time, never a stall.
        self._place_trickle = QTimer(self)
        self._place_trickle.setObjectName("CardPlacing")
        self._place_trickle.setInterval(0)
        self._place_trickle.timeout.connect(self._place_next_cards)
        self._zoom_settle.timeout.connect(self._place_trickle.start)
        # A zoom's repaint comes in the event-loop turn after its geometry (see set_zoom).
        self._zoom_paint = QTimer(self)
        self._zoom_paint.setObjectName("ZoomPaint")
        self._zoom_paint.setSingleShot(True)
        self._zoom_paint.setInterval(0)
        self._zoom_paint.timeout.connect(self._paint_zoom)
        self._paint_held: QWidget | None = None  # the window whose repaint waits for _zoom_paint
        self._paint_asked = False
        # Ctrl+wheel steps queued behind a busy frame zoom once, to the level of the last of them: a level nobody
        # sees costs as much as one they do.
        self._wheel_zoom: tuple[int, int] | None = None
        self._zooming = False  # inside set_zoom's geometry (see _on_scrolled)
        self._wheel_zoom_timer = QTimer(self)
        self._wheel_zoom_timer.setObjectName("WheelZoom")
        self._wheel_zoom_timer.setSingleShot(True)
        self._wheel_zoom_timer.setInterval(0)
        self._wheel_zoom_timer.timeout.connect(self._apply_wheel_zoom)
        # (chunk id, picture width) still to draw ahead, the nearest to the zoom's anchor last (see _queue_pictures_ahead).
        self._pictures_ahead: list[tuple[str, int]] = []
        self._pictures_ahead_timer = QTimer(self)
        self._pictures_ahead_timer.setObjectName("PicturesAhead")
        self._pictures_ahead_timer.timeout.connect(self._draw_pictures_ahead)

        self.header = QWidget()
        self.header.setObjectName("TimelineHeader")
        self.header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        title = QLabel("Storyboard")
        title.setObjectName("TimelineTitle")
        self.toolbar = QToolBar("Storyboard")
        self.toolbar.setObjectName("TimelineToolBar")
        self.toolbar.setIconSize(QSize(18, 18))
        self.summary = QLabel()
        self.summary.setObjectName("TimelineSummary")
        header = QHBoxLayout(self.header)
        header.setContentsMargins(12, 2, 8, 2)
        header.setSpacing(10)
        header.addWidget(title)
        header.addWidget(self.toolbar)
        header.addStretch(1)
        header.addWidget(self.summary)
        self.strip = StoryboardStrip()
        self.scroll = StoryboardScroll()
        self.scroll.setObjectName("TimelineScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.strip)
        self.scroll.viewport().installEventFilter(self)
        self.scroll.horizontalScrollBar().valueChanged.connect(self._on_scrolled)
        self.scroll.horizontalScrollBar().rangeChanged.connect(self._on_scrolled)
        self.overview = StoryboardOverview(self.scroll)
        self.overview.chunkChosen.connect(self._select_chunk)
        self.strip.installEventFilter(self)  # its moves and resizes (scrolling, zooming) redraw the overview
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.overview)
        layout.addWidget(self.scroll, 1)

        self.strip.keyCommand.connect(self._on_key_command)
        self.strip.chunkDropped.connect(self.move_chunk_to)
        self.strip.filesDropped.connect(lambda shot_id, paths: self.set_reference_image(shot_id, paths[0]))
        self.strip.newShotClicked.connect(self.new_shot)

    def detach_header(self) -> QWidget:
        """The header (title, toolbar, summary) out of the view, for a dock's title bar: one row, not two."""
        self.layout().removeWidget(self.header)
        self.header.setStyleSheet(TIMELINE_QSS)  # its rules lived on the view
        return self.header

    def sizeHint(self) -> QSize:
        return QSize(960, self.scroll.minimumHeight() + self.overview.height() + (
            self.header.sizeHint().height() if self.header.parent() is self else 0))

    def _fit_height(self) -> None:
        # Never squeezed below one row of cards (the dock keeps them whole; the player gives way).
        needed = self.strip.sizeHint().height() + self.scroll.horizontalScrollBar().sizeHint().height()
        if self.scroll.minimumHeight() != needed:
            self.scroll.setMinimumHeight(needed)
            self.updateGeometry()

    # Wiring -----------------------------------------------------------------------------------
    def set_session(self, session: DocumentSession | None) -> None:
        for signal, slot in self._connections:
            signal.disconnect(slot)
        self._connections = []
        self.session = session
        self._doc_states = None
        self.models.reset()
        if session is not None:
            for signal, slot in ((session.changed, self._on_document_changed),
                                 (session.selectionChanged, self._on_selection),
                                 (session.previewTakeChanged, self._on_preview_take),
                                 (session.storeChanged, self._on_store_changed),
                                 # Every document change comes as one of these first (`changed` comes later).
                                 (session.chunkChanged, self._note_shot), (session.shotChanged, self._note_shot),
                                 (session.shotsChanged, self._forget_states),
                                 (session.takesChanged, self._note_shot),
                                 (session.settingsChanged, self._forget_states)):
                signal.connect(slot)
                self._connections.append((signal, slot))
        self.refresh()
        self._on_selection()

    def set_frame_store(self, store) -> None:
        """The player's FrameStore: a chunk with a live preview there shows it and counts as denoising."""
        if self.frame_store is not None:
            self.frame_store.chunkChanged.disconnect(self._on_frames_changed)
        self.frame_store = store
        if store is not None:
            store.chunkChanged.connect(self._on_frames_changed)

    def set_header_actions(self, actions: list) -> None:
        """Render these QActions (the window's editing actions, shortcuts and all) in the header toolbar."""
        self.toolbar.clear()
        for action in actions:
            self.toolbar.addSeparator() if action is None else self.toolbar.addAction(action)

    # Job states (the generation controller) ---------------------------------------------------
    def set_job_state(self, chunk_id: str, state: str | None, progress: float | None = None) -> None:
        """Show a transient state on a chunk: "queued", "denoising" (progress 0..1) or "failed"; None or "" clears it.

        A job state also ends by itself when a new result for the chunk arrives in the document."""
        self.models.set_job(chunk_id, state or None, progress)
        if self._held_cards is not None:
            self._held_cards.add(chunk_id)
        elif chunk_id in self._cards:
            self._refresh_card(chunk_id)

    @contextmanager
    def held_redraws(self):
        """Redraw what the document changes and job states inside the block changed once, when it ends: a user action
        that is several changes (Regenerate From Here: a new seed, which makes the shot stale, then its chunks queued)
        redraws each card once, and no card shows the state in between (stale, its Regenerate button shown and hidden
        again: 40 card redraws, about 80 ms of GUI CPU at a load of 12 for a 20-chunk shot)."""
        if self._held_cards is not None:  # nested: the outer block redraws
            yield
            return
        self._held_redraw, self._held_cards = False, set()
        try:
            yield
        finally:
            redraw, cards = self._held_redraw, self._held_cards
            self._held_redraw, self._held_cards = False, None
            if redraw:
                self._redraw()
            for chunk_id in cards:
                if chunk_id in self._cards:
                    self._refresh_card(chunk_id)  # the redraw drew it already, unless its shot did not change

    def show_chunk_job_state(self, shot_id: str, chunk_id: str, state: str, progress: float) -> None:
        """The GenerationController's chunkJobState(shot id, chunk id, state, progress) signal, as is:
        state "" (idle) hands the chunk back to the document's state."""
        self.set_job_state(chunk_id, state or None, progress if state == "denoising" else None)

    def job_state(self, chunk_id: str) -> tuple[str, float | None] | None:
        return self.models.jobs.get(chunk_id)

    def set_playhead(self, frame: int | None) -> None:
        if frame != self.strip.playhead_frame:
            self.strip.set_playhead(frame)
            self.overview.update()

    # Zoom -------------------------------------------------------------------------------------
    def card_width(self, level: int | None = None) -> tuple[int, int]:
        """(thumbnail width, text column width) of the cards at zoom `level` (the current one by default)."""
        share, text = ZOOM_LEVELS[self.zoom_level if level is None else level]
        return max(16, round(self._thumb_width * share)), text

    def zoom_in(self) -> bool:
        return self.set_zoom(self.zoom_level - 1)

    def zoom_out(self) -> bool:
        return self.set_zoom(self.zoom_level + 1)

    def set_zoom(self, level: int, anchor: int | None = None) -> bool:
        """Show the cards at zoom `level` (0: widest). The chunk at viewport x `anchor` (the selected chunk,
        or the middle of the view, by default) stays where it is on the screen."""
        level = min(max(level, 0), len(ZOOM_LEVELS) - 1)
        if level == self.zoom_level:
            return False
        bar = self.scroll.horizontalScrollBar()
        keep = self._zoom_anchor(anchor)
        self.zoom_level = level
        self._hold_window_paint()
        # The shots take their new widths now (arithmetic: every card has one width); the cards in view at the new
        # scroll position are placed and laid out now, the others as they come into view, or two per event-loop turn
        # once the zoom has settled (a Ctrl+wheel passes several levels; cards nobody saw at a level are never laid
        # out at it). The repaint comes in the next turn (_hold_window_paint).
        self._place_trickle.stop()
        self._zooming = True  # the strip's resize and the scroll below place no cards (see _on_scrolled)
        try:
            for group in self.strip.groups:
                group.set_card_width(*self.card_width())
            self._lay_out_now()  # then scroll: no frame drawn at the old position
            if keep is not None:
                card, fraction, screen_x = keep
                rect = self.strip.card_rect(card)
                bar.setValue(round(rect.left() + fraction * rect.width() - screen_x))
        finally:
            self._zooming = False
        self._place_cards_in_view()
        self._queue_pictures_ahead(keep[0] if keep is not None else None)
        self.overview.set_hold_layer(True)  # its cells drawn at the new scale once the zoom settles
        self.zoomChanged.emit(level)
        self._zoom_settle.start()
        return True

    def _hold_window_paint(self) -> None:
        """Paint the window in the event-loop turn after this one. A zoom's geometry and the repaint it asks for (Qt's
        UpdateRequest, a posted event, which the next turn delivers before any timer) were one stall of 13-15 ms of
        GUI CPU; the window's UpdateRequest is held until a timer of the next turn sends it (the input that came in
        between is handled first). setUpdatesEnabled(False) on the strip would do it too, but turning it back on
        marks each of the strip's 2,000 widgets dirty: a repaint of 13-20 ms instead of 8."""
        window = self.window()
        if self._paint_held is None:
            self._paint_held, self._paint_asked = window, False
            window.installEventFilter(self)
        self._zoom_paint.start()

    def _paint_zoom(self) -> None:
        window, self._paint_held = self._paint_held, None
        if window is not None and isValid(window):  # (a window closed in between has nothing to paint)
            window.removeEventFilter(self)
            if self._paint_asked:
                QCoreApplication.postEvent(window, QEvent(QEvent.Type.UpdateRequest), Qt.EventPriority.LowEventPriority.value)

    def _queue_pictures_ahead(self, anchor: ChunkCard | None) -> None:
        """Draw the pictures a zoom to a neighbouring level would show, at idle after this zoom: the first zoom out to
        a level drew 15-30 pictures at their new size in its frame (a few milliseconds). Zooming out shows the cards
        around the anchor, which can be anywhere in view: the cards in view and a view's worth at that level on each
        side; zooming in, the cards in view."""
        self._pictures_ahead = []
        offset, width = self.scroll.horizontalScrollBar().value(), self.scroll.viewport().width()
        in_view = [position for position, _ in self.strip.cards_between(offset, offset + width)]
        if not in_view:
            self._pictures_ahead_timer.stop()
            return
        first, last = in_view[0], in_view[-1]
        centre = (self._positions.index(anchor.chunk_id) if anchor is not None and anchor.chunk_id in self._positions
                  else (first + last) // 2)
        current = self.card_width()[0]
        ahead = []
        for level in (self.zoom_level + 1, self.zoom_level - 1):
            if not 0 <= level < len(ZOOM_LEVELS) or self.card_width(level)[0] == current:
                continue
            picture = self.card_width(level)
            reach = width // (card_size(*picture).width() + CARD_SPACING) + 1 if level > self.zoom_level else 0
            for position in range(max(0, first - reach), min(len(self._positions), last + reach + 1)):
                ahead.append((abs(position - centre), self._positions[position], picture[0]))
        ahead.sort(reverse=True)  # popped from the end: the nearest first
        self._pictures_ahead = [(chunk_id, picture) for _, chunk_id, picture in ahead]
        self._pictures_ahead_timer.start(PICTURES_AHEAD_DELAY_MS)

    def _draw_pictures_ahead(self) -> None:
        self._pictures_ahead_timer.setInterval(0)
        until = time.perf_counter() + PICTURES_AHEAD_SLICE_S
        while self._pictures_ahead and time.perf_counter() < until:
            chunk_id, width = self._pictures_ahead.pop()
            card = self._cards.get(chunk_id)
            if card is not None:
                card.picture.prepare(width)
        if not self._pictures_ahead:
            self._pictures_ahead_timer.stop()

    def _apply_wheel_zoom(self) -> None:
        if self._wheel_zoom is not None:
            (level, anchor), self._wheel_zoom = self._wheel_zoom, None
            self.set_zoom(level, anchor)

    def _on_scrolled(self, *_values) -> None:
        # Inside set_zoom the strip's resize changes the scroll range at the old position, then the zoom scrolls: the
        # cards placed at each of those were a third of set_zoom's time at 1920 px, many of them out of view once it
        # had scrolled. set_zoom places the view's cards once, at the end.
        if not self._zooming:
            self._place_cards_in_view()

    def _place_cards_in_view(self) -> None:
        """Place (and lay out) the cards a zoom left unplaced that are in view now, or still drawn there: a wheel
        step places the card or two it brings into view before they are painted."""
        offset = self.scroll.horizontalScrollBar().value()
        left, right = offset, offset + self.scroll.viewport().width()
        for group in self.strip.groups:
            row = group.card_row
            if row.has_unplaced():
                geometry = group.geometry()
                if geometry.right() >= left and geometry.left() <= right:
                    origin = geometry.x() + row.x()
                    row.place_between(left - origin, right - origin)

    def _place_next_cards(self) -> None:
        row = next((group.card_row for group in self.strip.groups if group.card_row.has_unplaced()), None)
        if row is None:
            self._place_trickle.stop()
        else:
            row.place_next(2)

    def _lay_out_now(self) -> None:
        """Place the groups at their new widths at once (Qt would in a later event, shot by shot)."""
        for group in self.strip.groups:
            group.layout().activate()
        self.strip.layout().activate()
        hint = self.strip.layout().totalMinimumSize()
        self.strip.resize(max(hint.width(), self.scroll.viewport().width()), self.strip.height())

    def _zoom_anchor(self, anchor: int | None):
        """(card, where in it, viewport x) to keep in place while zooming, or None without cards."""
        offset = self.scroll.horizontalScrollBar().value()
        selected = self._cards.get(self.session.selected_chunk_id) if self.session is not None else None
        if anchor is None and selected is not None:
            rect = self.strip.card_rect(selected)
            if offset <= rect.center().x() <= offset + self.scroll.viewport().width():
                return selected, 0.5, rect.center().x() - offset
        x = offset + (self.scroll.viewport().width() // 2 if anchor is None else anchor)
        card = self.strip.nearest_card(x)
        if card is None:
            return None
        rect = self.strip.card_rect(card)
        fraction = min(max((x - rect.left()) / max(1, rect.width()), 0.0), 1.0)
        return card, fraction, x - offset

    # Reading (tests, controllers) -------------------------------------------------------------
    def card(self, chunk_id: str) -> ChunkCard:
        return self._cards[chunk_id]

    def cards(self) -> list[ChunkCard]:
        return self.strip.cards()

    def group(self, shot_id: str) -> ShotGroup:
        return self._groups[shot_id]

    def thumbnail(self, result_id: str | None) -> QPixmap | None:
        """The cards' picture of a result (from the same cache), e.g. for the player while its frames load."""
        return self.models.thumbnail(self.session, result_id) if self.session is not None else None

    def set_uses_guidance(self, uses_guidance: bool) -> None:
        """The loaded model uses guidance (base) or not (distilled): the negative prompt fields follow."""
        if uses_guidance != self.uses_guidance:
            self.uses_guidance = uses_guidance
            self.refresh()

    # Redrawing from the document --------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw every card and shot from the document."""
        self._changed_shots = None
        self._redraw()

    def _on_document_changed(self) -> None:
        if self._held_cards is not None:
            self._held_redraw = True
        else:
            self._redraw()

    def _redraw(self) -> None:
        """Redraw from the document: the cards of the shots named since the last redraw (every shot after a change
        of the shots, the settings or the session), and of any shot whose chunk states or place in the storyboard
        moved (a continued shot goes stale with its predecessor). A finished chunk of a long storyboard rebuilt all
        120 card models and was the slowest event of a run."""
        changed, self._changed_shots = self._changed_shots, set()
        if changed is None:
            changed = set()
            self._drawn_shots.clear()
            self._card_inputs.clear()
        session = self.session
        if session is None:
            self._drop_widgets(set(), set())
            self.strip.set_groups([])
            self.summary.setText("")
            return
        project = session.project
        settings = project.settings
        states = self._doc_states = storyboard_states(project)
        width = thumb_width(settings.width, settings.height)
        if width != self._thumb_width:
            self._thumb_width = width
            for group in self._groups.values():
                group.set_card_width(*self.card_width())
        vocabulary = model_vocabulary(settings.model)  # studio-mini's words; None for MAGI-1 (reads any text)
        groups, position, seen = [], 0, []
        for shot in project.shots:
            group = self._groups.get(shot.id)
            drawn = (position, tuple(states[shot.id]))
            if group is not None and shot.id not in changed and self._drawn_shots.get(shot.id) == drawn:
                seen += [_overview_part(card.model) for card in group.cards]
                position += len(group.cards)
                groups.append(group)
                continue
            self._drawn_shots[shot.id] = drawn
            group = group or self._new_group(shot.id)
            group.set_card_width(*self.card_width())
            group.prompt_words.set_vocabulary(vocabulary)
            path, specs, cards = active_path(shot), resolve_specs(shot, shot.active_take_id), []
            for index, chunk in enumerate(shot.chunks):
                card = self._cards.get(chunk.id) or self._new_card(chunk.id)
                card.prompt_words.set_vocabulary(vocabulary)
                inputs = self._card_inputs_of(shot, index, states[shot.id][index], path[index], position,
                                              _is_draft(specs[index]))
                if card.model is not None and inputs is not None and self._card_inputs.get(chunk.id) == inputs:
                    model = card.model  # a committed chunk changes one or two of its shot's 20 cards
                else:
                    model = self.models.card(self.session, self.frame_store, shot, index, states[shot.id][index],
                                             path[index], position, _is_draft(specs[index]))
                    self._card_inputs[chunk.id] = inputs
                    if model != card.model:  # a long storyboard: only the cards an edit changed are redrawn
                        card.show_model(model)
                seen.append(_overview_part(model))
                cards.append(card)
                position += 1
            group.set_cards(cards)
            group.show_shot(self.models.shot(self.session, shot, self.uses_guidance))
            groups.append(group)
        self.strip.fps = settings.fps
        self.strip.set_groups(groups)
        self._positions = [card.chunk_id for card in self.strip.cards()]
        self._drop_widgets({g.shot_id for g in groups}, set(self._positions))
        self.models.forget_chunks(set(self._positions))
        self._fit_height()
        self._show_selection(scroll=False)
        self.summary.setText(self.models.summary(project, states))
        seen.append(tuple(shot.name for shot in project.shots))
        if seen != self._overview_seen:  # typing a prompt changes nothing the overview draws
            old, self._overview_seen = self._overview_seen, seen
            if old is not None and len(old) == len(seen) and old[-1] == seen[-1]:  # the same chunks and shots
                cards = self.strip.cards()
                self.overview.redraw_cells([cards[i] for i, (a, b) in enumerate(zip(old[:-1], seen[:-1])) if a != b])
            else:
                self.overview.invalidate()

    def _card_inputs_of(self, shot, index: int, state, result_id: str | None, position: int,
                        draft: bool) -> tuple | None:
        """What TimelineModels.card makes chunk `index`'s model from; None when it reads more (a live preview, a
        reference image still loading), so it is made again."""
        store = self.frame_store
        if (index == 0 and shot.start == "image") or (
                store is not None and position < store.chunk_count and store.state(position).value == "preview"):
            return None
        chunk = shot.chunks[index]
        return (shot.id, shot.name, index, chunk.prompt, chunk.seed, chunk.seed_locked, state, result_id, position,
                draft, self.models.jobs.get(chunk.id), self.session.project.settings.fps)

    def _refresh_card(self, chunk_id: str) -> None:
        if self.session is None or chunk_id not in self._positions:
            return
        position = self._positions.index(chunk_id)
        for shot in self.session.project.shots:
            for index, chunk in enumerate(shot.chunks):
                if chunk.id == chunk_id:
                    if self._doc_states is None:
                        self._doc_states = storyboard_states(self.session.project)
                    state = self._doc_states[shot.id][index]
                    card = self._cards[chunk_id]
                    old = card.model
                    model = self.models.card(self.session, self.frame_store, shot, index, state,
                                             active_path(shot)[index], position,
                                             _is_draft(resolve_specs(shot, shot.active_take_id)[index]))
                    if model == old:
                        return
                    card.show_model(model)
                    if old is None or _overview_part(old) != _overview_part(card.model):
                        seen = self._overview_seen
                        if seen is not None and position < len(seen) - 1 and old is not None \
                                and seen[position] == _overview_part(old):
                            seen[position] = _overview_part(card.model)
                            self.overview.redraw_cells([card])
                        else:
                            self._overview_seen = None
                            self.overview.invalidate()
                    return

    def _forget_states(self, *_ids) -> None:
        self._doc_states = None
        self._changed_shots = None  # the shots, their order or the settings changed: redraw them all

    def _note_shot(self, shot_id: str, *_ids) -> None:
        self._doc_states = None
        if self._changed_shots is not None:
            self._changed_shots.add(shot_id)

    def _on_frames_changed(self, position: int) -> None:
        # Only a chunk being made concerns a card here: its live preview, or its frames between the engine's finishing
        # it and its result's commit (after that they reach the card through the document).
        if 0 <= position < len(self._positions):
            card = self._cards[self._positions[position]]
            previewing = self.frame_store.state(position).value == "preview"
            if previewing or (card.model is not None and (card.model.preview is not None
                                                          or card.model.state == DENOISING)):
                self._refresh_card(card.chunk_id)

    def _new_card(self, chunk_id: str) -> ChunkCard:
        card = ChunkCard(self._thumb_width)
        card.set_width(*self.card_width())
        card.activated.connect(self._on_card_activated)
        card.clicked.connect(self._on_card_clicked)
        card.promptEdited.connect(lambda c, text: self._push(SetPrompt(c.shot_id, c.chunk_id, text)))
        card.promptLeft.connect(self._on_prompt_left)
        card.seedEdited.connect(lambda c, seed: self._push(SetSeed(c.shot_id, c.chunk_id, seed)))
        card.lockToggled.connect(lambda c, locked: self._apply(
            edits.set_seed_locked(self.session.project, c.shot_id, c.chunk_id, locked)))
        card.menuRequested.connect(lambda c, pos: self._popup(menus.card_menu(self, c), pos))
        card.dragRequested.connect(self._start_drag)
        card.regenerateClicked.connect(self._on_card_regenerate)
        self._cards[chunk_id] = card
        return card

    def _new_group(self, shot_id: str) -> ShotGroup:
        group = ShotGroup()
        group.renamed.connect(lambda g, name: self._push(RenameShot(g.shot_id, name)))
        group.promptEdited.connect(lambda g, text: self._push(SetShotPrompt(g.shot_id, text)))
        group.negativeEdited.connect(lambda g, text: self._push(SetShotNegativePrompt(g.shot_id, text)))
        group.promptLeft.connect(lambda g: self.session is not None and self.session.end_edit_burst())
        group.startChosen.connect(lambda g, start: self.set_shot_start(g.shot_id, start))
        group.addChunkClicked.connect(lambda g: self.add_chunk_to(g.shot_id))
        group.takesClicked.connect(lambda g: self.takesRequested.emit(g.shot_id))
        group.clicked.connect(lambda g: self._select_shot(g.shot_id))
        group.menuRequested.connect(lambda g, pos: self._popup(menus.shot_menu(self, g), pos))
        self._groups[shot_id] = group
        return group

    @staticmethod
    def _popup(menu, pos) -> None:
        menu.exec(pos)
        menu.deleteLater()  # menus are built per click: do not keep them all

    def _drop_widgets(self, shot_ids: set[str], chunk_ids: set[str]) -> None:
        for table, alive in ((self._cards, chunk_ids), (self._groups, shot_ids)):
            for key in [k for k in table if k not in alive]:
                widget = table.pop(key)
                widget.hide()
                widget.deleteLater()

    # Selection --------------------------------------------------------------------------------
    def _on_selection(self, *_ids) -> None:
        self._show_selection(scroll=True)

    def _show_selection(self, scroll: bool) -> None:
        shot_id = self.session.selected_shot_id if self.session else ""
        chunk_id = self.session.selected_chunk_id if self.session else ""
        if chunk_id != self._selected_card or self._selected_card not in self._cards:
            for card in self._cards.values():
                if card.is_selected() != (card.chunk_id == chunk_id):
                    card.set_selected(card.chunk_id == chunk_id)
            self._selected_card = self.overview.selected_chunk_id = chunk_id
            self.overview.invalidate()
        # Another view may move the selection while the document has changed and this one has not redrawn
        # yet: a group whose shot is gone waits for that redraw (which drops it).
        shots = {shot.id: shot for shot in self.session.project.shots} if self.session else {}
        for group in self._groups.values():
            if group.model is not None and group.model.current != (group.shot_id == shot_id) and group.shot_id in shots:
                group.show_shot(self.models.shot(self.session, shots[group.shot_id], self.uses_guidance))
        if scroll and chunk_id in self._cards:
            # After the layout has placed a card that an edit just made (its geometry is not set yet).
            QTimer.singleShot(0, lambda: chunk_id in self._cards and self._scroll_to(self._cards[chunk_id]))

    def _scroll_to(self, card: ChunkCard, margin: int = 60) -> None:
        """Scroll the card into view with `margin` px beside it (where the zoom puts it, placed yet or not)."""
        rect, bar = self.strip.card_rect(card), self.scroll.horizontalScrollBar()
        if rect.left() - margin < bar.value():
            bar.setValue(rect.left() - margin)
        elif rect.right() + margin > bar.value() + self.scroll.viewport().width():
            bar.setValue(rect.right() + margin - self.scroll.viewport().width())

    def _on_card_activated(self, card: ChunkCard) -> None:
        if self.session is not None:
            self.session.select(card.shot_id, card.chunk_id)

    def _on_card_clicked(self, card: ChunkCard) -> None:
        self._on_card_activated(card)
        self.strip.setFocus(Qt.FocusReason.MouseFocusReason)
        self.chunkClicked.emit(card.chunk_id)

    def _on_card_regenerate(self, card: ChunkCard) -> None:
        """The card's Regenerate button: the menu's Generate From Here, for that card's chunk (refused with the
        menu's sentence while the chunks before it are not generated)."""
        if self.session is None:
            return
        self.session.select(card.shot_id, card.chunk_id)
        waiting = self.missing_context()
        if waiting:
            self.session.report_error(ProjectError(waiting))
        else:
            self.request_generate_from()

    def _on_prompt_left(self, card: ChunkCard) -> None:
        if self.session is not None:
            self.session.end_edit_burst()

    def _select_shot(self, shot_id: str) -> None:
        shot = self.session.project.shot(shot_id)
        if self.session.selected_shot_id != shot_id:
            self.session.select(shot_id, shot.chunks[0].id if shot.chunks else "")

    def _on_preview_take(self, *_ids) -> None:
        for group in self._groups.values():
            group.show_shot(self.models.shot(self.session, self.session.project.shot(group.shot_id),
                                             self.uses_guidance))

    def _on_store_changed(self) -> None:
        self.models.forget_images()
        self.refresh()

    def select_relative(self, step: int) -> None:
        if self.session is None or not self._positions:
            return
        current = self.session.selected_chunk_id
        index = self._positions.index(current) + step if current in self._positions else 0
        self._select_position(min(max(index, 0), len(self._positions) - 1))

    def _select_chunk(self, chunk_id: str) -> None:
        card = self._cards.get(chunk_id)
        if card is not None and self.session is not None:
            self.session.select(card.shot_id, card.chunk_id)

    def _select_position(self, position: int) -> None:
        card = self._cards[self._positions[position]]
        self.session.select(card.shot_id, card.chunk_id)

    def _on_key_command(self, command: str) -> None:
        actions = {"previous": lambda: self.select_relative(-1), "next": lambda: self.select_relative(1),
                   "first": lambda: self._positions and self._select_position(0),
                   "last": lambda: self._positions and self._select_position(len(self._positions) - 1),
                   "move-left": self.move_chunk_left, "move-right": self.move_chunk_right,
                   "delete": self.delete_chunk, "edit": self.edit_prompt}
        actions[command]()

    def eventFilter(self, watched, event) -> bool:
        if watched is self._paint_held and event.type() == QEvent.Type.UpdateRequest:
            self._paint_asked = True  # sent in the next turn (see _hold_window_paint)
            return True
        if watched is self.strip:
            if event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest):
                self.overview.invalidate()
            if event.type() == QEvent.Type.LayoutRequest:  # a shot's header settles its height once shown
                self._fit_height()
            return False
        if event.type() == QEvent.Type.Resize:  # a wider view shows cards a zoom has not placed yet
            self._place_cards_in_view()
        # Ctrl+wheel zooms around the mouse; a plain wheel scrolls the strip sideways (time runs left to right).
        if event.type() == QEvent.Type.Wheel and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() or event.angleDelta().x()
            if steps:
                level = self._wheel_zoom[0] if self._wheel_zoom is not None else self.zoom_level
                level = min(max(level + (1 if steps < 0 else -1), 0), len(ZOOM_LEVELS) - 1)
                self._wheel_zoom = level, round(event.position().x())
                self._wheel_zoom_timer.start()
            return True
        if event.type() == QEvent.Type.Wheel and not event.angleDelta().x():
            bar = self.scroll.horizontalScrollBar()
            bar.setValue(bar.value() - event.angleDelta().y())
            return True
        return super().eventFilter(watched, event)

    # Dragging a card --------------------------------------------------------------------------
    def _start_drag(self, card: ChunkCard) -> None:
        drag = QDrag(self)
        drag.setMimeData(chunk_mime(card.shot_id, card.chunk_id))
        drag.setPixmap(card.grab().scaledToWidth(160, Qt.TransformationMode.SmoothTransformation))
        drag.exec(Qt.DropAction.MoveAction)


def _is_draft(spec: TakeSpec | None) -> bool:
    return spec is not None and spec.draft


def _overview_part(model) -> tuple:
    """What the overview draws of a card."""
    return model.chunk_id, model.state, model.thumbnail is None or model.thumbnail.cacheKey()
