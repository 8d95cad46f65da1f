"""The questions the ProjectController asks, as Qt dialogs: save changes, recover work, resume an interrupted
run, replace, file choosers.

Each method returns a plain answer (SAVE / DISCARD / CANCEL, RECOVER / DISCARD, a path or None), so tests
give the controller an object with the same methods instead.

A project is a `.magi` folder, but to the user it is one document: ProjectOpenDialog (Qt's own file
dialog, customised) shows each `.magi` folder with the app's icon and opens it when it is chosen or
double-clicked, instead of stepping into it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QDate, QFileInfo, QLocale, QTime
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QDialog, QFileDialog, QFileIconProvider, QMessageBox, QTreeView, QWidget

from magi_studio.document.store import EXTENSION, MANIFEST

APP_NAME = "MAGI Studio"
SAVE, DISCARD, CANCEL, RECOVER = "save", "discard", "cancel", "recover"
#: The object name of the run question's stop button.
STOP_BUTTON = "stop-run"


def human_time(stamp: str, now: datetime | None = None, locale: QLocale | None = None) -> str:
    """An ISO timestamp as a person says it, in local time: "today at 14:32", "yesterday at 09:05", or
    "on 3 December 2026 at 14:32" (the locale's long date). An unreadable stamp is returned as it is."""
    try:
        when = _local(datetime.fromisoformat(stamp))
    except (TypeError, ValueError):
        return stamp
    now = _local(now or datetime.now())
    locale = locale or QLocale()
    clock = locale.toString(QTime(when.hour, when.minute), QLocale.FormatType.ShortFormat)
    days = (now.date() - when.date()).days
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"yesterday at {clock}"
    date = locale.toString(QDate(when.year, when.month, when.day), QLocale.FormatType.LongFormat)
    return f"on {date} at {clock}"


def _local(moment: datetime) -> datetime:
    """A naive datetime in local time (an aware one is converted; a naive one is taken as local)."""
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo is not None else moment


def project_bundle(path: str | Path) -> Path | None:
    """`path` when it is a project's folder (a `.magi` folder, or any folder holding project.json), else None."""
    path = Path(path)
    if path.is_dir() and (path.suffix == EXTENSION or (path / MANIFEST).is_file()):
        return path
    return None


class _ProjectIcons(QFileIconProvider):
    """Project folders look like documents: the app's icon instead of a folder's."""

    def __init__(self, project_icon: QIcon) -> None:
        super().__init__()
        self._project_icon = project_icon

    def icon(self, what):  # noqa: D102 (QFileIconProvider's two overloads: an IconType or a QFileInfo)
        if isinstance(what, QFileInfo) and project_bundle(what.absoluteFilePath()) is not None:
            return self._project_icon
        return super().icon(what)

    def type(self, info: QFileInfo) -> str:  # the dialog's Type column
        return "MAGI Studio project" if project_bundle(info.absoluteFilePath()) is not None else super().type(info)


class ProjectOpenDialog(QFileDialog):
    """File › Open: lists folders and projects; choosing a `.magi` folder (Open, Return or a double-click)
    opens it as the project. `chosen` is the project's folder (or project.json) once accepted."""

    def __init__(self, parent: QWidget | None = None, folder: str = "") -> None:
        super().__init__(parent, "Open Project", folder or str(Path.home()), f"MAGI Studio projects (*{EXTENSION})")
        self.setObjectName("ProjectOpenDialog")
        self.setOption(QFileDialog.Option.DontUseNativeDialog)  # a native dialog cannot treat folders as files
        self.setFileMode(QFileDialog.FileMode.ExistingFile)
        self.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        self.resize(860, 520)  # Qt's own default shows three columns' worth of a long folder name
        details = self.findChild(QTreeView, "treeView")  # the detail view: room for "MAGI Studio project"
        if details is not None:
            for column, width in ((0, 320), (1, 70), (2, 150), (3, 170)):
                details.header().resizeSection(column, width)
        from magi_studio.theme.icons import app_icon

        self._icons = _ProjectIcons(app_icon())  # kept: the dialog does not own its icon provider
        self.setIconProvider(self._icons)
        self.chosen: Path | None = None
        self.directoryEntered.connect(self._on_entered)  # a double-click steps in: open it instead

    def accept(self) -> None:
        selected = self.selectedFiles()
        bundle = project_bundle(selected[0]) if selected else None
        if bundle is None:
            super().accept()  # a file (project.json) is accepted; another folder is stepped into
            if self.result() == QDialog.DialogCode.Accepted and selected:
                self.chosen = Path(selected[0])
            return
        self.chosen = bundle
        self.done(QDialog.DialogCode.Accepted)

    def _on_entered(self, folder: str) -> None:
        bundle = project_bundle(folder)
        if bundle is not None and self.isVisible():
            self.chosen = bundle
            self.done(QDialog.DialogCode.Accepted)


class ProjectPrompts:
    """The questions the controller asks, as Qt dialogs. Tests pass an object with the same methods."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def unsaved_changes(self, name: str, untitled: bool = False) -> str:
        """SAVE, DISCARD or CANCEL. `untitled`: the project was never saved (Discard deletes it)."""
        answer = unsaved_changes_box(name, untitled, self.parent).exec()
        return {QMessageBox.StandardButton.Save: SAVE, QMessageBox.StandardButton.Discard: DISCARD}.get(
            QMessageBox.StandardButton(answer), CANCEL)

    def stop_run(self, stop_text: str, run_ended=None) -> bool:
        """A run is in progress: True to stop it (`stop_text`, e.g. "Stop and Quit"), False to keep working.
        When the run ends while the question is open (`run_ended`, a signal), nothing is left to decide: True."""
        box = stop_run_box(stop_text, self.parent)
        stop = next(b for b in box.buttons() if b.objectName() == STOP_BUTTON)
        answer = lambda *_: stop.click()  # noqa: E731 (disconnected below)
        if run_ended is not None:
            run_ended.connect(answer)
        box.exec()
        if run_ended is not None:
            run_ended.disconnect(answer)
        clicked = box.clickedButton()
        return clicked is not None and clicked.objectName() == STOP_BUTTON

    def offer_recovery(self, name: str, autosaved_at: str, *, saved: bool = True) -> str:
        """RECOVER or DISCARD; a question closed unanswered (the app told to end) throws nothing away."""
        box = recovery_box(name, autosaved_at, self.parent, saved=saved)
        box.exec()
        clicked = box.clickedButton()
        return DISCARD if clicked is not None and clicked is not box.defaultButton() else RECOVER

    def offer_resume(self, finished: int, total: int) -> bool:
        """A run was interrupted: True to resume it (Resume), False for Not now."""
        box = resume_box(finished, total, self.parent)
        box.exec()
        return box.clickedButton() is box.defaultButton()

    def confirm_replace(self, path: Path) -> bool:
        answer = QMessageBox.question(self.parent, APP_NAME, f"“{path.name}” already exists. Replace it?")
        return answer == QMessageBox.StandardButton.Yes

    def open_path(self, folder: str) -> str | None:
        dialog = ProjectOpenDialog(self.parent, folder)
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        dialog.deleteLater()
        return str(dialog.chosen) if accepted and dialog.chosen is not None else None

    def save_path(self, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save Project As", suggested,
                                              f"MAGI Studio projects (*{EXTENSION})")
        return path or None


def unsaved_changes_box(name: str, untitled: bool, parent: QWidget | None = None) -> QMessageBox:
    """Save / Discard / Cancel, saying what Discard throws away: an untitled project lives in a scratch
    folder that Discard deletes, chunks included; a saved one goes back to its last save, and the chunks
    generated since are part of what is not saved."""
    box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, f"Save the changes to “{name}” before closing?",
                      QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel, parent)
    box.setInformativeText(
        "This project was never saved: Discard deletes it, with every chunk generated in it." if untitled else
        "Discard goes back to the last saved version: the edits and the chunks generated since then are lost.")
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    return box


def stop_run_box(stop_text: str, parent: QWidget | None = None) -> QMessageBox:
    """"A run is in progress": the button named STOP_BUTTON stops it (`stop_text`); Keep Working (the default,
    and Esc) does not."""
    box = QMessageBox(QMessageBox.Icon.Question, APP_NAME, "A run is in progress.", parent=parent)
    box.setInformativeText("Stop it now? Every chunk finished so far is kept. If you keep working, the run goes on.")
    box.addButton(stop_text, QMessageBox.ButtonRole.DestructiveRole).setObjectName(STOP_BUTTON)
    keep = box.addButton("Keep Working", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    return box


def resume_box(finished: int, total: int, parent: QWidget | None = None) -> QMessageBox:
    """Resume / Not now, after a run the app did not live to finish; Resume is the default button."""
    box = QMessageBox(QMessageBox.Icon.Question, APP_NAME,
                      f"A run was interrupted: {finished} of {total} chunks were finished. Resume generating?",
                      parent=parent)
    box.setInformativeText("The finished chunks are kept either way; Resume generates the ones the run had left.")
    resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
    later = box.addButton("Not Now", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(resume)
    box.setEscapeButton(later)
    return box


def recovery_box(name: str, autosaved_at: str, parent: QWidget | None = None, *, saved: bool = True) -> QMessageBox:
    """The Recover / Discard question; Recover is the default button. `saved`: the project has a saved
    version to go back to (an untitled one has none: discarding starts anew)."""
    box = QMessageBox(QMessageBox.Icon.Question, APP_NAME, f"“{name}” has unsaved work from "
                      f"{human_time(autosaved_at)} that was not saved when MAGI Studio last closed.", parent=parent)
    box.setInformativeText("Recover it, or discard it and keep the last saved version?" if saved else
                           "Recover it, or discard it and start a new project?")
    recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(recover)
    return box
