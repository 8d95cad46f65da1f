"""The export is written: what was written where, with "Show in Folder" and "Play".

    done = ExportDoneDialog(outcome, timeline=None, open_url=QDesktopServices.openUrl, parent=window)
    done.open()

The buttons hand the folder or the video to the desktop (QDesktopServices.openUrl: the file manager, the
user's video player); tests pass their own `open_url` and see what would be opened. Both buttons leave
the dialog open, so the user can do both; Close (or Esc) dismisses it. When the desktop has nothing to
open them with, the dialog says so and where the files are.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from magi_studio.export import ExportResult


def describe_files(video: Path, sidecar: Path, timeline: Path | None = None) -> list[tuple[Path, str]]:
    """Each file an export writes, with what it holds, in the order a user looks for them."""
    files = [(timeline, "the timeline (OpenTimelineIO) for Resolve, Kdenlive, Premiere or Flame")] if timeline else []
    return files + [(video, "the video (H.264 mp4)"),
                    (sidecar, "each chunk's shot, prompt, seed and take, frame by frame")]


def files_html(files: list[tuple[Path, str]]) -> str:
    """The files as HTML: the folder they are in (an export writes them side by side), then each name in bold
    with what it holds."""
    folders = sorted({str(path.parent) for path, _ in files})
    rows = "".join(f"<li><b>{escape(path.name)}</b> — {escape(what)}</li>" for path, what in files)
    return f"in {escape(', '.join(folders))}:<ul style='margin-left:-24px'>{rows}</ul>"


class ExportDoneDialog(QDialog):
    def __init__(self, outcome: ExportResult, *, timeline: Path | None = None,
                 open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ExportDoneDialog")
        self.setWindowTitle("Export Finished")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.outcome, self.timeline, self.open_url = outcome, timeline, open_url
        info = outcome.video
        seconds = info.frames / info.fps if info.fps else 0.0
        headline = QLabel(f"<b>Exported {info.frames} frames</b> ({info.width} × {info.height}, {seconds:.1f} s at "
                          f"{info.fps:g} fps).")
        headline.setObjectName("ExportDoneHeadline")
        self.files = QLabel("Written " + files_html(describe_files(outcome.path, outcome.sidecar, timeline)))
        self.files.setObjectName("ExportDoneFiles")
        self.files.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.files.setWordWrap(True)
        self.problem = QLabel()  # when the desktop has nothing to open a folder or a video with
        self.problem.setObjectName("ExportDoneProblem")
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.show_button = self.buttons.addButton("Show in Folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.play_button = self.buttons.addButton("Play", QDialogButtonBox.ButtonRole.ActionRole)
        self.play_button.setDefault(True)
        self.show_button.clicked.connect(self.show_in_folder)
        self.play_button.clicked.connect(self.play)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(headline)
        layout.addWidget(self.files)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

    def show_in_folder(self) -> bool:
        """The folder the files were written to, in the file manager."""
        return self._open(self.outcome.path.parent, "folders")

    def play(self) -> bool:
        """The video, in the user's video player."""
        return self._open(self.outcome.path, "videos")

    def _open(self, path: Path, what: str) -> bool:
        if self.open_url(QUrl.fromLocalFile(str(path))):
            self.problem.hide()
            return True
        self.problem.setText(f"Nothing on this computer opens {what}; the files are in {self.outcome.path.parent}.")
        self.problem.show()
        grow_to_fit(self)
        return False


def grow_to_fit(dialog: QWidget) -> None:
    """Make `dialog` tall enough for its wrapped labels at its width (it never shrinks under the user)."""
    needed = dialog.heightForWidth(dialog.width()) if dialog.isVisible() else -1
    if needed > dialog.height():
        dialog.resize(dialog.width(), needed)
