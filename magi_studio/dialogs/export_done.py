"""The export is written: what was written where, with "Show in Folder" and "Play".

    done = ExportDoneDialog(outcome, timeline=None, open_url=QDesktopServices.openUrl, parent=window)
    done.open()

The buttons hand the folder or the video to the desktop (QDesktopServices.openUrl: the file manager, the
user's video player); tests pass their own `open_url` and see what would be opened. Both buttons leave
the dialog open, so the user can do both; Close (or Esc) dismisses it.
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
    """The files as an HTML list: the name in bold, its folder and what it holds below."""
    rows = "".join(f"<li><b>{escape(path.name)}</b> — {escape(what)}<br><span style='opacity:0.7'>"
                   f"{escape(str(path.parent))}</span></li>" for path, what in files)
    return f"<ul style='margin-left:-24px'>{rows}</ul>"


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
        self.files = QLabel(files_html(describe_files(outcome.path, outcome.sidecar, timeline)))
        self.files.setObjectName("ExportDoneFiles")
        self.files.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.files.setWordWrap(True)
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
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

    def show_in_folder(self) -> bool:
        """The folder the files were written to, in the file manager."""
        return bool(self.open_url(QUrl.fromLocalFile(str(self.outcome.path.parent))))

    def play(self) -> bool:
        """The video, in the user's video player."""
        return bool(self.open_url(QUrl.fromLocalFile(str(self.outcome.path))))
