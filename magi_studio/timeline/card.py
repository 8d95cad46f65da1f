"""ChunkCard: one 24-frame chunk on the timeline — thumbnail, index, time range, state, prompt and seed.

The prompt field holds what the chunk adds to its shot's prompt; its tooltip shows the joined text
the engine receives (`show_shot_prompt`, called by the card's ShotGroup).

A card is a view of one chunk and holds no truth: `show_model(model)` paints a CardModel the timeline
derived from the document, and every edit leaves as a signal (promptEdited, seedEdited, lockToggled)
that the timeline turns into a document command. Setting the text from the document never echoes
back as an edit, and never moves the caret of a field being typed in unless the text really differs.

A stale or damaged chunk shows a "Regenerate" button over the foot of its picture (regenerateClicked;
the timeline turns it into Generate From Here). It floats outside the card's layouts, so showing it
moves nothing, and it never takes the keyboard focus from a field being typed in.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPainter, QPainterPath, QPen, QPixmap, QRegularExpressionValidator
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QToolButton,
                               QVBoxLayout, QWidget)

from magi_engine.requests import MAX_PROMPT_CHARS, MAX_SEED
from magi_studio.document.model import joined_prompt
from magi_studio.theme.icons import icon_file, svg_pixmap
from magi_studio.timeline.glyphs import glyph
from magi_studio.timeline.prompt_words import PromptWords
from magi_studio.timeline.state_badge import StateBadge
from magi_studio.timeline.style import (CARD_FRAME, CARD_PADDING, CARD_RADIUS, DAMAGED, DENOISING, DONE, STALE, STARTING,
                                        STATE_TEXT, STATE_TIPS, TEXT_WIDTH, THUMB_HEIGHT, set_style_property)
from magi_studio.timeline.thumbnail import CardModel, CardPicture


def card_size(thumb_width: int, text_width: int) -> QSize:
    """A card's size with its picture `thumb_width` wide beside a text column `text_width` wide (0: the picture alone)."""
    return QSize(2 * CARD_PADDING + thumb_width + (10 if text_width else 0) + text_width, 2 * CARD_PADDING + THUMB_HEIGHT)


@lru_cache(maxsize=None)
def _dark_icon(name: str) -> QIcon:
    """The theme's icon `name` drawn in the dark text colour of a light button (drawn once: 120 cards use it)."""
    return QIcon(svg_pixmap(icon_file(name).read_text(encoding="utf-8"), 28, "#15171c"))


#: The frame's border as far as the card's contents are concerned (a selected card's 2-px border is drawn over them).
FRAME_WIDTH = 1
_FRAME_LAYERS: dict[tuple, QPixmap] = {}


def _frame_layer(key: tuple[int, int, float, bool, bool]) -> QPixmap:
    """A card's frame for `key` (width, height, device pixel ratio, hovered or selected, selected), drawn once: drawn
    on each paint it cost 0.12 ms a card (its antialiased arcs), copied 0.003. Composed from a transparent layer, its
    corners' antialiased pixels can differ from a frame drawn in place by one level of 255."""
    layer = _FRAME_LAYERS.get(key)
    if layer is None:
        if len(_FRAME_LAYERS) > 64:  # a few widths per zoom level and three looks: never grow without end
            _FRAME_LAYERS.clear()
        width, height, ratio, lit, selected = key
        layer = QPixmap(round(width * ratio), round(height * ratio))
        layer.setDevicePixelRatio(ratio)
        layer.fill(Qt.GlobalColor.transparent)
        painter = QPainter(layer)
        _paint_frame(painter, QRectF(0, 0, width, height), *CARD_FRAME[lit, selected])
        painter.end()
        _FRAME_LAYERS[key] = layer
    return layer


