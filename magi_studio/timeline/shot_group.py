"""ShotGroup: one shot on the timeline — a header (name, shot prompt, how it starts, its take) over its row of cards.

The shot prompt field holds what every chunk of the shot shares (subject, setting, style); the cards
hold what each chunk adds, and each card's tooltip shows the joined text the engine receives.

A shot whose cards are narrower than that header (one chunk, or a few at a small zoom) gets a compact
header instead, so that a storyboard of short shots is not mostly headers: its name, its shot prompt in
the room its cards leave, and its actions, on the same one line (every shot's cards stay on one level).
Clicking the prompt (or Tab into it) expands the full header while the header has the focus — prompt at
its full width, negative prompt, start — and it becomes compact again when the focus leaves it.

A long shot's header keeps to the left edge of the storyboard's visible part while the shot is in view (as an
editor's clip names do), and goes with the shot's end when that leaves it less room than it needs. While it is
scrolled, what keeps to the edge is the header's picture (StuckHeader: one widget that paints a pixmap of the
fields, drawn ahead), so that a scroll step paints no field again; a click on it puts the fields themselves there
(HeaderLayout moves them along their line) and hands the click to the one under it, until the focus leaves them.
No card moves for any of it.

Like the cards, a group only shows what the timeline derived from the document (`show_shot`) and
sends gestures back as signals; the timeline turns them into commands.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap, QRegion
from PySide6.QtWidgets import (QApplication, QComboBox, QFrame, QHBoxLayout, QLineEdit, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from magi_engine.requests import MAX_PROMPT_CHARS
from magi_studio.theme import icon
from magi_studio.timeline.card import ChunkCard
from magi_studio.timeline.card_row import CardRow
from magi_studio.timeline.glyphs import glyph
from magi_studio.timeline.prompt_words import PromptWords
from magi_studio.timeline.style import (CARD_SPACING, CARD_PADDING, SHOT_BACKGROUND, SHOT_BACKGROUND_CURRENT, THUMB_HEIGHT,
                                       set_style_property)

#: (value, label, tip) of the start modes, in the combo's order (model.START_MODES).
START_CHOICES = (
    ("text", "From text", "The shot's first chunk is generated from its prompt alone"),
    ("image", "From image", "The shot's reference image is its first frame (image-to-video)"),
    ("continue", "Continues", "The shot continues the previous shot's last chunks (video continuation)"),
)


#: The shot prompt field's widest (the cards' tooltips show the whole joined text); its narrowest shows its
#: whole placeholder, about 40 characters typed.
SHOT_PROMPT_WIDTH = 360
#: Widths of the negative prompt field.
NEGATIVE_PROMPT_MIN_WIDTH, NEGATIVE_PROMPT_WIDTH = 70, 220
#: The narrowest a compact header's prompt and name fields get (a shot at the smallest zoom): "Shot 12" whole.
COMPACT_PROMPT_MIN_WIDTH, COMPACT_NAME_MIN_WIDTH = 36, 60
PROMPT_PLACEHOLDER, COMPACT_PROMPT_PLACEHOLDER = "Shot prompt: subject, setting, style…", "Shot prompt…"
NEGATIVE_TIP = ("What no chunk of this shot should show: the model's guidance steers away from it "
                "(in place of its empty caption)")
#: The header kept in view draws its picture ahead a field at a time, this far apart (a zoom's resizes come closer: the
#: picture waits for the last), so that its slices never add up with a scroll's repaint.
STUCK_HEADER_SLICE_MS = 40
NO_GUIDANCE_TIP = ("The loaded model is distilled: it has no guidance pass, so a negative prompt has no effect. "
                   "A base model (studio-mini, 4.5B_base, 24B_base) uses it.")


@dataclass(frozen=True)
class ShotModel:
    shot_id: str
    name: str
    start: str
    #: "Take 2 of 3" (empty when the shot has no take yet).
    take_text: str
    #: The take previewed in the player instead of the active one ("" when none).
    preview_text: str
    current: bool  # holds the selection
    has_reference: bool
    #: The shot's own prompt, which every chunk's prompt extends.
    prompt: str = ""
    #: What no chunk of the shot should show.
    negative_prompt: str = ""
    #: Does the loaded model use guidance (base models)? Distilled ones cannot use a negative prompt.
    guidance: bool = True


def _header_part(model: ShotModel) -> tuple:
    """What a shot's header fields show (the picture kept in view is drawn again when it changes)."""
    return (model.name, model.start, model.take_text, model.preview_text, model.prompt, model.negative_prompt,
            model.guidance)


