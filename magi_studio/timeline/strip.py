"""StoryboardStrip: the scrolling row of shot groups, with the time ruler, the playhead, keys and drops.

The strip lays the groups out left to right under a ruler that marks every card's 24 frames (a tick
per latent frame, 4 pixel frames) and its start time; the playhead is drawn over the cards by a
transparent overlay. It owns the timeline's keyboard (Left/Right/Home/End select, Ctrl+Left/Right
move, Delete, Enter edits the prompt) and its drops: a chunk card dragged to a gap between cards,
or an image file from the file manager dropped on a shot. It reports both as signals; the timeline
decides what they mean for the document.
"""

from __future__ import annotations

from PySide6.QtCore import QLine, QMimeData, QPoint, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QScrollArea, QStyle, QStyleOption, QWidget

from magi_engine.config import CHUNK_FRAMES
from magi_studio.theme import palette
from magi_studio.timeline.card import ChunkCard
from magi_studio.timeline.card_row import CardRow
from magi_studio.timeline.glyphs import glyph
from magi_studio.timeline.shot_group import ShotGroup
from magi_studio.timeline.style import RULER_HEIGHT, set_style_property, time_text

CHUNK_MIME = "application/x-magi-studio-chunk"
#: Keys the strip takes from the window's playback shortcuts while it has focus (they select chunks).
_OWN_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End}


def chunk_mime(shot_id: str, chunk_id: str) -> QMimeData:
    """What a dragged card carries (tests build drops from it too)."""
    mime = QMimeData()
    mime.setData(CHUNK_MIME, f"{shot_id}\n{chunk_id}".encode())
    return mime


def dragged_chunk(mime: QMimeData) -> tuple[str, str] | None:
    if not mime.hasFormat(CHUNK_MIME):
        return None
    shot_id, _, chunk_id = bytes(mime.data(CHUNK_MIME)).decode().partition("\n")
    return shot_id, chunk_id


def dropped_files(mime: QMimeData) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class StoryboardScroll(QScrollArea):
    """The strip's scroll area. A zoom places the cards out of view later (CardRow), so a card that is scrolled to
    because a field of it takes the keyboard focus (Tab) or through ensureWidgetVisible is placed first: until then
    its widget is where an earlier zoom drew it, and the view went there."""

    def ensureWidgetVisible(self, child: QWidget, xmargin: int = 50, ymargin: int = 50) -> None:
        card = child
        while card is not None and not isinstance(card, ChunkCard):
            card = card.parentWidget()
        if card is not None and isinstance(card.parentWidget(), CardRow):
            card.parentWidget().place(card)
        super().ensureWidgetVisible(child, xmargin, ymargin)

    def focusNextPrevChild(self, next_: bool) -> bool:
        # QScrollArea's own calls its C++ ensureWidgetVisible, not the one above.
        if not QWidget.focusNextPrevChild(self, next_):
            return False
        focused = self.focusWidget()
        if focused is not None:
            self.ensureWidgetVisible(focused)
        return True


class _Overlay(QWidget):
    """Drawn above the cards: the playhead line and the drop marker of a dragged card."""

    def __init__(self, strip: "StoryboardStrip") -> None:
        super().__init__(strip)
        self.strip = strip
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x = self.strip.playhead_x()
        if x is not None:
            painter.setPen(QPen(QColor(palette.DANGER), 1.6))
            painter.drawLine(QPoint(x, RULER_HEIGHT - 8), QPoint(x, self.height() - 4))
            head = QPainterPath()
            head.moveTo(x - 5, 2)
            head.lineTo(x + 5, 2)
            head.lineTo(x + 5, 9)
            head.lineTo(x, RULER_HEIGHT - 8)
            head.lineTo(x - 5, 9)
            head.closeSubpath()
            painter.fillPath(head, QColor(palette.DANGER))
        marker = self.strip.drop_marker
        if marker is not None:
            painter.fillRect(QRect(marker.x() - 2, marker.y(), 4, marker.height()), QColor(palette.CYAN))
        painter.end()


