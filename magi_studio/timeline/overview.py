"""StoryboardOverview: the whole storyboard in one thin strip above the cards, to see and jump anywhere.

A minimap: the strip's shots and cards drawn to scale in the overview's width — each shot a band with
its name, each chunk a cell coloured by its state (empty, queued, denoising, done, stale, failed) or,
when there is room, its thumbnail — with the selected chunk outlined, the playhead, and a frame around
the part of the storyboard the view shows. A click or drag moves that frame there (the storyboard
scrolls); a double click selects the chunk under it. It reads the strip's geometry and the cards'
models as they are; it holds no state of its own but the scale.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QWidget

from magi_studio.theme import palette
from magi_studio.timeline.style import DENOISING, DONE, EMPTY, FAILED, QUEUED, STALE

HEIGHT = 30
#: Cells at least this wide show the chunk's thumbnail instead of its state's colour.
THUMBNAIL_MIN_WIDTH = 18
STATE_COLORS = {EMPTY: palette.BORDER_STRONG, QUEUED: "#2a6777", DENOISING: palette.CYAN, DONE: "#3f9d75",
                STALE: palette.WARNING, FAILED: palette.DANGER}


class StoryboardOverview(QWidget):
    #: (chunk id) double-clicked: select it.
    chunkChosen = Signal(str)

    def __init__(self, scroll: QScrollArea, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StoryboardOverview")
        self.setAccessibleName("Storyboard overview")
        self.setToolTip("The whole storyboard: click or drag to scroll there, double-click a chunk to select it")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(HEIGHT)
        # It paints every pixel (the layer is filled): the panel behind it is not painted again at each scroll step.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMouseTracking(False)
        self.scroll = scroll
        #: The chunk outlined as selected (the timeline sets it).
        self.selected_chunk_id = ""
        self._layer: QPixmap | None = None  # the cards drawn (see _draw_cards) and the sizes they were drawn at
        self._layer_key: tuple = ()  # () once what the cards show changed
        self._changed_cards: set = set()  # cards whose cells alone are to be drawn again (redraw_cells)
        #: A zoom in motion (the timeline sets it until the zoom settles): the cards drawn before it are painted, not
        #: quite to the new scale for that moment, instead of drawing 120 cells again on each wheel step.
        self.hold_layer = False
        self._scaled: dict[tuple[int, int, int], QPixmap] = {}  # (pixmap key, w, h) → the cell's picture
        bar = scroll.horizontalScrollBar()
        bar.valueChanged.connect(self.update)
        bar.rangeChanged.connect(self.update)

    @property
    def strip(self):
        return self.scroll.widget()

    # Geometry: overview x = strip x * scale (a linear map, so the shots keep their proportions) --------
    def _scale(self) -> float:
        width = max(1, self.strip.width())
        return max(1e-6, (self.width() - 2) / width)

    def cell_rect(self, card, scale: float | None = None) -> QRectF:
        rect, scale = self.strip.card_rect(card), scale or self._scale()
        return QRectF(1 + rect.left() * scale, 9, max(1.0, rect.width() * scale), HEIGHT - 12)

    def viewport_rect(self) -> QRectF:
        scale, bar = self._scale(), self.scroll.horizontalScrollBar()
        width = self.scroll.viewport().width()
        return QRectF(1 + bar.value() * scale, 1, min(width, self.strip.width()) * scale, HEIGHT - 2)

    def card_at(self, x: float):
        return next((card for card in self.strip.cards() if self.cell_rect(card).left() <= x
                     <= self.cell_rect(card).right() + 1), None)

    def scroll_to(self, x: float) -> None:
        """Centre the storyboard's view on overview x."""
        bar = self.scroll.horizontalScrollBar()
        bar.setValue(round((x - 1) / self._scale() - self.scroll.viewport().width() / 2))

    # Painting ---------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """What the cards show changed (states, thumbnails, selection, shots): draw them again."""
        self._layer_key = ()
        self._changed_cards.clear()
        self.update()

    def redraw_cells(self, cards) -> None:
        """Only these cards' cells changed (their state or picture): drawn again alone on the next paint (a run
        changes a card or two at a time, and drawing all 120 cells was the slowest part of a committed chunk)."""
        self._changed_cards.update(cards)
        self.update()

    def set_hold_layer(self, hold: bool) -> None:
        if hold != self.hold_layer:
            self.hold_layer = hold
            self.update()

    def paintEvent(self, event) -> None:
        strip = self.strip
        painter = QPainter(self)
        if strip is None or not strip.groups:
            painter.fillRect(self.rect(), QColor(palette.PANEL))
            painter.end()
            return
        key = (self.width(), strip.width())  # a zoom or a resize changes the scale
        if self._layer_key != key and not (self.hold_layer and self._layer is not None
                                           and self._layer.deviceIndependentSize().width() == self.width()):
            self._layer, self._layer_key = self._draw_cards(), key
            self._changed_cards.clear()
        elif self._changed_cards and self._layer_key == key:
            self._draw_changed_cells()
        painter.drawPixmap(0, 0, self._layer)  # scrolling redraws only the frame and the playhead
        scale = self._scale()
        playhead = strip.playhead_x()
        if playhead is not None:
            painter.setPen(QPen(QColor(palette.DANGER), 1))
            x = 1 + playhead * scale
            painter.drawLine(round(x), 1, round(x), HEIGHT - 2)
        if self.scroll.horizontalScrollBar().maximum() > 0:  # the part the storyboard shows (all of it: no frame)
            painter.setPen(QPen(QColor(palette.TEXT), 1.2))
            painter.drawRoundedRect(self.viewport_rect().adjusted(0.5, 0.5, -0.5, -0.5), 3, 3)
        painter.end()

    def _draw_cards(self) -> QPixmap:
        """The shots' bands and the chunks' cells (and the selection), drawn once until they change."""
        strip, scale = self.strip, self._scale()
        layer = QPixmap(self.size() * self.devicePixelRatioF())
        layer.setDevicePixelRatio(self.devicePixelRatioF())
        layer.fill(QColor(palette.PANEL))
        painter = QPainter(layer)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 0.72)
        painter.setFont(font)
        for group in strip.groups:
            geometry = group.geometry()
            band = QRectF(1 + geometry.left() * scale, 1, max(2.0, geometry.width() * scale), HEIGHT - 2)
            painter.fillRect(band, QColor("#232733" if group.model is not None and group.model.current else "#1d2028"))
            painter.setPen(QColor(palette.TEXT_DIM))
            if band.width() > 30 and group.model is not None:
                painter.drawText(band.adjusted(3, -1, -2, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                                 painter.fontMetrics().elidedText(group.model.name, Qt.TextElideMode.ElideRight,
                                                                  int(band.width()) - 5))
        colors = {state: QColor(color) for state, color in STATE_COLORS.items()}  # made once per layer, not per cell
        for card in strip.cards():
            self._draw_cell(painter, card, scale, colors)
        self._draw_selection(painter, scale)
        painter.end()
        return layer

    def _draw_changed_cells(self) -> None:
        """Draw the changed cards' cells again on the layer: each on its shot's band, then the cell after it (whose
        first pixels it may share), then the selection's outline."""
        strip, scale = self.strip, self._scale()
        changed, self._changed_cards = self._changed_cards, set()
        cards = strip.cards()
        positions = {card: i for i, card in enumerate(cards)}
        again = sorted({positions[card] + step for card in changed if card in positions for step in (0, 1)}
                       & set(range(len(cards))))
        colors = {state: QColor(color) for state, color in STATE_COLORS.items()}
        painter = QPainter(self._layer)
        for i in again:
            card = cards[i]
            if card in changed:
                row = card.parentWidget()  # its shot's CardRow
                group = row.parentWidget() if row is not None else None
                current = getattr(getattr(group, "model", None), "current", False)
                painter.fillRect(self.cell_rect(card, scale), QColor("#232733" if current else "#1d2028"))
            self._draw_cell(painter, card, scale, colors)
        self._draw_selection(painter, scale)
        painter.end()

    def _draw_cell(self, painter: QPainter, card, scale: float, colors: dict) -> None:
        model = card.model
        if model is None:
            return
        cell = self.cell_rect(card, scale)
        picture = model.thumbnail if cell.width() >= THUMBNAIL_MIN_WIDTH and model.state in (DONE, STALE) else None
        if picture is not None and not picture.isNull():
            painter.drawPixmap(cell.topLeft(), self._cell_picture(picture, int(cell.width()), int(cell.height())))
            if model.state == STALE:
                painter.fillRect(cell, QColor(201, 154, 62, 110))
        else:
            painter.fillRect(cell.adjusted(0, 0, -0.6 if cell.width() > 3 else 0, 0), colors.get(model.state, colors[EMPTY]))

    def _draw_selection(self, painter: QPainter, scale: float) -> None:
        selected = next((card for card in self.strip.cards() if card.chunk_id == self.selected_chunk_id), None) \
            if self.selected_chunk_id else None
        if selected is not None and selected.model is not None:
            painter.setPen(QPen(QColor(palette.ACCENT), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.cell_rect(selected, scale).adjusted(-1, -1, 1, 1))

    def _cell_picture(self, picture: QPixmap, width: int, height: int) -> QPixmap:
        key = (picture.cacheKey(), width, height)
        scaled = self._scaled.get(key)
        if scaled is None:
            if len(self._scaled) > 2000:  # zoom changes make new sizes: never grow without end
                self._scaled.clear()
            scaled = picture.scaled(width, height, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                    Qt.TransformationMode.SmoothTransformation).copy(0, 0, width, height)
            self._scaled[key] = scaled
        return scaled

    # Mouse ------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.scroll_to(event.position().x())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.scroll_to(event.position().x())

    def mouseDoubleClickEvent(self, event) -> None:
        card = self.card_at(event.position().x())
        if card is not None:
            self.chunkChosen.emit(card.chunk_id)
