"""PreviewModeBar: the strip above the player that says a take is being previewed, not used.

While the takes view previews a take that is not the shot's active one, the player shows that take
and this bar says so, with the two ways out: make it the active take, or go back to the active one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from magi_studio.document.take_commands import SetActiveTake
from magi_studio.timeline.glyphs import glyph

PREVIEW_BAR_QSS = """
#PreviewModeBar { background: #10323b; border-bottom: 1px solid #22b8d6; }
#PreviewModeBar QLabel { color: #bfefff; background: transparent; }
#PreviewModeBar QLabel#PreviewModeTitle { color: #ffffff; font-weight: bold; }
"""


class ElidedLabel(QLabel):
    """A one-line label that gives up its width before the window grows: what does not fit ends in "…"
    and the whole text is its tool tip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full_text = ""
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
        hint.setWidth(self.fontMetrics().horizontalAdvance("Previewing…"))
        return hint

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        QLabel.setText(self, self.fontMetrics().elidedText(self._full_text, Qt.TextElideMode.ElideRight,
                                                           self.width()))


class PreviewModeBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PreviewModeBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet(PREVIEW_BAR_QSS)
        self.session = None
        # At 1366 px beside the takes panel the bar has about 600 px: its words shrink, never the window.
        self.title = ElidedLabel()
        self.title.setObjectName("PreviewModeTitle")
        self.detail = ElidedLabel("The storyboard and the export still use the active take.")
        self.activate_button = QPushButton("Make Active")
        self.activate_button.setIcon(glyph("check"))
        self.activate_button.setProperty("accent", True)
        self.back_button = QPushButton("Back to Active Take")
        for button in (self.activate_button, self.back_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 6, 12, 6)
        layout.setSpacing(10)
        layout.addWidget(self.title)
        layout.addWidget(self.detail, 1)
        layout.addWidget(self.activate_button)
        layout.addWidget(self.back_button)
        self.activate_button.clicked.connect(lambda: self.make_active())
        self.back_button.clicked.connect(lambda: self.session and self.session.set_preview_take("", ""))
        self.hide()

    def set_session(self, session) -> None:
        if self.session is not None:
            self.session.previewTakeChanged.disconnect(self._on_preview)
        self.session = session
        if session is not None:
            session.previewTakeChanged.connect(self._on_preview)
        self._on_preview(*(session.preview_take if session else ("", "")))

    def _on_preview(self, shot_id: str, take_id: str) -> None:
        shot = self.session.project.shot(shot_id) if self.session and shot_id else None
        take = shot.find_take(take_id) if shot else None
        if take is None:
            self.hide()
            return
        self.title.setText(f"Previewing {take.name} of {shot.name}")
        self.show()

    def make_active(self) -> bool:
        shot_id, take_id = self.session.preview_take if self.session else ("", "")
        return bool(take_id) and self.session.try_push(SetActiveTake(shot_id, take_id))