class ShotGroup(QFrame):
    renamed = Signal(object, str)
    #: (group, text) while the shot prompt is typed; promptLeft when the field is left (the burst ends).
    promptEdited = Signal(object, str)
    promptLeft = Signal(object)
    #: (group, text) while the negative prompt is typed (promptLeft ends its burst too).
    negativeEdited = Signal(object, str)
    startChosen = Signal(object, str)
    menuRequested = Signal(object, QPoint)
    addChunkClicked = Signal(object)
    takesClicked = Signal(object)
    clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ShotGroup")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.model: ShotModel | None = None
        self.cards: list[ChunkCard] = []

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("ShotName")
        self.name_edit.setAcceptDrops(False)
        self.name_edit.setAccessibleName("Shot name")
        self.name_edit.setToolTip("Shot name (F2 to rename)")
        self.name_edit.editingFinished.connect(self._on_name_edited)
        self.name_edit.textEdited.connect(lambda text: self._fit_name())
        self._name_width, self._room = 60, 0  # the name's own width; the width of the cards (fit_header)
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setObjectName("ShotPrompt")
        self.prompt_edit.setAcceptDrops(False)
        self.prompt_edit.setAccessibleName("Shot prompt")
        self.prompt_edit.setPlaceholderText(PROMPT_PLACEHOLDER)
        self.prompt_edit.setToolTip("What every chunk of this shot shares; each chunk's prompt adds to it, "
                                    "and the engine receives the two joined")
        self.prompt_edit.setMaxLength(MAX_PROMPT_CHARS)
        # Wide enough to type in even in a one-chunk shot (whose header then is wider than its cards: the
        # group takes the header's width), at most SHOT_PROMPT_WIDTH in a long one, so the controls after it
        # stay near the shot's start.
        placeholder = self.prompt_edit.fontMetrics().horizontalAdvance(self.prompt_edit.placeholderText())
        self._prompt_min_width = min(SHOT_PROMPT_WIDTH, placeholder + 32)  # + padding, frame, Qt's margins
        self.prompt_edit.setMinimumWidth(self._prompt_min_width)
        self.prompt_edit.setMaximumWidth(SHOT_PROMPT_WIDTH)
        self.prompt_edit.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.prompt_edit.textEdited.connect(lambda text: self.promptEdited.emit(self, text))
        self.prompt_edit.editingFinished.connect(lambda: self.promptLeft.emit(self))
        self.prompt_words = PromptWords(self.prompt_edit)  # the model's unknown words (TimelineView sets it)
        self.negative_edit = QLineEdit()
        self.negative_edit.setObjectName("ShotNegativePrompt")
        self.negative_edit.setAcceptDrops(False)
        self.negative_edit.setAccessibleName("Negative prompt")
        self.negative_edit.setPlaceholderText("Not: …")
        self.negative_edit.setMaxLength(MAX_PROMPT_CHARS)
        self.negative_edit.setMinimumWidth(NEGATIVE_PROMPT_MIN_WIDTH)
        self.negative_edit.setMaximumWidth(NEGATIVE_PROMPT_WIDTH)
        self.negative_edit.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.negative_edit.setToolTip(NEGATIVE_TIP)
        self.negative_edit.textEdited.connect(lambda text: self.negativeEdited.emit(self, text))
        self.negative_edit.editingFinished.connect(lambda: self.promptLeft.emit(self))
        self.start_box = QComboBox()
        self.start_box.setObjectName("ShotStart")
        self.start_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        for value, label, tip in START_CHOICES:
            self.start_box.addItem(label, value)
            self.start_box.setItemData(self.start_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.start_box.setItemIcon(1, icon("image"))
        self.start_box.activated.connect(lambda i: self.startChosen.emit(self, self.start_box.itemData(i)))
        self.take_chip = QToolButton()
        self.take_chip.setObjectName("ShotChip")
        self.take_chip.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.take_chip.setToolTip("This shot's takes: compare, preview and switch them")
        self.take_chip.clicked.connect(lambda: self.takesClicked.emit(self))
        self.more = QToolButton()
        self.more.setIcon(glyph("more"))
        self.more.setIconSize(QSize(16, 16))
        self.more.setAutoRaise(True)
        self.more.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.more.setToolTip("Shot actions")
        self.more.setAccessibleName("Shot actions")
        self.more.clicked.connect(
            lambda: self.menuRequested.emit(self, self.more.mapToGlobal(QPoint(0, self.more.height()))))
        self.add_button = QToolButton()
        self.add_button.setObjectName("AddChunkButton")
        self.add_button.setIcon(glyph("plus"))
        self.add_button.setIconSize(QSize(18, 18))
        self.add_button.setFixedSize(30, THUMB_HEIGHT + 2 * CARD_PADDING)
        self.add_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.add_button.setToolTip("Add a chunk at the end of this shot")
        self.add_button.setAccessibleName("Add chunk")
        self.add_button.clicked.connect(lambda: self.addChunkClicked.emit(self))

        # Left-aligned, and kept in view: a long shot wider than the view shows its controls where it is seen.
        self.header = header = HeaderLayout()
        header.setSpacing(6)
        header.addWidget(self.name_edit)
        header.addWidget(self.prompt_edit, 2)
        header.addWidget(self.negative_edit, 1)
        header.addWidget(self.start_box)
        header.addWidget(self.take_chip)
        self._spacer_index = header.count()  # the stretch before the actions button (gives way when compact)
        header.addStretch(1)
        header.addWidget(self.more)  # at the header's end: in a compact header, at the shot's right edge
        self.compact = False
        self._header_strut = False
        self._editing = False  # a compact header expanded while one of its fields has the focus
        for field in (self.prompt_edit, self.negative_edit, self.start_box):
            field.installEventFilter(self)
        self.name_edit.installEventFilter(self)  # its font: the timeline's bold one arrives once the group is placed
        self.card_row = CardRow()
        self.row = QHBoxLayout()
        self.row.setSpacing(CARD_SPACING)
        self.row.addWidget(self.card_row)
        self.row.addWidget(self.add_button)
        self.row.addStretch(1)  # the cards start at the shot's start when its header is the wider
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addLayout(self.row)
        self.stuck_header = StuckHeader(self)  # above the fields
        self.name_edit.editingFinished.connect(self._restick)

    @property
    def shot_id(self) -> str:
        return self.model.shot_id if self.model else ""

    def set_cards(self, cards: list[ChunkCard]) -> None:
        """Show exactly `cards`, in order (cards are reused between syncs, so only moves happen here)."""
        if cards != self.cards:
            self.card_row.set_cards(cards)
        self.cards = list(cards)
        self.fit_header()

    def set_card_width(self, thumb: int, text: int) -> None:
        """The cards' picture and text column widths (a zoom): the shot's width now, its cards as they are seen
        (CardRow); the header compact if the cards are narrower than the full one."""
        if self.card_row.set_card_width(thumb, text):
            self.fit_header()

    # Compact header -----------------------------------------------------------------------------
    def full_header_width(self) -> int:
        """The narrowest the full header can be (its fields at their minimum widths)."""
        widths = [self._name_width,
                  self._prompt_min_width, NEGATIVE_PROMPT_MIN_WIDTH, self.start_box.sizeHint().width(),
                  self.more.sizeHint().width()]
        if self.model is not None and (self.model.preview_text or self.model.take_text):
            widths.append(self.take_chip.sizeHint().width())
        return sum(widths) + self.header.spacing() * (len(widths) - 1)

    def fit_header(self) -> None:
        """Compact when the full header would be wider than the cards (and no header field is being edited);
        called when the cards change and after a zoom."""
        # The cards (at the zoom's width, placed or not) and "+".
        cards = len(self.cards) * self.card_row.pitch + self.add_button.minimumWidth()
        self._room = cards
        self._set_compact(not self._editing and self.full_header_width() > cards)
        self._fit_name()

    def _set_compact(self, compact: bool) -> None:
        if compact == self.compact:
            return
        self.compact = compact
        self.header.setStretch(self._spacer_index, 0 if compact else 1)  # compact: the prompt takes the room
        self.prompt_edit.setMinimumWidth(COMPACT_PROMPT_MIN_WIDTH if compact else self._prompt_min_width)
        self.prompt_edit.setMaximumWidth(16777215 if compact else SHOT_PROMPT_WIDTH)
        self.prompt_edit.setPlaceholderText(COMPACT_PROMPT_PLACEHOLDER if compact else PROMPT_PLACEHOLDER)
        self.negative_edit.setVisible(not compact)
        self.start_box.setVisible(not compact)
        self._show_chip()
        self._show_prompt_tip()
        set_style_property(self, "compact", compact)
        self.stuck_header.forget()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.name_edit:
            if event.type() == QEvent.Type.FontChange:  # measured in the font it is drawn in, not the plain one
                self.fit_header()
            return False
        if event.type() == QEvent.Type.FocusIn and self.compact:
            self._editing = True  # the full header while it is edited: the prompt at its width, Not: and start
            self._set_compact(False)
        elif event.type() == QEvent.Type.FocusOut:
            if watched is not self.start_box:  # left: the field shows its text from the start, not its end
                QTimer.singleShot(0, watched, lambda field=watched: field.hasFocus() or field.setCursorPosition(0))
            if self._editing:  # where the focus went is known after this event (no call once the group is gone)
                QTimer.singleShot(0, self, self._after_focus_out)
            self._restick()
        return False

    def _after_focus_out(self) -> None:
        focus = QApplication.focusWidget()
        if focus is not None and focus in (self.prompt_edit, self.negative_edit, self.start_box):
            return
        if self.start_box.view().isVisible():  # its list is open: still choosing
            return
        self._editing = False
        self.fit_header()

    def _show_chip(self) -> None:
        chip = (self.model.preview_text or self.model.take_text) if self.model is not None else ""
        self.take_chip.setVisible(bool(chip) and not self.compact)

    def _show_prompt_tip(self) -> None:
        """A compact prompt field may show only the start of the prompt: its tooltip says all of it."""
        tip = ("What every chunk of this shot shares; each chunk's prompt adds to it, and the engine receives "
               "the two joined")
        prompt = self.model.prompt if self.model is not None else ""
        self.prompt_edit.setToolTip(f"Shot prompt: {prompt}\n\nClick to edit it at full width." if self.compact
                                    and prompt else tip)

    def show_shot(self, model: ShotModel) -> None:
        old, self.model = self.model, model
        if old is None or _header_part(old) != _header_part(model):
            self.stuck_header.forget()
        if not self.name_edit.hasFocus() and self.name_edit.text() != model.name:
            self.name_edit.setText(model.name)
            self.name_edit.setCursorPosition(0)
            self._fit_name()
        if self.prompt_edit.text() != model.prompt:
            position = self.prompt_edit.cursorPosition()  # an undo while typing keeps the caret near
            self.prompt_edit.setText(model.prompt)
            self.prompt_edit.setCursorPosition(min(position, len(model.prompt)) if self.prompt_edit.hasFocus() else 0)
        if self.negative_edit.text() != model.negative_prompt:
            position = self.negative_edit.cursorPosition()
            self.negative_edit.setText(model.negative_prompt)
            self.negative_edit.setCursorPosition(min(position, len(model.negative_prompt))
                                                 if self.negative_edit.hasFocus() else 0)
        if old is None or old.guidance != model.guidance:
            # Disabled, not hidden: a director sees why it does nothing rather than wondering.
            self.negative_edit.setEnabled(model.guidance)
            self.negative_edit.setToolTip(NEGATIVE_TIP if model.guidance else NO_GUIDANCE_TIP)
        for card in self.cards:
            card.show_shot_prompt(model.prompt)
        index = next(i for i, (value, _, _) in enumerate(START_CHOICES) if value == model.start)
        if self.start_box.currentIndex() != index:
            self.start_box.setCurrentIndex(index)
        self.start_box.setToolTip(START_CHOICES[index][2])
        chip = model.preview_text or model.take_text
        self.take_chip.setText(chip)
        self._show_chip()
        if old is None or old.prompt != model.prompt or (old.take_text or old.preview_text) != chip:
            self._show_prompt_tip()
            self.fit_header()  # the chip's width counts in the full header's
        set_style_property(self.take_chip, "preview", bool(model.preview_text))
        set_style_property(self, "current", model.current)
        if old is None or old.current != model.current:
            self.update()

    def _fit_name(self) -> None:
        width = self.name_edit.fontMetrics().horizontalAdvance(self.name_edit.text() or "Shot") + 22
        self._name_width = max(60, min(220, width))
        # A compact header's name gives way to its prompt, down to a few letters (its tooltip has the rest).
        spare = self._room - COMPACT_PROMPT_MIN_WIDTH - self.more.sizeHint().width() - 2 * self.header.spacing()
        self.name_edit.setFixedWidth(max(COMPACT_NAME_MIN_WIDTH, min(self._name_width, spare)) if self.compact
                                     else self._name_width)

    def start_rename(self) -> None:
        self.name_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.name_edit.selectAll()

    def _on_name_edited(self) -> None:
        name = self.name_edit.text().strip()
        if self.model is None:
            return
        if not name:
            self.name_edit.setText(self.model.name)  # a shot always has a name
        elif name != self.model.name:
            self.renamed.emit(self, name)

    def showEvent(self, event) -> None:
        if not self._header_strut:  # styled by now: a compact header keeps the full one's height (cards level)
            self._header_strut = True
            fields = (self.name_edit, self.prompt_edit, self.negative_edit, self.start_box, self.take_chip, self.more)
            for field in fields:
                field.ensurePolished()
            self.header.addStrut(max(field.sizeHint().height() for field in fields))
        super().showEvent(event)

    # Kept in view -----------------------------------------------------------------------------
    def stick_header(self) -> None:
        """Keep the header at the left edge of the visible part of the storyboard, or as near as the shot allows: its
        picture, or the fields themselves while one of them is being edited (the strip calls it as it scrolls; the
        group as it moves or resizes)."""
        strip = self.parentWidget()
        if strip is None:
            return
        visible_left = -strip.x() - self.x()  # in the scroll area the strip is at minus the distance scrolled
        if visible_left <= 0 or visible_left >= self.width():  # its start in view, or all of it gone to the left
            self.header.stick(0)
            if not self.stuck_header.isHidden():
                self.stuck_header.hide()
            return
        if self._editing_stuck():
            self.stuck_header.hide()
            self.header.stick(visible_left)
            return
        self.header.stick(0)
        offset = self.header.offset_for(visible_left)
        if not offset:
            if not self.stuck_header.isHidden():
                self.stuck_header.hide()
            return
        line = self.header.line()
        width = self.stuck_header.picture_width() or self._fields_width()
        geometry = QRect(offset, line.top(), self.name_edit.x() + width, line.height())
        if self.stuck_header.geometry() != geometry:
            self.stuck_header.setGeometry(geometry)
        if self.stuck_header.isHidden():
            self.stuck_header.show()

    def _fields_width(self) -> int:
        """From the shot's name to the last field shown (its take), where they are laid out."""
        return max(field.geometry().right() for field in self._fields() if not field.isHidden()) + 1 - \
            self.name_edit.x()

    def _fields(self) -> tuple[QWidget, ...]:
        return self.name_edit, self.prompt_edit, self.negative_edit, self.start_box, self.take_chip

    def can_stick(self) -> bool:
        """Whether the shot is wider than its header needs: the only ones whose header is kept in view."""
        return self.header.offset_for(self.width()) > 0

    def _editing_stuck(self) -> bool:
        return any(field.hasFocus() for field in self._fields()) or self.start_box.view().isVisible()

    def _restick(self) -> None:
        """After the focus moved (where to is known once this event is over): the fields, or their picture, at the edge."""
        QTimer.singleShot(0, self, self._repaint_stuck)

    def _repaint_stuck(self) -> None:
        self.stick_header()
        self.stuck_header.forget(now=True)  # what was typed in the fields, shown at once

    def edit_stuck_header(self, pos: QPoint) -> None:
        """A click at `pos` (the group's coordinates) on the header's picture: the fields take its place, and the one
        under the click gets it (a shot prompt to type in, the start mode's list, the takes)."""
        self.stuck_header.hide()
        strip = self.parentWidget()
        self.header.stick(min(max(0, -strip.x() - self.x()), self.width()) if strip is not None else 0)
        field = next((f for f in self._fields() if not f.isHidden() and f.geometry().contains(pos)), None)
        if field is self.take_chip:
            self._restick()
            self.takesClicked.emit(self)
        elif field is self.start_box:
            self.start_box.setFocus(Qt.FocusReason.MouseFocusReason)
            self.start_box.showPopup()
        elif isinstance(field, QLineEdit):
            field.setFocus(Qt.FocusReason.MouseFocusReason)
            field.setCursorPosition(field.cursorPositionAt(pos - field.pos()))
        else:
            self._restick()
            self.clicked.emit(self)

    def moveEvent(self, event) -> None:
        super().moveEvent(event)
        self.stick_header()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # Laid out at the new size already (a layout runs before its widget's resize event): long enough now to keep
        # its header in view, or its fields of other widths (a zoom to a shot narrower than its header's best).
        if self.can_stick() and self.stuck_header.picture_width() != self._fields_width():
            self.stuck_header.forget()
        self.stick_header()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self)
        super().mousePressEvent(event)

    def contextMenuEvent(self, event) -> None:
        self.menuRequested.emit(self, event.globalPos())


