"""NoticeBanner: a dismissible, non-blocking message above the preview (welcome text, engine errors).

A banner never takes focus or blocks input the way a modal dialog would; the user reads it when
they like and closes it with its × button (`dismissed` is emitted).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from magi_studio.theme import icon


class NoticeBanner(QFrame):
    dismissed = Signal()
    #: Emitted just before a notice shows (a container puts away what must not be shown beside it first: both at once,
    #: for a moment, made the window as tall as both).
    aboutToShow = Signal()
    #: True when a notice is shown, False when it is dismissed (lets a container hide its margins too).
    shownChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NoticeBanner")
        self.setProperty("kind", "info")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self._icon = QLabel()
        self._icon.setFixedSize(28, 28)
        self._icon.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.title = QLabel()
        self.title.setObjectName("NoticeTitle")
        self.body = QLabel()
        self.body.setObjectName("NoticeBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setOpenExternalLinks(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self._buttons = QHBoxLayout()
        self._buttons.setSpacing(6)
        self._buttons.addStretch(1)
        self.close_button = QToolButton()
        self.close_button.setIcon(icon("close"))
        self.close_button.setIconSize(QSize(16, 16))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAccessibleName("Dismiss")
        self.close_button.clicked.connect(self.dismiss)

        text = QVBoxLayout()
        text.setSpacing(4)
        text.addWidget(self.title)
        text.addWidget(self.body)
        text.addLayout(self._buttons)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 14, 10, 14)
        layout.setSpacing(12)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(text, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_notice(self, title: str, body_html: str, kind: str = "info") -> None:
        """Show (or replace) the message; kind "info" or "error" picks the colours and icon."""
        self.title.setText(title)
        self.body.setText(body_html)
        self._icon.setPixmap(icon("warning" if kind == "error" else "info").pixmap(QSize(24, 24)))
        if self.property("kind") != kind:
            self.setProperty("kind", kind)
            self.style().unpolish(self)  # re-read the [kind=...] rules of the style sheet
            self.style().polish(self)
        self.aboutToShow.emit()
        self.show()
        self.shownChanged.emit(True)

    def add_button(self, text: str, on_click) -> QPushButton:
        button = QPushButton(text)
        button.setProperty("flat", True)
        button.clicked.connect(lambda checked=False: on_click())
        self._buttons.insertWidget(self._buttons.count() - 1, button)
        return button

    def dismiss(self) -> None:
        if not self.isHidden():
            self.hide()
            self.shownChanged.emit(False)
            self.dismissed.emit()
