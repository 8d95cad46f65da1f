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

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QDrag, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolBar, QVBoxLayout, QWidget

from magi_studio.document.commands import RenameShot, SetPrompt, SetSeed, SetShotPrompt
from magi_studio.document.model import active_path, storyboard_states
from magi_studio.timeline import edits, menus
from magi_studio.timeline.card import ChunkCard
from magi_studio.timeline.derive import TimelineModels
from magi_studio.timeline.editing import TimelineEditing
from magi_studio.timeline.shot_group import ShotGroup
from magi_studio.timeline.strip import StoryboardStrip, chunk_mime
from magi_studio.timeline.style import TIMELINE_QSS, thumb_width
from magi_studio.undo import DocumentSession


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
        self._thumb_width = thumb_width(128, 128)

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
        self.scroll = QScrollArea()
        self.scroll.setObjectName("TimelineScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.strip)
        self.scroll.viewport().installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
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
        return QSize(960, self.scroll.minimumHeight() + (self.header.sizeHint().height()
                                                         if self.header.parent() is self else 0))

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
        self.models.reset()
        if session is not None:
            for signal, slot in ((session.changed, self.refresh), (session.selectionChanged, self._on_selection),
                                 (session.previewTakeChanged, self._on_preview_take),
                                 (session.storeChanged, self._on_store_changed)):
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
        if chunk_id in self._cards:
            self._refresh_card(chunk_id)

    def show_chunk_job_state(self, shot_id: str, chunk_id: str, state: str, progress: float) -> None:
        """The GenerationController's chunkJobState(shot id, chunk id, state, progress) signal, as is:
        state "" (idle) hands the chunk back to the document's state."""
        self.set_job_state(chunk_id, state or None, progress if state == "denoising" else None)

    def clear_job_states(self) -> None:
        self.models.jobs.clear()
        self.refresh()

    def job_state(self, chunk_id: str) -> tuple[str, float | None] | None:
        return self.models.jobs.get(chunk_id)

    def set_playhead(self, frame: int | None) -> None:
        self.strip.set_playhead(frame)

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

    # Redrawing from the document --------------------------------------------------------------
    def refresh(self) -> None:
        session = self.session
        if session is None:
            self._drop_widgets(set(), set())
            self.strip.set_groups([])
            self.summary.setText("")
            return
        project = session.project
        settings = project.settings
        states = storyboard_states(project)
        width = thumb_width(settings.width, settings.height)
        if width != self._thumb_width:
            self._thumb_width = width
            for card in self._cards.values():
                card.set_thumb_width(width)
        groups, position = [], 0
        for shot in project.shots:
            group = self._groups.get(shot.id) or self._new_group(shot.id)
            path, cards = active_path(shot), []
            for index, chunk in enumerate(shot.chunks):
                card = self._cards.get(chunk.id) or self._new_card(chunk.id)
                card.show_model(self.models.card(self.session, self.frame_store, shot, index, states[shot.id][index],
                                                 path[index], position))
                cards.append(card)
                position += 1
            group.set_cards(cards)
            group.show_shot(self.models.shot(self.session, shot))
            groups.append(group)
        self.strip.fps = settings.fps
        self.strip.set_groups(groups)
        self._positions = [card.chunk_id for card in self.strip.cards()]
        self._drop_widgets({g.shot_id for g in groups}, set(self._positions))
        self.models.forget_chunks(set(self._positions))
        self._fit_height()
        self._show_selection(scroll=False)
        self.summary.setText(self.models.summary(project, states))

    def _refresh_card(self, chunk_id: str) -> None:
        if self.session is None or chunk_id not in self._positions:
            return
        position = self._positions.index(chunk_id)
        for shot in self.session.project.shots:
            for index, chunk in enumerate(shot.chunks):
                if chunk.id == chunk_id:
                    state = storyboard_states(self.session.project)[shot.id][index]
                    self._cards[chunk_id].show_model(self.models.card(
                        self.session, self.frame_store, shot, index, state, active_path(shot)[index], position))
                    return

    def _on_frames_changed(self, position: int) -> None:
        # Only live previews concern a card here (finished frames reach it through the document).
        if 0 <= position < len(self._positions):
            card = self._cards[self._positions[position]]
            previewing = self.frame_store.state(position).value == "preview"
            if previewing or (card.model is not None and card.model.preview is not None):
                self._refresh_card(card.chunk_id)

    def _new_card(self, chunk_id: str) -> ChunkCard:
        card = ChunkCard(self._thumb_width)
        card.activated.connect(self._on_card_activated)
        card.clicked.connect(self._on_card_clicked)
        card.promptEdited.connect(lambda c, text: self._push(SetPrompt(c.shot_id, c.chunk_id, text)))
        card.promptLeft.connect(self._on_prompt_left)
        card.seedEdited.connect(lambda c, seed: self._push(SetSeed(c.shot_id, c.chunk_id, seed)))
        card.lockToggled.connect(lambda c, locked: self._apply(
            edits.set_seed_locked(self.session.project, c.shot_id, c.chunk_id, locked)))
        card.menuRequested.connect(lambda c, pos: self._popup(menus.card_menu(self, c), pos))
        card.dragRequested.connect(self._start_drag)
        self._cards[chunk_id] = card
        return card

    def _new_group(self, shot_id: str) -> ShotGroup:
        group = ShotGroup()
        group.renamed.connect(lambda g, name: self._push(RenameShot(g.shot_id, name)))
        group.promptEdited.connect(lambda g, text: self._push(SetShotPrompt(g.shot_id, text)))
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
        for card in self._cards.values():
            card.set_selected(card.chunk_id == chunk_id)
        for group in self._groups.values():
            if group.model is not None and group.model.current != (group.shot_id == shot_id):
                group.show_shot(self.models.shot(self.session, self.session.project.shot(group.shot_id)))
        if scroll and chunk_id in self._cards:
            # After the layout has placed a card that an edit just made (its geometry is not set yet).
            QTimer.singleShot(0, lambda: chunk_id in self._cards
                              and self.scroll.ensureWidgetVisible(self._cards[chunk_id], 60, 0))

    def _on_card_activated(self, card: ChunkCard) -> None:
        if self.session is not None:
            self.session.select(card.shot_id, card.chunk_id)

    def _on_card_clicked(self, card: ChunkCard) -> None:
        self._on_card_activated(card)
        self.strip.setFocus(Qt.FocusReason.MouseFocusReason)
        self.chunkClicked.emit(card.chunk_id)

    def _on_prompt_left(self, card: ChunkCard) -> None:
        if self.session is not None:
            self.session.end_edit_burst()

    def _select_shot(self, shot_id: str) -> None:
        shot = self.session.project.shot(shot_id)
        if self.session.selected_shot_id != shot_id:
            self.session.select(shot_id, shot.chunks[0].id if shot.chunks else "")

    def _on_preview_take(self, *_ids) -> None:
        for group in self._groups.values():
            group.show_shot(self.models.shot(self.session, self.session.project.shot(group.shot_id)))

    def _on_store_changed(self) -> None:
        self.models.forget_images()
        self.refresh()

    def select_relative(self, step: int) -> None:
        if self.session is None or not self._positions:
            return
        current = self.session.selected_chunk_id
        index = self._positions.index(current) + step if current in self._positions else 0
        self._select_position(min(max(index, 0), len(self._positions) - 1))

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
        # A mouse wheel scrolls the strip sideways: time runs left to right here.
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
