"""ProjectController: new, open, save, save as, recent files, close with a prompt, autosave and recovery.

    projects = ProjectController(settings, prompts=ProjectPrompts(window), generation=generation)
    projects.sessionChanged.connect(window.set_document_session)   # a new DocumentSession per project
    projects.errorReported.connect(window.report_error)            # ProjectError & co: the one error path
    projects.start(args.project)          # `magi-studio PROJECT`; else crashed untitled work, the last project, New
    ...
    if not projects.close_project(): event.ignore()                 # closeEvent: Save / Discard / Cancel

A project is read completely before anything else happens, so a damaged or newer file is reported
(its ProjectError, with a title) and never becomes the open project — nothing can save over it.
Untitled projects live in a scratch bundle under the app's data folder; a lock file in it tells a
second running MAGI Studio that it is in use, so recovery never offers (or deletes) live work.

Autosave: on a timer while there are edits, and after every generated chunk (GenerationController),
through one shared Autosaver: the project is snapshotted on the GUI thread and written off it. After
a crash, `start` offers each untitled autosave; otherwise it reopens the project that was open last
(the first recent file, while Settings' `reopen_last_project` is on), and opening a project offers its
autosave when it is newer than the last save — so a crash in a saved project comes back as that
project with its recovery offer, not as Untitled. A generation run the app did not live to finish left
its run marker (document/run_marker.py) in the project folder: opening the project then offers to
resume it ("N of M chunks were finished"), and Resume generates the chunks it had left. The questions
are asked through `prompts` (dialogs/project_prompts.py: Save / Discard / Cancel, Recover / Discard, file
choosers), which tests replace.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QLockFile, QObject, QTimer, Signal

from magi_engine.errors import EngineError
from magi_studio.controllers.common import Autosaver
from magi_studio.dialogs.project_prompts import CANCEL, RECOVER, SAVE, ProjectPrompts
from magi_studio.document.errors import ProjectError
from magi_studio.document.model import (DEFAULT_SIZE, ChunkState, Project, ProjectSettings, new_project,
                                        storyboard_states)
from magi_studio.document.run_marker import clear_run_marker, read_run_marker
from magi_studio.document.store import (AUTOSAVE, EXTENSION, MANIFEST, ProjectStore, bundle_path, discard_recovery,
                                        find_recovery, find_scratch_recoveries, load_recovery, open_project)
from magi_studio.document_session import DocumentSession
from magi_studio.settings import app_data_folder

log = logging.getLogger(__name__)

APP_NAME = "MAGI Studio"
AUTOSAVE_INTERVAL_MS = 30_000
IN_USE_LOCK = ".in-use.lock"
#: The folder (in the app's data folder) of the locks of the saved projects open in a MAGI Studio.
OPEN_LOCKS = "open-projects"


def default_scratch_root() -> Path:
    return app_data_folder() / "untitled"


def default_session_factory(project: Project, store: ProjectStore, *, scratch: bool) -> DocumentSession:
    return DocumentSession(project, store, scratch=scratch)


def default_project_settings(settings, model_info=None) -> ProjectSettings:
    """A new project's settings: the model and generation values chosen in Settings, sizes from the model."""
    from magi_engine.config import SUPPORTED_STEPS
    from magi_engine.variants import MAGI_VARIANTS

    model = settings.model
    size = DEFAULT_SIZE
    if model_info is not None and model_info.spec == model:
        size = (model_info.width, model_info.height)
    elif model in MAGI_VARIANTS:
        size = (MAGI_VARIANTS[model].width, MAGI_VARIANTS[model].height)
    steps = settings.steps if settings.steps in SUPPORTED_STEPS else None
    return ProjectSettings(model=model, width=settings.width or size[0], height=settings.height or size[1],
                           steps=steps, window=settings.window, guidance_scale=settings.guidance)


