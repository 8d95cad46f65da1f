"""The document tells, views listen: typed change notifications, the Document that publishes them,
and a plain undo history for code without Qt (the command line, tests).

Every edit is a command (see commands.py). `Document.apply(command)` runs it on the project and
delivers the changes it reports to each subscriber, one call per change:

    document = Document(project)
    unsubscribe = document.subscribe(timeline.on_change, ChunkChanged, ShotChanged)
    document.apply(SetPrompt(shot.id, chunk.id, "a red ball falls"))

Chunk states are derived (model.storyboard_states), so a change to one chunk can change the state of
later chunks and of continued shots: views recompute states on any change rather than trusting
the change to name every chunk affected.

In the Qt app a QUndoCommand wraps each command: redo() -> document.apply(cmd), undo() ->
document.revert(cmd), mergeWith(other) -> cmd.merge_key == other.merge_key and cmd.merge(other).
`UndoHistory` is the same contract without Qt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Union

from magi_studio.document.model import Project

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkChanged:
    """A chunk's prompt, seed or seed lock changed."""

    shot_id: str
    chunk_id: str


@dataclass(frozen=True)
class ShotChanged:
    """A shot's name, start, reference image or list of chunks changed."""

    shot_id: str


@dataclass(frozen=True)
class ShotsChanged:
    """Shots were added, removed or split: the storyboard's list of shots changed."""


@dataclass(frozen=True)
class TakesChanged:
    """A shot's take tree, its active take or a take's results changed (the active path may differ)."""

    shot_id: str


@dataclass(frozen=True)
class SettingsChanged:
    fields: tuple[str, ...]


Change = Union[ChunkChanged, ShotChanged, ShotsChanged, TakesChanged, SettingsChanged]
Subscriber = Callable[[Change], None]


class Document:
    """The open project and its subscribers. Views read `project`; they change it only through commands."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._subscribers: list[tuple[Subscriber, tuple[type, ...]]] = []

    def subscribe(self, callback: Subscriber, *change_types: type) -> Callable[[], None]:
        """Call `callback(change)` for every change (or only those of `change_types`); returns an unsubscribe."""
        entry = (callback, change_types)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def apply(self, command) -> None:
        self.publish(command.apply(self.project))

    def revert(self, command) -> None:
        self.publish(command.revert(self.project))

    def replace_project(self, project: Project) -> None:
        """Another project was opened (or recovered): every view must redraw."""
        self.project = project
        self.publish([ShotsChanged(), SettingsChanged(())])

    def publish(self, changes) -> None:
        for change in changes:
            for callback, types in list(self._subscribers):
                if not types or isinstance(change, types):
                    callback(change)


class UndoHistory:
    """A plain undo stack over a Document: push applies, merges continuous edits, tracks the clean state."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self._done: list = []
        self._undone: list = []
        self._clean_index: int | None = 0

    def push(self, command) -> None:
        self.document.apply(command)
        self._undone.clear()
        if self._clean_index is not None and self._clean_index > len(self._done):
            self._clean_index = None  # the clean state was in the redo branch just dropped
        top = self._done[-1] if self._done else None
        mergeable = (top is not None and command.merge_key is not None and top.merge_key == command.merge_key
                     and len(self._done) != self._clean_index)  # never merge into the saved state
        if mergeable and top.merge(command):
            return
        self._done.append(command)

    def undo(self) -> None:
        if self._done:
            command = self._done.pop()
            self.document.revert(command)
            self._undone.append(command)

    def redo(self) -> None:
        if self._undone:
            command = self._undone.pop()
            self.document.apply(command)
            self._done.append(command)

    def texts(self) -> list[str]:
        """What each done command did, oldest first (a history view)."""
        return [command.text for command in self._done]

    def set_clean(self) -> None:
        self._clean_index = len(self._done)

    @property
    def is_clean(self) -> bool:
        return self._clean_index == len(self._done)
