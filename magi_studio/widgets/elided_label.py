"""ElidedLabel: a one-line label that gives up its width before the window grows."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QWidget


class ElidedLabel(QLabel):
    """What does not fit ends in "…" and the whole text is its tool tip. `shortest`: the text whose width is
    the least it asks for (the layout may still give it less)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, shortest: str = "…") -> None:
        super().__init__(parent)
        self._full_text = ""
        self._shortest = shortest
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full_text = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full_text

    def sizeHint(self):
        hint = super().sizeHint()
        hint.setWidth(self.fontMetrics().horizontalAdvance(self._full_text) + 2)
        return hint

    def minimumSizeHint(self):
        hint = super().minimumSizeHint()
        hint.setWidth(self.fontMetrics().horizontalAdvance(self._shortest))
        return hint

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):  # a style sheet's font, once polished
            self._elide()

    def _elide(self) -> None:
        QLabel.setText(self, self.fontMetrics().elidedText(self._full_text, Qt.TextElideMode.ElideRight,
                                                           self.contentsRect().width()))