class HeaderLayout(QHBoxLayout):
    """A shot header's layout: its fields `offset` px right of where the group's layout puts them (`stick`: the visible
    part of a long shot starts there), as far as the room right of them holds them at their full widths. Its size
    hints are a plain row's: the group is as wide as ever, and moving the fields lays out nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0
        self._wanted = 0
        self._given = QRect()  # the rectangle the group's layout gave it
        self._full_width: int | None = None

    def stick(self, visible_left: int) -> None:
        """The visible part of the shot starts `visible_left` px right of the shot's start (0: all of it in view)."""
        if visible_left == self._wanted:
            return
        self._wanted = visible_left
        if self._given.isValid():
            self.setGeometry(self._given)

    def offset_for(self, visible_left: int) -> int:
        """How far right the fields go when the visible part starts `visible_left` px right of the shot's start."""
        return max(0, min(visible_left, self._given.width() - self.full_width())) if visible_left > 0 else 0

    def setGeometry(self, rect: QRect) -> None:
        self._given = QRect(rect)
        self.offset = self.offset_for(self._wanted)
        super().setGeometry(rect.adjusted(self.offset, 0, 0, 0))

    def line(self) -> QRect:
        """Where the group's layout put the header (the fields start there when the shot's start is in view)."""
        return QRect(self._given)

    def invalidate(self) -> None:
        self._full_width = None  # a field shown or hidden, a new name: measured again
        super().invalidate()

    def full_width(self) -> int:
        """The fields at their full widths (the ones that stretch at their widest) with the stretch before the actions
        button empty: the least room the fields keep when they move along the line."""
        if self._full_width is None:
            widths = []
            for index in range(self.count()):
                widget = self.itemAt(index).widget()
                if widget is not None and not widget.isHidden():
                    widths.append(widget.maximumWidth() if self.stretch(index) else
                                  max(widget.minimumWidth(), min(widget.maximumWidth(), widget.sizeHint().width())))
            self._full_width = sum(widths) + self.spacing() * (len(widths) - 1)
        return self._full_width


