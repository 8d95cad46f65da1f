"""File > Open Recent: the recently opened or saved projects, most recent first, and "Clear Recent Projects".

    menu = RecentFilesMenu(parent)
    menu.set_paths(settings.recent_files)        # ProjectController.recentFilesChanged
    menu.openRequested.connect(projects.open_recent)
    menu.clearRequested.connect(projects.clear_recent_files)

Each entry shows the project's name and, dimmer in the tooltip and status bar, its full path; the
first nine get the digit mnemonics (&1 … &9) that desktop apps use for recent files.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMenu, QWidget

from magi_studio.document.store import EXTENSION


def short_folder(path: Path) -> str:
    """The folder of `path` with the home folder written as ~, so two "Film" projects can be told apart."""
    folder = path.parent
    try:
        return "~/" + str(folder.relative_to(Path.home())) if folder != Path.home() else "~"
    except ValueError:
        return str(folder)


class RecentFilesMenu(QMenu):
    #: (path) the user picked a recent project.
    openRequested = Signal(str)
    clearRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Open &Recent", parent)
        self.setObjectName("menu.recent")
        self.paths: list[str] = []
        self.set_paths([])

    def set_paths(self, paths: list[str]) -> None:
        self.clear()
        self.paths = list(paths)
        for number, text in enumerate(self.paths, start=1):
            path = Path(text)
            name = path.name.removesuffix(EXTENSION).replace("&", "&&")
            label = f"&{number}  {name}" if number <= 9 else name
            action = self.addAction(f"{label}\t{short_folder(path)}")
            action.setData(text)
            action.setStatusTip(text)
            action.setToolTip(text)
            action.triggered.connect(lambda _checked=False, chosen=text: self.openRequested.emit(chosen))
        if self.paths:
            self.addSeparator()
            self.addAction("&Clear Recent Projects").triggered.connect(lambda _checked=False: self.clearRequested.emit())
        else:
            self.addAction("No recent projects").setEnabled(False)

    def entries(self) -> list:
        """The actions that open a project, in menu order."""
        return [action for action in self.actions() if action.data()]
