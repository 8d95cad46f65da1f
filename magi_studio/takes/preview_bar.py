"""PreviewModeBar: the strip above the player that says a take is being previewed, not used.

While the takes view previews a take that is not the shot's active one, the player shows that take
and this bar says so, with the two ways out: make it the active take, or go back to the active one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QWidget

from magi_studio.document.take_commands import SetActiveTake
from magi_studio.timeline.glyphs import glyph
from magi_studio.widgets.elided_label import ElidedLabel

PREVIEW_BAR_QSS = """
#PreviewModeBar { background: #10323b; border-bottom: 1px solid #22b8d6; }
#PreviewModeBar QLabel { color: #bfefff; background: transparent; }
#PreviewModeBar QLabel#PreviewModeTitle { color: #ffffff; font-weight: bold; }
"""


class PreviewModeBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PreviewModeBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet(PREVIEW_BAR_QSS)
        self.session = None
        # At 1366 px beside the takes panel the bar has about 600 px: its words shrink, never the window.
        self.title = ElidedLabel(shortest="Previewing…")
        self.title.setObjectName("PreviewModeTitle")
        self.detail = ElidedLabel("The storyboard and the export still use the active take.", shortest="Previewing…")
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
