"""DocumentSession: the open document in the Qt app, the QUndoStack hosting its commands, and the state
views share.

    session = DocumentSession(project, store)      # or DocumentSession.new_untitled(scratch_root)
    session.push(SetPrompt(shot.id, chunk.id, "a red ball falls"))   # applied now, undoable, merges
    session.changed.connect(view.redraw)           # once per edit, after the typed signals
    session.push(command, coalesce=True)           # a run's finished chunk: views redraw on the next turn
    session.select(shot.id, chunk.id)              # the selection every view follows
    window.set_document_session(session)

`DocumentUndoCommand` is the whole bridge to QUndoStack: redo → Document.apply, undo → Document.revert,
and the document command's `merge_key`/`merge` become QUndoCommand's id/mergeWith, so a burst of
typing in one prompt is one undo step. `DocumentSession` owns the Document, the QUndoStack and the
ProjectStore, re-emits the document's typed changes as Qt signals, and holds the state views share
but the document does not: the selected shot and chunk, and a take previewed without being made
active. The dirty mark is the stack's clean state (HABITS 11). Views hold no truth: they redraw from
`session.project` whenever `changed` fires and send every edit back through `push`.

A generation run commits a chunk in the background while the user works: `push(command, coalesce=True)` applies
it and puts it on the stack at once, but `changed` comes from a 0-ms timer, once for every change pushed until
then, so the commit's own event stays short, the views' redraw is an event-loop turn of its own (the GUI thread's
other work and the repaint get in between), and chunks finished in the same turn redraw the views once. The
typed signals still come at once (views note what changed there); any edit, undo or redo delivers `changed` for
what was waiting too, so no view ever misses a change, and `flush_changes()` delivers it now.
"""

from __future__ import annotations

import logging
import shutil
import weakref
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack
from shiboken6 import isValid

from magi_engine.errors import EngineError
from magi_studio.document.model import Project, Shot, new_project
from magi_studio.document.observer import (Change, ChunkChanged, Document, SettingsChanged, ShotChanged,
                                           ShotsChanged, TakesChanged)
from magi_studio.document.store import ProjectStore

log = logging.getLogger(__name__)

UNTITLED = "Untitled"


class DocumentUndoCommand(QUndoCommand):
    """One document command on the QUndoStack."""

    def __init__(self, session: "DocumentSession", command, applied: bool = False) -> None:
        super().__init__(command.text or "Edit")
        # Weak: the stack holds its commands, and a command holding its session would keep the session
        # reachable from the stack (see DocumentSession's finalizer).
        self._session, self.command = weakref.ref(session), command
        # DocumentSession.push applies the command itself (so a refused edit raises to the caller
        # instead of dying inside Qt's redo()); QUndoStack.push then calls redo once more: skip it.
        self._skip_redo = applied
        self._sealed = False

    @property
    def session(self) -> "DocumentSession":
        return self._session()

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.session._run(self.session.document.apply, self.command)

    def undo(self) -> None:
        self.session._run(self.session.document.revert, self.command)

    def id(self) -> int:
        key = self.command.merge_key
        return -1 if key is None else hash(key) & 0x7FFFFFFF

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self._sealed or not isinstance(other, DocumentUndoCommand):
            return False
        key = self.command.merge_key
        if key is None or other.command.merge_key != key or not self.command.merge(other.command):
            return False
        self.setText(self.command.text)
        return True

    def seal(self) -> None:
        """Never merge another edit into this one (the user left the field: the next burst is a new step)."""
        self._sealed = True


