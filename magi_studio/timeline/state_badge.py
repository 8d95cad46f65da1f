"""StateBadge: a chunk card's state pill ("Done", "Stale", "Queued", "42%"), painted by hand.

It was a QLabel that the style sheet coloured by a [state] property, so every change of state re-polished it
(unpolish + polish): a Regenerate From Chunk turns twenty cards to "Queued" at once, and their re-polishing was
about half of that action's 26-40 ms on the GUI thread. Its colours are style.BADGE_COLOURS.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from magi_studio.timeline.style import BADGE_COLOURS, BADGE_POINT_SIZE

PADDING_X, PADDING_Y, RADIUS = 7, 1, 8.0


class StateBadge(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("StateBadge")
        font = self.font()
        font.setPointSizeF(BADGE_POINT_SIZE)
        font.setBold(True)
        self.setFont(font)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._text, self._state = "", "empty"
        self._colours = tuple(QColor(c) for c in BADGE_COLOURS["empty"])

    def text(self) -> str:
        return self._text

    def state(self) -> str:
        return self._state

    def show_state(self, state: str, text: str) -> None:
        """The state's colours and `text`: a repaint only, and a new size only when the text's width changes."""
        if (state, text) == (self._state, self._text):
            return
        metrics = self.fontMetrics()
        resized = metrics.horizontalAdvance(text) != metrics.horizontalAdvance(self._text)
        self._text, self._state = text, state
        self._colours = tuple(QColor(c) for c in BADGE_COLOURS[state])
        if resized:
            self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(self._text) + 2 * PADDING_X, metrics.height() + 2 * PADDING_Y)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event) -> None:
        background, colour = self._colours
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(background)
        painter.drawRoundedRect(QRectF(self.rect()), RADIUS, RADIUS)
        painter.setPen(colour)
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._text)
        painter.end()
