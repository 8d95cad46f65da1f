"""ElidedLabel: a one-line label that gives up its width before the window grows."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QWidget


class ElidedLabel(QLabel):
    """Where the text does not fit, it is cut with "…" (at the end, or where `mode` says), or its short form is
    shown (`setText(text, short)`): in place of the cut text at the end ("In/Out" for a cut "In/Out 00:0…"), and for
    a cut in the middle once the cut reaches into the short form ("chunk 4" for "Sho…k 4", where "The very lo…chunk 4"
    stays); a short form that does not fit is cut in turn. The whole text is its tool tip. `shortest`: the text whose
    width is the least it asks for (the layout may still give it less)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, shortest: str = "…",
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full_text = ""
        self._short_text = ""
        self._shortest = shortest
        self._mode = mode
        self.setText(text)

    def setText(self, text: str, short: str = "") -> None:
        self._full_text = text
        self._short_text = short
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full_text

    def shown_text(self) -> str:
        """The text as drawn: whole, its short form, or cut."""
        return QLabel.text(self)

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
        width, metrics = self.contentsRect().width(), self.fontMetrics()
        shown = metrics.elidedText(self._full_text, self._mode, width)
        short = self._short_text
        if short and shown != self._full_text and (self._mode != Qt.TextElideMode.ElideMiddle or short not in shown):
            shown = metrics.elidedText(short, self._mode, width)
        QLabel.setText(self, shown)