class DocumentSession(QObject):
    """The open project: document, undo stack, store, selection and take preview, as Qt signals."""

    # The document's typed changes (observer.py), one signal per change.
    chunkChanged = Signal(str, str)        # shot id, chunk id
    shotChanged = Signal(str)              # shot id
    shotsChanged = Signal()
    takesChanged = Signal(str)             # shot id
    settingsChanged = Signal(object)       # tuple of field names
    #: Once per edit, undo, redo or project replacement, after the typed signals: redraw from `project`.
    changed = Signal()
    #: (shot id, chunk id), "" for none.
    selectionChanged = Signal(str, str)
    #: (shot id, take id) previewed in the player without being active; ("", "") when none.
    previewTakeChanged = Signal(str, str)
    #: True when there are edits since the last save (the undo stack is not clean).
    dirtyChanged = Signal(bool)
    #: The store (the project's folder) changed: after Save As.
    storeChanged = Signal()
    #: An edit the user asked for could not be done (an EngineError such as InputError), for the
    #: window's one error-reporting path.
    errorOccurred = Signal(object)

    def __init__(self, project: Project, store: ProjectStore, parent: QObject | None = None,
                 *, scratch: bool = False) -> None:
        super().__init__(parent)
        self.document = Document(project)
        self.store = store
        #: An untitled project in a scratch folder (removed on close if nothing was ever written there).
        self.scratch = scratch
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(_dirty_mark_of(weakref.ref(self)))
        # The stack's destructor emits indexChanged, cleanChanged, ... to whoever is still connected (the
        # window, the project controller). When the session is collected with them, the collector may have
        # cleared their instance dicts, and with them their dynamic slots, while their C++ objects live:
        # Qt would call slots that no longer exist. A session that is going away silences its stack first.
        weakref.finalize(self, _silence, self.undo_stack).atexit = False
        self._selection: tuple[str, str] = ("", "")
        self._selection_place: tuple[int, int] = (0, 0)  # shot and chunk position, to pick a neighbour
        self._preview: tuple[str, str] = ("", "")
        self._pending = False
        self._depth = 0
        # One timer for every change delivered later (coalesced commits, a command applied to the Document
        # directly): however many arrive before it fires, `changed` comes once.
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self._flush)
        self._unsubscribe = self.document.subscribe(self._on_change)
        self._select_valid()

    @classmethod
    def new_untitled(cls, scratch_root: str | Path, parent: QObject | None = None) -> "DocumentSession":
        """File > New: one shot with one chunk, in a fresh scratch bundle under `scratch_root`."""
        return cls(new_project(), ProjectStore.create_scratch(scratch_root), parent, scratch=True)

    # The document ------------------------------------------------------------------------------
    @property
    def project(self) -> Project:
        return self.document.project

    def push(self, command, *, coalesce: bool = False) -> None:
        """Apply a document command now and put it on the undo stack (merging continuous edits).

        A command the document refuses raises here, before anything reaches the stack. With `coalesce`, the
        views hear of it (`changed`) on the next event-loop turn, once with whatever else changed by then: for
        work that arrives in the background (a run's finished chunks), not for an edit the user just made.
        """
        self._run(self.document.apply, command, coalesce=coalesce)
        self.undo_stack.push(DocumentUndoCommand(self, command, applied=True))

    def withdraw(self, command) -> bool:
        """Take back `command` as if it had never been pushed (reverted, and no redo step left) when it is the last
        step of the history, nothing undone after it; False otherwise (the caller decides). For an edit made on
        the user's behalf that came to nothing: a regeneration's new seed when its run made no chunk."""
        stack = self.undo_stack
        top = stack.command(stack.index() - 1) if stack.index() else None
        if not isinstance(top, DocumentUndoCommand) or top.command is not command or stack.index() != stack.count():
            return False
        self._run(self.document.revert, command)
        top.setObsolete(True)  # QUndoStack.undo deletes an obsolete command (without calling its undo again)
        stack.undo()
        return True

    def flush_changes(self) -> None:
        """Deliver `changed` now for changes whose delivery was coalesced (nothing when none waits)."""
        self._flush()

    def try_push(self, command) -> bool:
        """push(), with a refused edit (an EngineError) reported through `errorOccurred` instead of raised."""
        try:
            self.push(command)
        except EngineError as error:
            self.report_error(error)
            return False
        return True

    def end_edit_burst(self) -> None:
        """The user left a field: the next keystrokes start a new undo step instead of merging."""
        top = self.undo_stack.command(self.undo_stack.index() - 1) if self.undo_stack.index() else None
        if isinstance(top, DocumentUndoCommand):
            top.seal()

    def report_error(self, error: Exception) -> None:
        self.errorOccurred.emit(error)

    def replace_project(self, project: Project, store: ProjectStore | None = None, *, scratch: bool = False) -> None:
        """Another project was opened (or recovered): a fresh history, selection and store."""
        self.undo_stack.clear()
        if store is not None:
            self.store, self.scratch = store, scratch
            self.storeChanged.emit()
        self._preview = ("", "")
        self._selection = ("", "")
        self._run(self.document.replace_project, project)
        self.previewTakeChanged.emit("", "")

    def set_store(self, store: ProjectStore, *, scratch: bool = False) -> None:
        """The project now lives in `store` (Save As returns a new one)."""
        self.store, self.scratch = store, scratch
        self.storeChanged.emit()

    # The dirty mark ----------------------------------------------------------------------------
    @property
    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.undo_stack.setClean()

    @property
    def display_name(self) -> str:
        """"Untitled" for a scratch project, else the bundle's name without ".magi"."""
        return UNTITLED if self.scratch else self.store.path.name.removesuffix(".magi")

    # Selection ---------------------------------------------------------------------------------
    @property
    def selected_shot_id(self) -> str:
        return self._selection[0]

    @property
    def selected_chunk_id(self) -> str:
        return self._selection[1]

    def selected_shot(self) -> Shot | None:
        return self.project.find_shot(self._selection[0])

    def selected_index(self) -> int | None:
        """The selected chunk's index in its shot (None when no chunk is selected)."""
        shot = self.selected_shot()
        return next((i for i, c in enumerate(shot.chunks) if c.id == self._selection[1]), None) if shot else None

    def select(self, shot_id: str, chunk_id: str = "") -> None:
        """Select a chunk (or a shot with no chunk); unknown ids select nothing of that kind."""
        shot = self.project.find_shot(shot_id)
        if shot is None:
            shot_id, chunk_id = "", ""
        elif chunk_id and all(c.id != chunk_id for c in shot.chunks):
            chunk_id = ""
        if (shot_id, chunk_id) == self._selection:
            return
        self._selection = (shot_id, chunk_id)
        self._remember_place()
        if self._preview[0] and self._preview[0] != shot_id:
            self.set_preview_take("", "")  # previewing belongs to the shot the takes view shows
        self.selectionChanged.emit(shot_id, chunk_id)

    def _remember_place(self) -> None:
        shot = self.selected_shot()
        if shot is not None:
            index = self.selected_index()
            self._selection_place = (self.project.shot_index(shot.id), index if index is not None else 0)

    def _select_valid(self) -> bool:
        """After an edit: keep the selection if it still exists, follow its chunk into the shot that holds it now
        (undoing a split moves the chunks back), else select its nearest neighbour."""
        project, (shot_id, chunk_id) = self.project, self._selection
        shot = project.find_shot(shot_id)
        holder = next((s for s in project.shots if any(c.id == chunk_id for c in s.chunks)), None) if chunk_id else None
        if shot is not None and (holder is shot or not shot.chunks):
            self._remember_place()
            return False
        if holder is not None:
            self._selection = (holder.id, chunk_id)
            self._remember_place()
            return True
        if shot is None:
            if not project.shots:
                self._selection = ("", "")
                return True
            shot = project.shots[min(self._selection_place[0], len(project.shots) - 1)]
            index = 0 if shot_id else self._selection_place[1]
        else:
            index = self._selection_place[1]
        chunk = shot.chunks[min(index, len(shot.chunks) - 1)].id if shot.chunks else ""
        self._selection = (shot.id, chunk)
        self._remember_place()
        return True

    # Take preview ------------------------------------------------------------------------------
    @property
    def preview_take(self) -> tuple[str, str]:
        """(shot id, take id) shown in the player instead of the shot's active take; ("", "") when none."""
        return self._preview

    def set_preview_take(self, shot_id: str, take_id: str) -> None:
        """Preview a take without changing the document; the active take or "" ends preview mode."""
        shot = self.project.find_shot(shot_id)
        if shot is None or shot.find_take(take_id) is None or shot.active_take_id == take_id:
            shot_id, take_id = "", ""
        if (shot_id, take_id) != self._preview:
            self._preview = (shot_id, take_id)
            self.previewTakeChanged.emit(shot_id, take_id)

    def _valid_preview(self) -> bool:
        shot_id, take_id = self._preview
        shot = self.project.find_shot(shot_id)
        if shot_id and (shot is None or shot.find_take(take_id) is None or shot.active_take_id == take_id):
            self._preview = ("", "")
            return True
        return False

    # Change delivery ---------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        self._pending = True
        if isinstance(change, ChunkChanged):
            self.chunkChanged.emit(change.shot_id, change.chunk_id)
        elif isinstance(change, ShotChanged):
            self.shotChanged.emit(change.shot_id)
        elif isinstance(change, ShotsChanged):
            self.shotsChanged.emit()
        elif isinstance(change, TakesChanged):
            self.takesChanged.emit(change.shot_id)
        elif isinstance(change, SettingsChanged):
            self.settingsChanged.emit(change.fields)
        if self._depth == 0:  # someone applied a command to the Document directly: still tell views once
            self._flush_timer.start()

    def _run(self, operation, argument, *, coalesce: bool = False) -> None:
        """Run a document operation; afterwards emit `changed` once (and the selection, if it moved), now or,
        with `coalesce`, from the flush timer."""
        self._depth += 1
        try:
            operation(argument)
        finally:
            self._depth -= 1
        if self._depth == 0:
            if coalesce:
                if self._pending and not self._flush_timer.isActive():
                    self._flush_timer.start()
            else:
                self._flush()

    def _flush(self) -> None:
        self._flush_timer.stop()
        if not self._pending:
            return
        self._pending = False
        moved = self._select_valid()
        preview_ended = self._valid_preview()
        self.changed.emit()
        if moved:
            self.selectionChanged.emit(*self._selection)
        if preview_ended:
            self.previewTakeChanged.emit("", "")

    # Closing -----------------------------------------------------------------------------------
    def silence(self) -> None:
        """The app ends with this project still open (SIGTERM): the stack, deleted at the process's end,
        tells no one that it is clean again (the controller and window it would call are gone or going)."""
        _silence(self.undo_stack)

    def close(self) -> None:
        """Stop listening; an untitled scratch folder nothing was ever written to is removed."""
        self._flush_timer.stop()  # the views leave with the session: a coalesced redraw would find them gone
        self._unsubscribe()
        if self.scratch and _holds_no_files(self.store.path):
            shutil.rmtree(self.store.path, ignore_errors=True)


