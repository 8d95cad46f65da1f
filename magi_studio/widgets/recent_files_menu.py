"""File > Open Recent: the recently opened or saved projects, most recent first, and "Clear Recent Projects".

    menu = RecentFilesMenu(parent)
    menu.set_paths(settings.recent_files)        # ProjectController.recentFilesChanged
    menu.openRequested.connect(projects.open_recent)
    menu.clearRequested.connect(projects.clear_recent_files)

Each entry shows the project's name and its folder as the real path (elided in the middle when it is
long, so both its start and the folder that holds the project stay readable); the tooltip and the
status bar give the full path. The first nine get the digit mnemonics (&1 … &9) that desktop apps
use for recent files.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QMenu, QWidget

from magi_studio.document.store import EXTENSION


#: How wide a folder may be drawn in the menu before its middle is elided, in pixels.
FOLDER_WIDTH = 380


def folder_label(path: Path, metrics: QFontMetrics, width: int = FOLDER_WIDTH) -> str:
    """The folder that holds project `path`, as its real path, elided in the middle to fit `width`."""
    return metrics.elidedText(str(path.parent), Qt.TextElideMode.ElideMiddle, width)


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
        metrics = QFontMetrics(self.font())
        for number, text in enumerate(self.paths, start=1):
            path = Path(text)
            name = path.name.removesuffix(EXTENSION).replace("&", "&&")
            label = f"&{number}  {name}" if number <= 9 else name
            action = self.addAction(f"{label}\t{folder_label(path, metrics).replace('&', '&&')}")
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
