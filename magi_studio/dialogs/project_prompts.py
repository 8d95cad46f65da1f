"""The questions the ProjectController asks, as Qt dialogs: save changes, recover work, replace, file choosers.

Each method returns a plain answer (SAVE / DISCARD / CANCEL, RECOVER / DISCARD, a path or None), so tests
give the controller an object with the same methods instead.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from magi_studio.document.store import EXTENSION, MANIFEST

APP_NAME = "MAGI Studio"
SAVE, DISCARD, CANCEL, RECOVER = "save", "discard", "cancel", "recover"


class ProjectPrompts:
    """The questions the controller asks, as Qt dialogs. Tests pass an object with the same methods."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def unsaved_changes(self, name: str) -> str:
        """SAVE, DISCARD or CANCEL."""
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, f"Save the changes to “{name}” before closing?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self.parent)
        box.setInformativeText("Generated chunks are kept either way; unsaved edits are lost if you discard them.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: SAVE, QMessageBox.StandardButton.Discard: DISCARD}.get(
            QMessageBox.StandardButton(answer), CANCEL)

    def offer_recovery(self, name: str, autosaved_at: str) -> str:
        """RECOVER or DISCARD."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME, f"“{name}” has unsaved work from {autosaved_at} "
                          "that was not saved when MAGI Studio last closed.", parent=self.parent)
        box.setInformativeText("Recover it, or discard it and keep the last saved version?")
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(recover)
        box.exec()
        return RECOVER if box.clickedButton() is recover else DISCARD

    def confirm_replace(self, path: Path) -> bool:
        answer = QMessageBox.question(self.parent, APP_NAME, f"“{path.name}” already exists. Replace it?")
        return answer == QMessageBox.StandardButton.Yes

    def open_path(self, folder: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open Project", folder,
                                              f"MAGI Studio projects ({MANIFEST});;All files (*)")
        return path or None

    def save_path(self, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save Project As", suggested,
                                              f"MAGI Studio projects (*{EXTENSION})")
        return path or None