def _dirty_mark_of(session_ref: "weakref.ref[DocumentSession]"):
    """The undo stack's cleanChanged → the session's dirtyChanged, for as long as the session lives.

    Not a bound method: PySide keeps the dynamic slot of an undecorated method in the receiver's
    instance dict, and the garbage collector clears that dict while the C++ session still lives. When
    the same collection frees the stack first (a dirty stack emits cleanChanged from its destructor),
    Qt then calls a slot that no longer exists: "AttributeError: Slot 'DocumentSession::' not found",
    raised into whatever test is running. This callable lives in no instance dict, and a session that
    is going away reports nothing: one being collected has its weak reference cleared already, one whose
    C++ object was deleted first (PySide deletes what Python owns at exit) is no longer valid.
    """
    def on_clean_changed(clean: bool) -> None:
        session = session_ref()
        if session is not None and isValid(session):
            session.dirtyChanged.emit(not clean)
    return on_clean_changed


def _silence(stack: QUndoStack) -> None:
    if isValid(stack):  # PySide deletes what Python owns at exit, before the wrappers go
        stack.blockSignals(True)


def _holds_no_files(folder: Path) -> bool:
    # Only empty folders (assets/, results/): removing it cannot lose anything the user made.
    return folder.is_dir() and all(p.is_dir() for p in folder.rglob("*"))