def _paint_frame(painter: QPainter, rect: QRectF, background: str, border: str, width: int) -> None:
    """A card's rounded frame as the style sheet drew it (`background: ...; border: <width>px solid
    ...; border-radius: CARD_RADIUS`): the background up to the middle of the border, then the four straight edges as
    rectangles and each corner as two eighth-circle arcs (one per edge) with square caps, all antialiased."""
    half, radius = width / 2, CARD_RADIUS
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    inside = QPainterPath()
    inside.addRoundedRect(rect.adjusted(half, half, -half, -half), radius - half, radius - half)
    painter.fillPath(inside, QColor(background))
    colour = QColor(border)
    pen = QPen(colour, width)
    pen.setCapStyle(Qt.PenCapStyle.SquareCap)
    left, top, right, bottom = rect.left(), rect.top(), rect.right(), rect.bottom()
    size = 2 * radius - width
    top_left = QRectF(left + half, top + half, size, size)
    top_right = QRectF(right - 2 * radius + half, top + half, size, size)
    bottom_left = QRectF(left + half, bottom - 2 * radius + half, size, size)
    bottom_right = QRectF(right - 2 * radius + half, bottom - 2 * radius + half, size, size)
    # edge, then its two corners' halves (start and span in degrees): bottom, right, left, top, each over the last
    for edge, arcs in (
            (QRectF(left + radius, bottom - width, rect.width() - 2 * radius, width),
             ((bottom_left, -90, -45), (bottom_right, -90, 45))),
            (QRectF(right - width, top + radius, width, rect.height() - 2 * radius),
             ((top_right, 45, -45), (bottom_right, 315, 45))),
            (QRectF(left, top + radius, width, rect.height() - 2 * radius),
             ((top_left, 135, 45), (bottom_left, 180, 45))),
            (QRectF(left + radius, top, rect.width() - 2 * radius, width),
             ((top_left, 135, -45), (top_right, 45, 45)))):
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRect(edge)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for box, start, span in arcs:
            painter.drawArc(box, start * 16, span * 16)
    painter.restore()


