"""Studio: the running app — the main window, the engine thread and the two controllers, wired once.

    studio = Studio(settings)        # window + EngineWorker + GenerationController + ProjectController
    studio.start(path)               # PROJECT, else crashed untitled work (offered), the last project, New
    studio.window.show()
    ...                              # the user closes the window: Save / Discard / Cancel first
    studio.dispose()                 # autosaves written, the engine thread stopped, the window deleted

The window shows what it is given and the controllers know no widgets; this is the one place that
connects them (HABITS 13: no main window acting as a signal bus):

* the ProjectController owns the open project: its `sessionChanged` gives every view the session, its
  `close_project` guards the window's close, and File > New / Open / Open Recent / Save / Save As
  go to it (actions of target "studio" in magi_studio.actions, bound here);
* the GenerationController feeds the player's FrameStore itself and is attached to the window
  (Generate, Generate Shot, Generate From / Regenerate From Chunk, Stop, job states on the cards);
  its runs, which may span several shots, drive the status bar's progress;
* File > Export opens the ExportDialog on a snapshot of the project, Edit > Settings the SettingsDialog;
* every error — the engine's, the controllers', the dialogs' — reaches the window's one banner.

Tests build a Studio with their own `prompts` (the controller's questions: save changes, recover,
file choosers), `scratch_root` and, when they hold the engine, their own `worker`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMenu

from magi_studio.actions import STUDIO
from magi_studio.controllers.common import snapshot_project
from magi_studio.controllers.generation import GenerationController
from magi_studio.controllers.project import AUTOSAVE_INTERVAL_MS, ProjectController
from magi_studio.dialogs.project_prompts import ProjectPrompts
from magi_studio.engine_worker import EngineWorker
from magi_studio.main_window import MainWindow
from magi_studio.settings import Settings
from magi_studio.widgets.recent_files_menu import RecentFilesMenu

if TYPE_CHECKING:  # the dialogs load when first opened, not at startup (the export's video code, cv2)
    from magi_studio.dialogs.export_dialog import ExportDialog
    from magi_studio.dialogs.settings_dialog import SettingsDialog

log = logging.getLogger(__name__)

STATUS_MESSAGE_MS = 5000


class Studio(QObject):
    def __init__(self, settings: Settings, *, worker: EngineWorker | None = None, prompts=None,
                 scratch_root: str | Path | None = None, autosave_interval_ms: int = AUTOSAVE_INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._owns_worker = worker is None
        self.worker = worker if worker is not None else EngineWorker(self)
        self.window = MainWindow(settings, self.worker)
        self.generation = GenerationController(None, self.worker, player_sync=self.window.player_sync,
                                               settings=settings, parent=self)
        self.projects = ProjectController(settings, scratch_root=scratch_root,
                                          prompts=prompts if prompts is not None else ProjectPrompts(self.window),
                                          generation=self.generation, model_info=lambda: self.worker.model_info,
                                          autosave_interval_ms=autosave_interval_ms, parent=self)
        #: The open Export / Settings dialog (None when closed); one of each at a time.
        self.export_dialog: ExportDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self._shut_down = self._disposed = self._terminated = False
        #: How long quitting waits for a model load that cannot stop (importing torch) before leaving it to
        #: the process's end (app.run_app sets it; None: wait, as tests and scripts that go on need).
        self.abandon_load_after_ms: int | None = None

        window, projects, generation = self.window, self.projects, self.generation
        projects.sessionChanged.connect(window.set_document_session)
        projects.errorReported.connect(window.report_error)
        projects.saved.connect(lambda path: window.show_status(f"Saved {path}", STATUS_MESSAGE_MS))
        window.attach_generation(generation)  # its errorReported, job states, Generate/Regenerate/Stop
        window.job_progress.follow_run(generation)
        window.close_guard = self._may_close
        window.closed.connect(self.shutdown)
        window.action_set.bind(STUDIO, self)

        self.recent_menu = RecentFilesMenu(window)
        file_menu = window.menuBar().findChild(QMenu, "menu.file")
        file_menu.insertMenu(window.action_set["file.save"], self.recent_menu)
        self.recent_menu.set_paths(projects.recent_files())
        projects.recentFilesChanged.connect(self.recent_menu.set_paths)
        self.recent_menu.openRequested.connect(projects.open_recent)
        self.recent_menu.clearRequested.connect(projects.clear_recent_files)

    # Life -------------------------------------------------------------------------------------
    @property
    def session(self):
        """The open project's DocumentSession (None while none is open)."""
        return self.projects.session

    def start(self, path: str | Path | None = None, *, load_model: bool = True) -> bool:
        """Open `path`, or offer crashed untitled work, or reopen the last project, or start a new one; then
        load the model (or leave that to `load_model()`: the app calls it once the window is shown).

        The model in Settings is loaded at once (a new project uses it), so the first Generate does not
        wait for it; a project made with another model has it loaded when it is generated."""
        opened = self.projects.start(path)
        if load_model:
            self.load_model()
        return opened

    def load_model(self) -> None:
        """Load the model in Settings (or connect to the engine in Settings › Engine) unless one is there."""
        if self._owns_worker and self.worker.model_info is None and self.settings.engine_url:
            from magi_engine.remote.token import default_token_path  # Settings › Engine: a remote engine

            self.worker.connect_remote(self.settings.engine_url,
                                       token_file=self.settings.engine_token_file or str(default_token_path()))
        elif self._owns_worker and self.worker.model_info is None:
            from magi_studio.document.planning import memory_target

            project = self.session.document.project if self.session is not None else None
            # The open project's size decides what must fit (a project of another model loads its own at Generate).
            target = memory_target(project.settings) if project is not None \
                and project.settings.model == self.settings.model else None
            self.worker.load_model(self.settings.model, target=target, **self.settings.load_options())

    def _may_close(self) -> bool:
        """The window is closing: the project first (Save / Discard / Cancel), then the dialogs."""
        if not self.projects.close_project(stop_text="Stop and Quit"):
            return False
        for dialog in (self.export_dialog, self.settings_dialog):
            if dialog is not None:
                dialog.reject()  # an export or a download in flight stops first
        return True

    def shutdown(self) -> None:
        """After the window closed: pending autosaves written, the engine thread stopped. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self.generation.stop()  # normally already stopped by close_project
        self.projects.shutdown()
        if self._owns_worker:
            # Stops within one denoising step; a load still importing torch may be left to the process's end.
            self.worker.shutdown(abandon_load_after_ms=self.abandon_load_after_ms)

    def terminate(self) -> None:
        """End now without a question (SIGTERM: logout, `kill`): unsaved edits are autosaved, so the next
        start offers them back; finished chunks are already in the project. The window is deleted by
        dispose (run_app's end): this may run inside a question's event loop, under the close that asked."""
        if self._disposed or self._terminated:
            return
        question = QApplication.activeModalWidget()
        if question is not None:
            # Nobody will answer it (a logout closes the window, then sends SIGTERM): closed as if cancelled.
            question.reject() if isinstance(question, QDialog) else question.close()
            QTimer.singleShot(0, self, self.terminate)
            return
        self.generation.flush()
        self.projects.autosave_now()
        self._terminated = True
        self.shutdown()
        self.window.hide()
        self.window.closed.emit()

    def dispose(self) -> bool:
        """Close (if still open) and delete the window, and shut down (run_app, tests). Idempotent; False
        when the user chose to keep working (Cancel in the unsaved-changes question)."""
        if self._disposed:
            return True
        if self._terminated:  # already autosaved and shut down
            self._disposed = True
            self.window.deleteLater()
            return True
        if self.window.isVisible():
            if not self.window.close():  # closeEvent asks _may_close
                return False
        elif not self._may_close():  # never shown (a script, a test): the project is closed all the same
            return False
        self._disposed = True
        self.shutdown()
        self.window.deleteLater()
        return True

    # File > Export and Edit > Settings ----------------------------------------------------------
    def export_video(self) -> ExportDialog | None:
        """File > Export: the active takes (or the selected shot, a chunk range, the player's in/out range) to an
        mp4 or an OpenTimelineIO timeline."""
        session = self.projects.session
        if session is None:
            return None
        if self.export_dialog is not None:
            self.export_dialog.raise_()
            self.export_dialog.activateWindow()
            return self.export_dialog
        self.generation.flush()  # the chunks delivered so far are in the project
        marks = self.window.player.in_out  # the player's I/O range, when one is marked
        # A snapshot: chunks committed while the dialog is open must not change what is being exported.
        from magi_studio.dialogs.export_dialog import ExportDialog

        dialog = ExportDialog(snapshot_project(session.project), session.store,
                              selected_shot_id=session.selected_shot_id or None, settings=self.settings,
                              name=session.display_name, in_out=marks.frames if marks is not None else None,
                              parent=self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.failed.connect(self.window.report_error)
        dialog.exported.connect(lambda outcome: self.window.show_status(
            f"Exported {outcome.path}", STATUS_MESSAGE_MS))
        dialog.destroyed.connect(lambda: setattr(self, "export_dialog", None))
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def show_settings(self) -> SettingsDialog:
        """Edit > Settings: model, device, generation defaults; Apply also updates the open project."""
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return self.settings_dialog
        from magi_studio.dialogs.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.worker, session=self.projects.session, parent=self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.failed.connect(self.window.report_error)
        dialog.applied.connect(lambda: self.window.show_status("Settings applied", STATUS_MESSAGE_MS))
        dialog.destroyed.connect(lambda: setattr(self, "settings_dialog", None))
        self.settings_dialog = dialog
        dialog.open()
        return dialog