class StoryboardStrip(QWidget):
    #: "previous", "next", "first", "last", "move-left", "move-right", "delete", "edit"
    keyCommand = Signal(str)
    #: (shot id, chunk id, target shot id, gap index in the target shot)
    chunkDropped = Signal(str, str, str, int)
    #: (shot id, local file paths) dropped on a shot
    filesDropped = Signal(str, list)
    newShotClicked = Signal()
    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StoryboardStrip")
        # Opaque: it paints its own (style sheet) background, so Qt neither paints the panels behind it on every
        # repaint nor repaints it whole when it scrolls: a scroll step moves the pixels already drawn and paints
        # only the strip that comes into view (a whole repaint of the dock took 8-10 ms of CPU per wheel step).
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setAccessibleName("Storyboard")
        self.groups: list[ShotGroup] = []
        self.fps = 24
        self.playhead_frame: int | None = None
        self.drop_marker: QRect | None = None
        self._drop_group: ShotGroup | None = None
        self._ruler: tuple[QFont, QFont, int] | None = None  # (widget font, ruler font, widest label's width)

        self.new_shot_button = QPushButton(" New shot")
        self.new_shot_button.setObjectName("NewShotButton")
        self.new_shot_button.setIcon(glyph("new-shot"))
        self.new_shot_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.new_shot_button.setToolTip("Start a new shot at the end of the storyboard")
        self.new_shot_button.clicked.connect(self.newShotClicked)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(12, RULER_HEIGHT + 4, 12, 8)
        self.row.setSpacing(10)
        self.row.addWidget(self.new_shot_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.row.addStretch(1)
        self.overlay = _Overlay(self)

    # Layout -----------------------------------------------------------------------------------
    def set_groups(self, groups: list[ShotGroup]) -> None:
        if groups == self.groups:
            return
        for group in self.groups:
            if group not in groups:
                self.row.removeWidget(group)
        for position, group in enumerate(groups):
            if self.row.indexOf(group) != position:
                self.row.removeWidget(group)
                self.row.insertWidget(position, group, 0, Qt.AlignmentFlag.AlignTop)
                group.show()
        self.groups = list(groups)
        self.overlay.raise_()  # groups created since are stacked above it otherwise
        self.update()
        self.overlay.update()

    def cards(self) -> list[ChunkCard]:
        return [card for group in self.groups for card in group.cards]

    def card_rect(self, card: ChunkCard) -> QRect:
        """The card's rectangle in strip coordinates at the current zoom (where it is drawn once it is in view:
        a zoom places the cards out of view later, see CardRow)."""
        row = card.parentWidget()
        group = row.parentWidget() if isinstance(row, CardRow) else None
        if group is not None and group.parentWidget() is self:  # the usual case: arithmetic and two offsets
            return row.card_rect(row.index_of(card)).translated(group.pos() + row.pos())
        return QRect(card.mapTo(self, QPoint(0, 0)), card.size())

    def nearest_card(self, x: int) -> ChunkCard | None:
        """The card whose centre is nearest strip x."""
        best, distance = None, None
        for group in self.groups:
            row = group.card_row
            if not group.cards:
                continue
            left = group.x() + row.x()
            index = min(max(round((x - left - row.card_size.width() / 2) / row.pitch), 0), len(group.cards) - 1)
            gap = abs(left + row.card_rect(index).center().x() - x)
            if distance is None or gap < distance:
                best, distance = group.cards[index], gap
        return best

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.overlay.setGeometry(self.rect())
        self.overlay.raise_()

    def moveEvent(self, event) -> None:
        super().moveEvent(event)  # the scroll area moves the strip as it scrolls: the shots' headers keep in view
        for group in self.groups:
            group.stick_header()

    # Ruler and playhead -----------------------------------------------------------------------
    def set_playhead(self, frame: int | None) -> None:
        if frame != self.playhead_frame:
            self.playhead_frame = frame
            self.overlay.update()

    def playhead_x(self) -> int | None:
        cards = self.cards()
        if self.playhead_frame is None or not cards:
            return None
        position, offset = divmod(self.playhead_frame, CHUNK_FRAMES)
        if position >= len(cards):
            return None
        rect = self.card_rect(cards[position])  # arithmetic: the card need not be placed yet
        return round(rect.left() + rect.width() * (offset + 0.5) / CHUNK_FRAMES)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, option, painter, self)  # its background
        # The ruler where it is drawn again (a shot header kept in view repaints its line alone, under the ruler).
        ruler = event.region().intersected(QRect(0, 0, self.width(), RULER_HEIGHT)).boundingRect()
        if ruler.isEmpty():
            painter.end()
            return
        painter.fillRect(QRect(0, 0, self.width(), RULER_HEIGHT), QColor(palette.PANEL))
        painter.setPen(QColor(palette.BORDER))
        painter.drawLine(0, RULER_HEIGHT - 1, self.width(), RULER_HEIGHT - 1)
        font, label_width = self._ruler_font()
        painter.setFont(font)
        left, right = ruler.left(), ruler.right()
        first = next((group.card_row.card_size.width() for group in self.groups if group.cards), None)
        # A label every `every` chunks, so that they never overlap when the cards are narrow.
        every = 1 if first is None else max(1, -(-(label_width + 14) // max(1, first)))
        reach = every * (first or 0)  # how far right a label runs
        # The ticks of all the cards in view drawn in two calls (a zoom out shows 30 cards: 180 ticks one by one
        # were a millisecond of its repaint), then the labels.
        starts, ticks, labels = [], [], []
        bottom = RULER_HEIGHT - 1
        for position, rect in self.cards_between(left - reach, right):
            starts.append(QLine(rect.left(), RULER_HEIGHT - 10, rect.left(), bottom))
            if rect.width() >= 48:  # a tick per latent frame (MAGI-1: 4 pixel frames each) while there is room
                for tick in range(4, CHUNK_FRAMES, 4):
                    x = round(rect.left() + rect.width() * tick / CHUNK_FRAMES)
                    ticks.append(QLine(x, RULER_HEIGHT - 5, x, bottom))
            if not position % every:
                labels.append((QRectF(rect.left() + 9, 0, every * rect.width() - 12, RULER_HEIGHT - 8),
                               time_text(position * CHUNK_FRAMES, self.fps)))
        painter.setPen(QColor(palette.BORDER_STRONG))
        painter.drawLines(ticks)
        painter.setPen(QColor(palette.TEXT_DIM))
        painter.drawLines(starts)
        for box, text in labels:
            painter.drawText(box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()

    def _ruler_font(self) -> tuple[QFont, int]:
        """The ruler's font and the width of its widest label (measured once per font: it took a millisecond)."""
        if self._ruler is None or self._ruler[0] != self.font():
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 0.82)
            self._ruler = (QFont(self.font()), font, QFontMetrics(font, self).horizontalAdvance("00:00.00"))
        return self._ruler[1], self._ruler[2]

    def cards_between(self, left: int, right: int):
        """(position in the storyboard, strip rectangle) of the cards in strip x [left, right]: a long storyboard
        is mostly off screen, and its shots are looked at before their cards."""
        position = 0
        for group in self.groups:
            geometry, count = group.geometry(), len(group.cards)
            if count and geometry.right() >= left and geometry.left() <= right:
                row = group.card_row
                origin = geometry.topLeft() + row.pos()
                first = max(0, (left - origin.x()) // row.pitch - 1)
                for index in range(first, min(count, (right - origin.x()) // row.pitch + 2)):
                    rect = row.card_rect(index).translated(origin)
                    if rect.right() >= left and rect.left() <= right:
                        yield position + index, rect
            position += count

    # Keyboard ---------------------------------------------------------------------------------
    def event(self, event) -> bool:
        if event.type() == event.Type.ShortcutOverride and event.key() in _OWN_KEYS:
            modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if modifiers == Qt.KeyboardModifier.NoModifier:
                event.accept()  # selection keys here, not the player's frame steps
                return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        key, modifiers = event.key(), event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ctrl = modifiers == Qt.KeyboardModifier.ControlModifier
        plain = modifiers == Qt.KeyboardModifier.NoModifier
        command = None
        left = key == Qt.Key.Key_Left
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and plain:
            command = "previous" if left else "next"
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and ctrl:
            command = "move-left" if left else "move-right"
        elif plain and key == Qt.Key.Key_Home:
            command = "first"
        elif plain and key == Qt.Key.Key_End:
            command = "last"
        elif plain and key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            command = "delete"
        elif plain and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            command = "edit"
        if command is None:
            super().keyPressEvent(event)
            return
        event.accept()
        self.keyCommand.emit(command)

    def mousePressEvent(self, event) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.clicked.emit()
        super().mousePressEvent(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.update()

    # Drops ------------------------------------------------------------------------------------
    def group_at(self, x: int) -> ShotGroup | None:
        """The shot group under strip x (None over empty space)."""
        return next((g for g in self.groups if g.geometry().left() <= x <= g.geometry().right()), None)

    def _chunk_target(self, pos: QPoint) -> tuple[ShotGroup, int] | None:
        if not self.groups:
            return None
        group = self.group_at(pos.x())
        if group is None:  # between or after groups: the nearest group's nearer end
            group = min(self.groups, key=lambda g: min(abs(pos.x() - g.geometry().left()),
                                                       abs(pos.x() - g.geometry().right())))
        slot = len(group.cards)
        for index, card in enumerate(group.cards):
            if pos.x() < self.card_rect(card).center().x():
                slot = index
                break
        return group, slot

    def _marker_for(self, group: ShotGroup, slot: int) -> QRect:
        if slot < len(group.cards):
            rect = self.card_rect(group.cards[slot])
            x = rect.left() - group.row.spacing() // 2 - 1
        else:
            rect = self.card_rect(group.cards[-1]) if group.cards else QRect(group.geometry())
            x = rect.right() + group.row.spacing() // 2 + 1
        return QRect(x, rect.top() - 4, 4, rect.height() + 8)

    def _show_drop_group(self, group: ShotGroup | None) -> None:
        if group is self._drop_group:
            return
        if self._drop_group is not None:
            set_style_property(self._drop_group, "dropTarget", False)
        self._drop_group = group
        if group is not None:
            set_style_property(group, "dropTarget", True)

    def _clear_drop_feedback(self) -> None:
        self._show_drop_group(None)
        if self.drop_marker is not None:
            self.drop_marker = None
            self.overlay.update()

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if dragged_chunk(mime) is not None or dropped_files(mime):
            event.acceptProposedAction()
            self.dragMoveEvent(event)
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        mime, pos = event.mimeData(), event.position().toPoint()
        if dragged_chunk(mime) is not None:
            target = self._chunk_target(pos)
            self.drop_marker = self._marker_for(*target) if target else None
            self.overlay.update()
            event.setAccepted(target is not None)
            return
        group = self.group_at(pos.x()) if dropped_files(mime) else None
        self._show_drop_group(group)
        if group is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self._clear_drop_feedback()

    def dropEvent(self, event) -> None:
        mime, pos = event.mimeData(), event.position().toPoint()
        self._clear_drop_feedback()
        chunk = dragged_chunk(mime)
        if chunk is not None:
            target = self._chunk_target(pos)
            if target is not None:
                event.acceptProposedAction()
                self.chunkDropped.emit(chunk[0], chunk[1], target[0].shot_id, target[1])
            return
        group, files = self.group_at(pos.x()), dropped_files(mime)
        if group is not None and files:
            event.acceptProposedAction()
            self.filesDropped.emit(group.shot_id, files)
        else:
            event.ignore()