class PromptEdit(QPlainTextEdit):
    """The multi-line prompt field. Undo/redo keys go to the project's history, not a private one; Esc is
    left to the window (magi_studio.keyboard.TypingGuard), which moves the focus back to the storyboard."""

    focused = Signal()
    left = Signal()  # focus went elsewhere: the typing burst is over

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PromptEdit")
        self.setPlaceholderText("Describe this chunk…")
        self.setTabChangesFocus(True)
        self.setAcceptDrops(False)  # files dropped on a card are reference images, never pasted paths
        self.setUndoRedoEnabled(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setAccessibleName("Prompt")

    def show_text(self, text: str) -> None:
        """The document's prompt; the caret stays where it was (clamped) and no edit is echoed."""
        if self.toPlainText() == text:
            return
        position = self.textCursor().position()
        blocked = self.blockSignals(True)
        self.setPlainText(text)
        cursor = self.textCursor()
        cursor.setPosition(min(position, len(text)))
        self.setTextCursor(cursor)
        self.blockSignals(blocked)

    def text(self) -> str:
        return self.toPlainText()[:MAX_PROMPT_CHARS]

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride:
            if event.matches(QKeySequence.StandardKey.Undo) or event.matches(QKeySequence.StandardKey.Redo):
                event.ignore()  # the window's Undo/Redo: one history for the whole project
                return False
        return super().event(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.focused.emit()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.left.emit()


class SeedEdit(QLineEdit):
    """The seed: digits only; Up/Down step it; Enter or leaving the field commits it."""

    seedEdited = Signal(int)
    focused = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SeedEdit")
        self.setValidator(QRegularExpressionValidator(r"\d{0,19}"))
        self.setAcceptDrops(False)
        self.setAccessibleName("Seed")
        self.setToolTip("Seed: the same prompt and seed make the same chunk (Up/Down to change it)")
        self._seed = 0
        self.editingFinished.connect(self._commit)

    def show_seed(self, seed: int) -> None:
        self._seed = seed
        if self.text() != str(seed):
            self.setText(str(seed))

    def _commit(self) -> None:
        text = self.text()
        value = int(text) if text else None
        if value is None or value > MAX_SEED:
            self.setText(str(self._seed))
        elif value != self._seed:
            self.seedEdited.emit(value)

    def keyPressEvent(self, event) -> None:
        step = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1}.get(event.key())
        if step is not None:
            value = min(MAX_SEED, max(0, (int(self.text()) if self.text() else self._seed) + step))
            self.setText(str(value))
            self.seedEdited.emit(value)
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.focused.emit()


class PassiveButton(QToolButton):
    """A button whose click leaves the keyboard focus where it is.

    A click on a NoFocus widget gives the focus to the nearest ancestor that takes click focus (here the
    storyboard strip), unless one on the way already has it; while the mouse is over the button it names
    the focused widget as its focus proxy, which counts as having it, so typing goes on after the click.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def enterEvent(self, event) -> None:
        focused = QApplication.focusWidget()
        self.setFocusProxy(focused if focused is not None and focused.window() is self.window() else None)
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:
        self.setFocusProxy(None)
        super().leaveEvent(event)

    def hideEvent(self, event) -> None:
        self.setFocusProxy(None)
        super().hideEvent(event)


class ChunkCard(QWidget):
    """One chunk of the storyboard (see the module docstring)."""

    #: One of the card's fields took focus: select it (the field keeps the focus).
    activated = Signal(object)
    #: The card itself was clicked: select it and give the timeline the keyboard.
    clicked = Signal(object)
    promptEdited = Signal(object, str)
    promptLeft = Signal(object)
    seedEdited = Signal(object, int)
    lockToggled = Signal(object, bool)
    #: (card, global position): the card's menu (right click or its ⋯ button).
    menuRequested = Signal(object, QPoint)
    #: The mouse was dragged from the card: the timeline starts a drag to reorder it.
    dragRequested = Signal(object)
    #: The Regenerate button of a stale or damaged card was clicked: generate from this chunk (same seed).
    regenerateClicked = Signal(object)

    def __init__(self, thumb_width: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The style sheet's rules for the card's fields name it. Its frame is painted here (a QWidget: the theme's style
        # sheet paints a QFrame's background), and its contents sit 1 px in, as the style sheet's 1-px border put them.
        self.setObjectName("ChunkCard")
        self.setContentsMargins(FRAME_WIDTH, FRAME_WIDTH, FRAME_WIDTH, FRAME_WIDTH)
        self.model: CardModel | None = None
        self._selected = False
        self._press: QPoint | None = None
        self._shot_prompt = ""

        self.picture = CardPicture(self, self._picture_rect(thumb_width))
        self.index_label = QLabel()
        self.index_label.setObjectName("CardIndex")
        self.time_label = QLabel()
        self.time_label.setObjectName("CardTime")
        self.badge = StateBadge()
        self.draft_badge = QLabel("Draft")
        self.draft_badge.setObjectName("DraftBadge")
        self.draft_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.draft_badge.setToolTip("Made in Draft mode (fewer steps, a smaller picture): Render at Final Quality "
                                    "(the takes' menu or Generate) makes it again at the project's settings")
        self.draft_badge.hide()
        self.prompt = PromptEdit()
        self.prompt_words = PromptWords(self.prompt)  # the model's unknown words (TimelineView sets it)
        self.lock = QToolButton()
        self.lock.setCheckable(True)
        self.lock.setAutoRaise(True)
        self.lock.setIconSize(QSize(15, 15))
        self.lock.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        seed_label = QLabel("Seed")
        seed_label.setObjectName("SeedLabel")
        self.seed = SeedEdit()
        self.more = QToolButton()
        self.more.setIcon(glyph("more"))
        self.more.setIconSize(QSize(16, 16))
        self.more.setAutoRaise(True)
        self.more.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.more.setToolTip("Chunk actions")
        self.more.setAccessibleName("Chunk actions")
        self.regenerate = PassiveButton(self)  # over the picture, in no layout: showing it moves nothing
        self.regenerate.setObjectName("CardRegenerate")
        self.regenerate.setText("Regenerate")
        self.regenerate.setAccessibleName("Regenerate")
        self.regenerate.setIcon(_dark_icon("regenerate"))  # on the button's amber, as its label is
        self.regenerate.setIconSize(QSize(14, 14))
        self.regenerate.setCursor(Qt.CursorShape.PointingHandCursor)
        self.regenerate.hide()
        self._regenerate_fits = True

        header = QHBoxLayout()
        header.setSpacing(6)
        header.addWidget(self.index_label)
        header.addWidget(self.time_label)
        header.addStretch(1)
        header.addWidget(self.draft_badge)
        header.addWidget(self.badge)
        footer = QHBoxLayout()
        footer.setSpacing(2)
        footer.addWidget(self.lock)
        footer.addWidget(seed_label)
        footer.addWidget(self.seed, 1)
        footer.addWidget(self.more)
        # One widget, so a zoom shows or hides the whole column at once (nine widgets one by one cost a few ms a card).
        self.column = QWidget()
        column = QVBoxLayout(self.column)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addLayout(header)
        column.addWidget(self.prompt, 1)
        column.addLayout(footer)
        layout = QHBoxLayout(self)  # the text column, right of the picture (set_width makes room for it)
        layout.addWidget(self.column, 1)
        self.text_width = TEXT_WIDTH
        self.set_thumb_width(thumb_width)

        self.prompt.textChanged.connect(lambda: self.promptEdited.emit(self, self.prompt.text()))
        self.prompt.focused.connect(lambda: self.activated.emit(self))
        self.prompt.left.connect(lambda: self.promptLeft.emit(self))
        self.seed.focused.connect(lambda: self.activated.emit(self))
        self.seed.seedEdited.connect(lambda value: self.seedEdited.emit(self, value))
        self.lock.toggled.connect(lambda locked: self.lockToggled.emit(self, locked))
        self.more.clicked.connect(
            lambda: self.menuRequested.emit(self, self.more.mapToGlobal(QPoint(0, self.more.height()))))
        self.regenerate.clicked.connect(lambda: self.regenerateClicked.emit(self))

    def show_shot_prompt(self, shot_prompt: str) -> None:
        """Say what the chunk's text adds to (the placeholder) and what the engine receives (the tooltip)."""
        self._shot_prompt = shot_prompt
        self.prompt.setPlaceholderText("What this chunk adds to the shot prompt…" if shot_prompt.strip()
                                       else "Describe this chunk…")
        self._show_prompt_tip()

    def _show_prompt_tip(self) -> None:
        joined = joined_prompt(self._shot_prompt, self.model.prompt if self.model else "")
        tip = f"The engine receives: {joined}" if self._shot_prompt.strip() and joined else ""
        if self.prompt.toolTip() != tip:
            self.prompt.setToolTip(tip)

    def set_thumb_width(self, width: int) -> None:
        self.set_width(width, self.text_width)

    def set_width(self, thumb_width: int, text_width: int) -> None:
        """The card at the storyboard's zoom: the picture `thumb_width` wide beside a text column (index,
        time, state, prompt, seed) `text_width` wide; at 0 the picture alone. The height never changes.
        (A zoom of a long storyboard sizes only the cards in view: see CardRow.)"""
        self.picture.rect = self._picture_rect(thumb_width)
        self.layout().setContentsMargins(CARD_PADDING + thumb_width + 10, CARD_PADDING, CARD_PADDING, CARD_PADDING)
        self.thumb_width, self.text_width = thumb_width, text_width
        if self.column.isHidden() == (text_width > 0):  # one widget: nine shown or hidden one by one cost ms a card
            self.column.setVisible(text_width > 0)
        self.setFixedSize(card_size(thumb_width, text_width))
        if not self.regenerate.isHidden():  # a hidden one is placed when it is shown: a zoom resizes 120 cards
            self._place_regenerate()
        self._show_regenerate()

    @staticmethod
    def _picture_rect(thumb_width: int) -> QRect:
        return QRect(FRAME_WIDTH + CARD_PADDING, FRAME_WIDTH + CARD_PADDING, thumb_width, THUMB_HEIGHT)

    def _place_regenerate(self) -> None:
        """Centre the Regenerate button on the foot of the picture: its label where the picture is wide
        enough, its icon alone where a zoom made it narrow, nothing where even that does not fit."""
        button, picture = self.regenerate, self.picture.rect
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.ensurePolished()
        hint = button.sizeHint()
        if hint.width() + 8 > picture.width():
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            hint = button.sizeHint()
        self._regenerate_fits = hint.width() + 4 <= picture.width()
        button.setGeometry(CARD_PADDING + (picture.width() - hint.width()) // 2,
                           CARD_PADDING + picture.height() - hint.height() - 6, hint.width(), hint.height())

    @property
    def shot_id(self) -> str:
        return self.model.shot_id if self.model else ""

    @property
    def chunk_id(self) -> str:
        return self.model.chunk_id if self.model else ""

    def show_model(self, model: CardModel) -> None:
        old, self.model = self.model, model
        if old is None or (old.index, old.time_range, old.shot_name) != (model.index, model.time_range,
                                                                          model.shot_name):
            self.index_label.setText(str(model.index + 1))
            self.index_label.setToolTip(f"Chunk {model.index + 1} of {model.shot_name}")
            self.time_label.setText(model.time_range)
        badge = STATE_TEXT[model.state]
        if model.state == DENOISING and model.progress is not None:  # before its first step: "Starting", not "0%"
            badge = f"{round(model.progress * 100)}%" if model.progress > 0 else STARTING
        self.badge.show_state(model.state, badge)
        self.badge.setToolTip(STATE_TIPS[model.state])
        self._show_draft_badge(model.draft)
        self.prompt.show_text(model.prompt)
        if self._shot_prompt:
            self._show_prompt_tip()
        self.seed.show_seed(model.seed)
        blocked = self.lock.blockSignals(True)
        self.lock.setChecked(model.seed_locked)
        self.lock.blockSignals(blocked)
        self.lock.setIcon(glyph("lock" if model.seed_locked else "unlock"))
        self.lock.setToolTip("Seed locked: kept when this chunk is regenerated (click to unlock)"
                             if model.seed_locked else "Seed unlocked: a new seed is drawn when this chunk is "
                                                       "regenerated (click to lock)")
        self.picture.show_model(model)
        self._show_regenerate()
        self.setToolTip("" if model.state not in (STALE, DONE) else STATE_TIPS[model.state])

    def _show_draft_badge(self, draft: bool) -> None:
        if self.draft_badge.isHidden() == draft:  # in the text column: shown with it
            self.draft_badge.setVisible(draft)

    def _show_regenerate(self) -> None:
        state = self.model.state if self.model is not None else ""
        wanted = state in (STALE, DAMAGED)
        if wanted:
            tip = ("Generate this chunk and the rest of its shot again with the seeds on their cards "
                   "(Generate From Here); the old frames are kept as a take") if state == STALE else STATE_TIPS[DAMAGED]
            if self.regenerate.toolTip() != tip:
                self.regenerate.setToolTip(tip)
            set_style_property(self.regenerate, "state", state)
            if self.regenerate.isHidden():
                self._place_regenerate()  # polished by now: its size is the style sheet's
            wanted = self._regenerate_fits
        if wanted == self.regenerate.isHidden():
            self.regenerate.setVisible(wanted)

    def set_selected(self, selected: bool) -> None:
        if selected != self._selected:
            self._selected = selected
            self.update()

    def is_selected(self) -> bool:
        return self._selected

    # The frame and the picture, painted here rather than through the style sheet and a child widget: a zoom out at
    # 1920x1080 repaints 41 cards at once, and those two were about 2 and 2.8 ms of that repaint's 6.7.
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        key = (self.width(), self.height(), self.devicePixelRatioF(), self._selected or self.underMouse(), self._selected)
        painter.drawPixmap(0, 0, _frame_layer(key))
        self.picture.paint(painter)
        painter.end()

    def enterEvent(self, event) -> None:
        self.update()  # the frame's hover colour
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:
        self.update()
        super().leaveEvent(event)

    # Mouse: click selects, drag reorders, right click opens the menu.
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
            self.clicked.emit(self)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if (self._press is not None and event.buttons() & Qt.MouseButton.LeftButton
                and (event.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance()):
            self._press = None
            self.dragRequested.emit(self)
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        self._press = None
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:
        self.activated.emit(self)
        self.menuRequested.emit(self, event.globalPos())