class StuckHeader(QWidget):
    """The header's picture at the left edge of the visible part of a long shot: its fields drawn into a pixmap ahead, a
    field at a time, STUCK_HEADER_SLICE_MS apart once they stop changing (all five took 2-20 ms), again only when they
    change; a scroll step moves it and paints that pixmap over the shot's own background. A click hands over to the
    fields themselves (ShotGroup.edit_stuck_header)."""

    def __init__(self, group: ShotGroup) -> None:
        super().__init__(group)
        self.setObjectName("StuckHeader")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.group = group
        self._picture: QPixmap | None = None
        self._stale = True  # the fields changed since it was drawn
        self._drawing: tuple[QPixmap, list[QWidget]] | None = None  # the next picture, and the fields left to draw
        self._ahead = QTimer(self)
        self._ahead.setObjectName("StuckHeaderAhead")
        self._ahead.setSingleShot(True)
        self._ahead.setInterval(STUCK_HEADER_SLICE_MS)
        self._ahead.timeout.connect(self._draw_next)
        self.hide()

    def forget(self, now: bool = False) -> None:
        """The fields changed (text, state, widths): drawn again ahead if the shot is long enough to need it (until
        then the old picture stands), or (`now`: what was just typed) at its next paint."""
        self._drawing, self._stale = None, True
        if now:
            self._ahead.stop()
            self._picture = None
            self.update()
        elif self.group.can_stick():
            self._ahead.start()
        else:
            self._ahead.stop()

    def picture_width(self) -> int | None:
        """The width of the fields it shows; None when it has no picture of them as they are (drawn ahead by now)."""
        if self._picture is None or self._stale and not self._ahead.isActive() and self._drawing is None:
            return None
        return round(self._picture.width() / self._picture.devicePixelRatio())

    def paintEvent(self, event) -> None:
        group = self.group
        if self._picture is None:  # scrolled there before it was drawn ahead: now, at once
            self._drawing = None
            while self._picture is None and self._draw_next():
                pass
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(SHOT_BACKGROUND_CURRENT if group.model is not None and group.model.current
                                             else SHOT_BACKGROUND))
        if self._picture is not None:
            painter.drawPixmap(group.name_edit.x(), 0, self._picture)  # where the fields are when they are here
        painter.end()

    def _draw_next(self) -> bool:
        """Draw one more field of the next picture; False when there is nothing to draw now."""
        group = self.group
        if group.header.offset:  # the fields themselves are at the edge, being edited: after that
            return False
        if self._drawing is None:
            ratio = self.devicePixelRatioF()
            picture = QPixmap(round(group._fields_width() * ratio), round(group.header.line().height() * ratio))
            picture.setDevicePixelRatio(ratio)
            picture.fill(Qt.GlobalColor.transparent)
            self._drawing = picture, [field for field in group._fields() if not field.isHidden()]
        picture, fields = self._drawing
        field = fields.pop(0)
        field.render(picture, QPoint(field.x() - group.name_edit.x(), field.y() - group.header.line().top()), QRegion(),
                     QWidget.RenderFlag.DrawChildren)
        if fields:
            self._ahead.start()
        else:
            self._picture, self._drawing, self._stale = picture, None, False
            self.update()
        return True

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.group.edit_stuck_header(self.mapTo(self.group, event.position().toPoint()))
        else:
            super().mousePressEvent(event)

    def contextMenuEvent(self, event) -> None:
        self.group.menuRequested.emit(self.group, event.globalPos())