class ProjectController(QObject):
    #: (session or None) after new / open / recover / close; views and the GenerationController follow it.
    sessionChanged = Signal(object)
    #: (Path or None for untitled) where the project is saved.
    pathChanged = Signal(object)
    #: ("Name* — MAGI Studio") whenever the name or the dirty mark changes.
    titleChanged = Signal(str)
    dirtyChanged = Signal(bool)
    #: (list of paths) for File > Open Recent.
    recentFilesChanged = Signal(list)
    #: (path) after a save.
    saved = Signal(str)
    #: (EngineError, ProjectError included) the one error path; every error has a `.title`.
    errorReported = Signal(object)

    def __init__(self, settings, *, scratch_root: str | Path | None = None,
                 session_factory: Callable[..., DocumentSession] = default_session_factory,
                 prompts: ProjectPrompts | None = None, generation=None, autosaver: Autosaver | None = None,
                 autosave_interval_ms: int = AUTOSAVE_INTERVAL_MS, model_info: Callable[[], object] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings, self.prompts, self.generation = settings, prompts or ProjectPrompts(), generation
        self.scratch_root = Path(scratch_root) if scratch_root is not None else default_scratch_root()
        self.session_factory, self.model_info = session_factory, model_info or (lambda: None)
        self.autosaver = autosaver if autosaver is not None else Autosaver(self)
        self.autosaver.failed.connect(self._on_autosave_failed)
        self.autosaver.saved.connect(self._on_autosaved)
        if generation is not None:  # one autosave writer, so autosaves land in the order they were taken
            generation.autosaver = self.autosaver
        self.session: DocumentSession | None = None
        self._untitled = False
        self._lock: QLockFile | None = None
        self._edited_since_autosave = False
        self._autosave_failing = False
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_interval_ms)
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()

    # State ------------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The saved project's bundle folder (None while untitled or closed)."""
        return None if self.session is None or self._untitled else self.session.store.path

    @property
    def is_untitled(self) -> bool:
        return self.session is not None and self._untitled

    @property
    def display_name(self) -> str:
        if self.session is None:
            return ""
        return "Untitled" if self._untitled else self.session.store.path.name.removesuffix(EXTENSION)

    def is_dirty(self) -> bool:
        return self.session is not None and not self.session.undo_stack.isClean()

    def window_title(self) -> str:
        if self.session is None:
            return APP_NAME
        return f"{self.display_name}{'*' if self.is_dirty() else ''} — {APP_NAME}"

    def recent_files(self) -> list[str]:
        return self.settings.recent_files

    def clear_recent_files(self) -> None:
        self.settings.clear_recent_files()
        self.recentFilesChanged.emit([])

    # Start-up ---------------------------------------------------------------------------------
    def start(self, path: str | Path | None = None) -> bool:
        """Open `path` (the command line's PROJECT); without one, offer crashed untitled work, else reopen
        the last project (when Settings say so), else start a new project."""
        if path is not None:
            return self.open_project(path) or self.new_project()
        if self._recover_untitled():
            return True
        last = self.settings.recent_files[:1] if self.settings.reopen_last_project else []
        if last and Path(last[0]).is_dir() and self.open_project(last[0]):
            return True  # its autosave, if newer than its last save, was offered on the way
        return self.new_project()

    def _recover_untitled(self) -> bool:
        """Offer each crashed untitled project's autosave; True once one is recovered and open."""
        self._remove_abandoned_scratch()
        for folder in find_scratch_recoveries(self.scratch_root):
            lock = self._try_lock(folder)
            if lock is None:
                continue  # another running MAGI Studio is working in it
            recovery = ProjectStore(folder).find_recovery()
            if recovery is None:
                lock.unlock()
                continue
            if self.prompts.offer_recovery("Untitled", recovery.autosaved_at, saved=False) == RECOVER:
                try:
                    project = load_recovery(folder)
                except ProjectError as error:
                    lock.unlock()
                    self.report(error)
                    continue
                self._install(project, ProjectStore(folder), untitled=True, dirty=True, lock=lock)
                self._report_damage(project, "Untitled")
                self._offer_resume(self.session.document.project, self.session.store)
                return True
            lock.unlock()
            shutil.rmtree(folder, ignore_errors=True)
        return False

    # Commands ---------------------------------------------------------------------------------
    def new_project(self) -> bool:
        if not self.close_project():
            return False
        try:
            store = ProjectStore.create_scratch(self.scratch_root)
        except ProjectError as error:
            self.report(error)
            return False
        self._install(new_project(default_project_settings(self.settings, self.model_info())), store,
                      untitled=True, dirty=False, lock=self._try_lock(store.path))
        return True

    def open_project(self, path: str | Path | None = None) -> bool:
        """Open a project (asking for it when `path` is None); the open one is closed first, with the prompt."""
        if path is None:
            path = self.prompts.open_path(self.settings.last_folder)
            if path is None:
                return False
        try:  # read it all first: a damaged or newer file is reported and never becomes the open project
            project, store = open_project(path)
        except ProjectError as error:
            if not Path(path).expanduser().exists():
                self.settings.remove_recent_file(bundle_path(path))
                self.recentFilesChanged.emit(self.settings.recent_files)
            self.report(error)
            return False
        if self.path is not None and self.path.resolve() == store.path.resolve():
            return True  # already open
        free, lock = self._lock_project(store.path)
        if not free:
            self.report(ProjectError(f"“{store.path.name.removesuffix(EXTENSION)}” is open in another MAGI Studio "
                                     "window. Close it there first: two windows saving one project would each "
                                     "overwrite the other's work."))
            return False
        if not self.close_project():
            if lock is not None:
                lock.unlock()
            return False
        dirty = False
        recovery = find_recovery(store.path)
        if recovery is not None:
            if self.prompts.offer_recovery(store.path.name.removesuffix(EXTENSION), recovery.autosaved_at) == RECOVER:
                try:
                    project, dirty = load_recovery(store.path), True
                except ProjectError as error:
                    self.report(error)  # the saved version opens instead; the autosave stays for another try
            else:
                discard_recovery(store.path)
        self._install(project, store, untitled=False, dirty=dirty, lock=lock)
        self._remember(store.path)
        self._report_damage(project, store.path.name.removesuffix(EXTENSION))
        self._offer_resume(self.session.document.project, store)
        return True

    def open_recent(self, path: str | Path) -> bool:
        return self.open_project(path)

    def save(self) -> bool:
        if self.session is None:
            return False
        if self._untitled:
            return self.save_as()
        self.autosaver.flush()  # an autosave landing after the save would look like unsaved work
        try:
            self.session.store.save(self.session.document.project)
        except ProjectError as error:
            self.report(error)
            return False
        self._saved()
        return True

    def save_as(self, path: str | Path | None = None) -> bool:
        if self.session is None:
            return False
        if path is None:
            suggested = str(Path(self.settings.last_folder or Path.home()) / self.display_name)
            path = self.prompts.save_path(suggested)
            if path is None:
                return False
        target, session = bundle_path(path), self.session
        overwrite = False
        if target.exists() and target.resolve() != session.store.path.resolve() and (target / MANIFEST).is_file():
            if not self.prompts.confirm_replace(target):
                return False
            overwrite = True
        if self.generation is not None:
            self.generation.flush()  # chunks delivered so far are committed, so they are copied too
        self.autosaver.flush()
        old_store, was_untitled = session.store, self._untitled
        try:
            store = old_store.save_as(session.document.project, target, overwrite=overwrite)
        except ProjectError as error:
            self.report(error)
            return False
        if hasattr(session, "set_store"):
            session.set_store(store, scratch=False)
        else:
            session.store = store
        if self.generation is not None:
            self.generation.retarget_store(store)
        self._untitled = False
        self._release_lock()  # the old bundle's; the new one is this window's now
        self._lock = self._lock_project(store.path)[1]
        if was_untitled:
            shutil.rmtree(old_store.path, ignore_errors=True)  # the copy is complete: the scratch bundle goes
        else:
            discard_recovery(old_store.path)  # its unsaved edits are saved now, in the new bundle
        self._saved()
        self.pathChanged.emit(store.path)
        return True

    def close_project(self, stop_text: str = "Stop and Close") -> bool:
        """Close the open project; False when the user chose to keep working.

        During a run it first asks whether to stop it (`stop_text` names the button: "Stop and Quit"); the run
        goes on untouched until the answer, and on "Keep Working". Stopping commits every finished chunk,
        then Save / Discard / Cancel is asked if there are edits; Cancel there lets the run go on."""
        session = self.session
        if session is None:
            return True
        stopped = False
        if self.generation is not None and self.generation.is_generating():
            if not self.prompts.stop_run(stop_text, self.generation.runEnded):
                return False
            self.generation.stop()  # finished chunks are committed first, so the next question covers them
            stopped = True
        if self.is_dirty():
            choice = self.prompts.unsaved_changes(self.display_name, untitled=self._untitled)
            if choice == CANCEL or (choice == SAVE and not self.save()):
                if stopped:
                    self.generation.continue_stopped()
                return False
        self.autosaver.flush()
        self._release_lock()
        if self._untitled:  # discarded or never edited: nothing in the scratch bundle is wanted
            shutil.rmtree(session.store.path, ignore_errors=True)
        else:
            discard_recovery(session.store.path)  # saved or discarded: the autosave is obsolete
        session.undo_stack.cleanChanged.disconnect(self._on_clean_changed)
        session.undo_stack.indexChanged.disconnect(self._on_edited)
        if hasattr(session, "close"):
            session.close()
        self.session = None
        if self.generation is not None:
            self.generation.set_session(None)
        self.sessionChanged.emit(None)
        self.pathChanged.emit(None)
        self.titleChanged.emit(self.window_title())
        return True

    def autosave_now(self) -> None:
        """Autosave if there were edits since the last autosave (the timer calls this)."""
        if self.session is not None and self._edited_since_autosave and self.is_dirty():
            self._edited_since_autosave = False
            self.autosaver.request(self.session.document.project, self.session.store)

    def shutdown(self) -> None:
        """The app is quitting (after close_project): stop the timer, finish pending autosaves."""
        self.autosave_timer.stop()
        self.autosaver.flush()
        self._release_lock()
        if self.session is not None and hasattr(self.session, "silence"):  # ended without closing (SIGTERM)
            self.session.silence()

    def report(self, error: BaseException) -> None:
        if not isinstance(error, EngineError):
            log.error("project operation failed", exc_info=error)
            error = ProjectError(f"{type(error).__name__}: {error}")
        log.warning("%s: %s", error.title, error)
        self.errorReported.emit(error)

    def _offer_resume(self, project: Project, store: ProjectStore) -> None:
        """A run the app did not live to finish left its marker: offer to generate the chunks it had left."""
        marker = read_run_marker(store.path)
        if marker is None or self.generation is None or marker.is_live():
            return  # none; or no way to generate here; or another MAGI Studio is running it now
        finished, total = marker.progress(project)
        if finished < total and self.prompts.offer_resume(finished, total):
            # Once start-up is over: the app's own first model load (Studio.start, after this) would
            # otherwise supersede the run's load of the project's model, and the run would end unseen.
            session, shot_ids = self.session, marker.shot_ids()
            QTimer.singleShot(0, self, lambda: self._resume(session, shot_ids))
        else:
            clear_run_marker(store.path)  # nothing left, or Not now: the chunks stay pending on the cards

    def _resume(self, session, shot_ids: list[str]) -> None:
        if session is self.session and not self.generation.is_generating():
            self.generation.generate_shots(shot_ids)  # each from its first chunk not done; a new marker

    def _report_damage(self, project: Project, name: str) -> None:
        """Say once, at open, how many chunks came back damaged (their cards and the player show which)."""
        if not project.damaged:
            return
        shown = sum(state is ChunkState.DAMAGED for states in storyboard_states(project).values() for state in states)
        if shown:
            what = f"{shown} chunk{'s' if shown > 1 else ''} of “{name}” {'are' if shown > 1 else 'is'} damaged"
            fix = "regenerating them recovers them" if shown > 1 else "regenerating it recovers it"
        else:
            count = len(project.damaged)
            what = f"{count} generated chunk{'s' if count > 1 else ''} in takes of “{name}” not in use now " \
                   f"{'are' if count > 1 else 'is'} damaged"
            fix = "regenerating them in their take recovers them"
        self.report(ProjectError(f"{what} (the generated files are missing or unreadable); {fix}."))

    # Internals --------------------------------------------------------------------------------
    def _install(self, project: Project, store: ProjectStore, *, untitled: bool, dirty: bool,
                 lock: QLockFile | None = None) -> None:
        session = self.session_factory(project, store, scratch=untitled)
        self.session, self._untitled, self._lock = session, untitled, lock
        stack = session.undo_stack
        if dirty:
            stack.resetClean()  # recovered work is not saved yet
        # Bound methods, not lambdas: Qt drops them when this controller goes, so a stack destroyed
        # later never calls into it.
        stack.cleanChanged.connect(self._on_clean_changed)
        stack.indexChanged.connect(self._on_edited)
        self._edited_since_autosave = dirty
        if self.generation is not None:
            self.generation.set_session(session)
        self.sessionChanged.emit(session)
        self.pathChanged.emit(self.path)
        self.dirtyChanged.emit(dirty)
        self.titleChanged.emit(self.window_title())

    def _saved(self) -> None:
        self.session.undo_stack.setClean()
        self._edited_since_autosave = False
        self._remember(self.session.store.path)
        self.titleChanged.emit(self.window_title())
        self.saved.emit(str(self.session.store.path))

    def _remember(self, path: Path) -> None:
        self.settings.add_recent_file(path)
        self.settings.last_folder = str(path.parent)
        self.recentFilesChanged.emit(self.settings.recent_files)

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirtyChanged.emit(not clean)
        self.titleChanged.emit(self.window_title())

    def _on_edited(self, index: int) -> None:
        self._edited_since_autosave = True

    def _on_autosaved(self, path: str) -> None:
        self._autosave_failing = False

    def _on_autosave_failed(self, error: BaseException) -> None:
        if not self._autosave_failing:  # say it once, not every 30 seconds
            self._autosave_failing = True
            self.report(error)

    # Scratch bundles --------------------------------------------------------------------------
    def _try_lock(self, folder: Path) -> QLockFile | None:
        """Claim an untitled project's scratch bundle; None while a live process holds it (a crashed one's lock
        is stale)."""
        lock, held = _claim(folder / IN_USE_LOCK)
        return lock if held else None

    def _lock_project(self, folder: Path) -> tuple[bool, QLockFile | None]:
        """(free, lock) for a saved project's bundle: not free while another live MAGI Studio has it open (its
        autosave would look like a crash's to recover, and both would save over each other). The lock lives in
        the app's data folder, keyed by the bundle's path, not in the bundle: a copy of an open project's folder
        must not carry it. A lock that cannot be made (a read-only home) leaves the project unlocked."""
        key = hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:24]
        locks = app_data_folder() / OPEN_LOCKS
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError:
            return True, None
        lock, held = _claim(locks / f"{key}.lock")
        if held:
            return True, lock
        return lock.error() != QLockFile.LockError.LockFailedError, None

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    def _remove_abandoned_scratch(self) -> None:
        """Untitled bundles without an autosave hold nothing that was ever committed: remove unclaimed ones."""
        if not self.scratch_root.is_dir():
            return
        for folder in self.scratch_root.glob(f"Untitled-*{EXTENSION}"):
            if folder.is_dir() and not (folder / AUTOSAVE).exists() and (lock := self._try_lock(folder)) is not None:
                lock.unlock()
                shutil.rmtree(folder, ignore_errors=True)


def _claim(path: Path) -> tuple[QLockFile, bool]:
    """A lock file at `path` and whether this process now holds it; a lock is stale only when its process is
    gone, however long it was held."""
    lock = QLockFile(str(path))
    lock.setStaleLockTime(0)
    return lock, lock.tryLock(0)
