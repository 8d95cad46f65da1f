"""HistoryView: the undo history of the open DocumentSession, every edit by name (a dock of the main window)."""

from __future__ import annotations

from PySide6.QtWidgets import QUndoView, QWidget

from magi_studio.document_session import DocumentSession


class HistoryView(QUndoView):
    """The undo history (a dock): every edit by name; clicking one undoes or redoes up to it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("HistoryView")
        self.setEmptyLabel("Project opened")
        self.setAlternatingRowColors(True)
        self.setStyleSheet("#HistoryView { border: none; border-radius: 0; padding: 6px; }"
                           "#HistoryView::item { padding: 4px 8px; border-radius: 5px; }"
                           "#HistoryView::item:selected { background: #332f5c; color: #ffffff; }")

    def set_session(self, session: DocumentSession | None) -> None:
        self.setStack(session.undo_stack if session is not None else None)
