"""Helpers for the storyboard editor's tests: the editor under test, drops from "another application"."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QWidget

from magi_studio.player import PreviewPlayer
from magi_studio.timeline import PlayerSync, TimelineView
from magi_studio.document_session import DocumentSession
from tests.magi_studio.document.fakes import write_image


@dataclass
class Editor:
    session: DocumentSession
    timeline: TimelineView
    player: PreviewPlayer
    sync: PlayerSync
    window: QWidget

    @property
    def project(self):
        return self.session.project

    @property
    def shot(self):
        return self.session.project.shots[0]

    def chunk_ids(self, shot_index: int = 0) -> list[str]:
        return [c.id for c in self.session.project.shots[shot_index].chunks]

    def states(self) -> list[str]:
        return [card.model.state for card in self.timeline.cards()]


def wait_for_frames(qtbot, sync: PlayerSync) -> None:
    """Wait until the player holds the frames of every chunk it shows (they are decoded in the background)."""
    qtbot.waitUntil(lambda: not sync.loading(), timeout=10_000)


def drop(widget: QWidget, pos: QPoint, mime: QMimeData) -> tuple[bool, bool]:
    """Drag `mime` onto `widget` at `pos` and drop it there, as a drag from another application would.

    Returns (entered, dropped): whether the drag was accepted on entering and whether the drop was."""
    point = QPointF(pos)  # QDropEvent takes a QPointF; the enter and move events a QPoint (PySide6 6.11 checks)
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    enter = QDragEnterEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    move = QDragMoveEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, move)
    event = QDropEvent(point, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return enter.isAccepted(), event.isAccepted()


def file_mime(*paths) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def menu_action(menu: QMenu, text: str):
    """The menu entry whose text (before its shortcut column) is `text`."""
    return next(a for a in menu.actions() if a.text().split("\t")[0] == text)


def answer_image_dialogs(monkeypatch, folder) -> list[str]:
    """Every file dialog picks `folder`/dawn.png (an image written there) and is recorded: the list of the folders
    the dialogs opened in."""
    folder.mkdir()
    image = write_image(folder / "dawn.png", size=(64, 64))
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda parent, caption, start, kinds: (asked.append(start), (image, kinds))[1])
    return asked
