"""The main window: the preview player, the menus and toolbar from magi_studio.actions, the engine's
status and progress, a welcome banner and the one place engine errors are shown.

    window = MainWindow(settings)            # owns an EngineWorker and loads settings.model
    window = MainWindow(settings, worker=w)  # tests/benchmarks: the caller owns and feeds `w`
    job = window.worker.generate(request); window.preview_job(job)   # chunks appear in the player

The timeline, takes view and project commands come with the document model; their actions exist
and are disabled until then. Errors from the engine arrive through one signal (EngineWorker.failed)
and are shown in one banner with the error's title and message.
"""

from __future__ import annotations

import logging
from html import escape

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox, QToolBar, QVBoxLayout, QWidget

from magi_studio.actions import ActionSet
from magi_studio.engine_worker import EngineState, EngineWorker, ModelInfo
from magi_studio.player import GenerationFeed, PreviewPlayer
from magi_studio.settings import Settings
from magi_studio.widgets.engine_status import EngineStatus
from magi_studio.widgets.job_progress import JobProgress
from magi_studio.widgets.notice_banner import NoticeBanner
from magi_studio.widgets.shortcuts_dialog import ShortcutsDialog

log = logging.getLogger(__name__)

APP_TITLE = "MAGI Studio"
WELCOME_TITLE = "Welcome to MAGI Studio"
WELCOME_BODY = (
    "Write a storyboard as a row of 24-frame chunks, one prompt each, and generate it chunk by chunk: each "
    "chunk appears here the moment it is finished. MAGI Studio runs <b>studio-mini</b>, a small model that "
    "ships with the app, on your <b>CPU</b> — no download, no GPU. For <b>MAGI-1</b>, choose a checkpoint "
    "folder or a hub variant such as <code>4.5B_distill</code> in <i>Edit › Settings</i> (downloaded once "
    "through Hugging Face; a large GPU is recommended).")


class MainWindow(QMainWindow):
    #: Emitted from closeEvent once the window has agreed to close (the app's loop waits for it).
    closed = Signal()

    def __init__(self, settings: Settings, worker: EngineWorker | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle(APP_TITLE)
        self.settings = settings
        self._owns_worker = worker is None
        self.worker = worker if worker is not None else EngineWorker(self)
        self._feeds: dict[int, GenerationFeed] = {}
        self._shortcuts_dialog: ShortcutsDialog | None = None

        # Centre: banners above the player.
        self.player = PreviewPlayer()
        self.welcome = NoticeBanner()
        self.welcome.dismissed.connect(self._on_welcome_dismissed)
        self.error_banner = NoticeBanner()
        self.last_error: Exception | None = None
        self.banner_area = QWidget()  # hidden with its margins when no banner is up
        banners = QVBoxLayout(self.banner_area)
        banners.setContentsMargins(16, 12, 16, 0)
        banners.setSpacing(10)
        for banner in (self.welcome, self.error_banner):
            banners.addWidget(banner)
            banner.shownChanged.connect(self._sync_banner_area)
        self.banner_area.hide()
        centre = QWidget()
        centre.setObjectName("PlayerPanel")
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner_area)
        column.addWidget(self.player, 1)
        self.setCentralWidget(centre)

        # Actions → menus and toolbar.
        self.action_set = ActionSet(self)
        self.action_set.fill_menu_bar(self.menuBar())
        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("MainToolBar")
        self.toolbar.setMovable(False)
        self.toolbar.setIconSize(QSize(20, 20))
        self.action_set.fill_tool_bar(self.toolbar)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.player.loopingChanged.connect(self.action_set["playback.loop"].setChecked)
        self.player.playingChanged.connect(self._on_playing_changed)
        self.player.store.layoutChanged.connect(self._sync_playback_actions)
        self._sync_playback_actions()

        # Status bar: engine state on the left, job progress on the right.
        self.engine_status = EngineStatus(self.worker)
        self.job_progress = JobProgress(self.worker)
        self.statusBar().addWidget(self.engine_status, 1)
        self.statusBar().addPermanentWidget(self.job_progress)
        self.statusBar().setSizeGripEnabled(False)

        self.worker.stateChanged.connect(self._on_engine_state)
        self.worker.modelLoaded.connect(self._on_model_loaded)
        self.worker.failed.connect(self.report_engine_error)
        self._on_engine_state(self.worker.state.value)

        self._initial_size()
        if not self.settings.window_geometry.isEmpty():
            self.restoreGeometry(self.settings.window_geometry)
        if not self.settings.welcome_dismissed:
            self.show_welcome()
        if self._owns_worker:
            self.worker.load_model(settings.model, settings.device, settings.dtype)

    def _initial_size(self) -> None:
        # 1280x820 where it fits, otherwise most of a small screen (1366x768 laptops), centred.
        available = self.screen().availableGeometry() if self.screen() is not None else None
        if available is None or available.isEmpty():
            self.resize(1280, 820)
            return
        width = min(1280, int(available.width() * 0.94))
        height = min(820, int(available.height() * 0.94))
        self.resize(width, height)
        self.move(available.center().x() - width // 2, available.center().y() - height // 2)

    # Engine -----------------------------------------------------------------------------------
    def preview_job(self, job_id: int, chunk_offset: int = 0) -> GenerationFeed:
        """Paint job `job_id`'s previews and chunks into the player as they arrive."""
        feed = GenerationFeed(self.worker, self.player.store, job_id, chunk_offset, parent=self)
        self._feeds[job_id] = feed
        feed.done.connect(lambda: self._feeds.pop(job_id, None))
        return feed

    def cancel_engine_job(self) -> None:
        """Stop whatever the engine is doing (the Stop action); finished chunks are kept."""
        self.worker.cancel()

    def report_engine_error(self, job_id: int, error: Exception) -> None:
        """The one place engine errors reach the user: a banner with the error's title and message."""
        self.last_error = error
        log.warning("engine job %d failed: %s", job_id, error)
        self.error_banner.show_notice(getattr(error, "title", "Engine error"), escape(str(error)), kind="error")

    def _on_engine_state(self, state: str) -> None:
        busy = state in (EngineState.LOADING.value, EngineState.GENERATING.value)
        self.action_set["generate.cancel"].setEnabled(busy)

    def _on_model_loaded(self, job_id: int, info: ModelInfo) -> None:
        self.error_banner.dismiss()
        width = self.settings.width or info.width
        height = self.settings.height or info.height
        self.player.store.set_frame_size(width, height)
        self.player.set_fps(info.fps)

    def _sync_playback_actions(self) -> None:
        # Nothing to play, step or loop over until a chunk exists (the transport buttons agree).
        has_frames = self.player.frame_count > 0
        for spec in self.action_set.specs:
            if spec.menu == "&Playback":
                self.action_set[spec.id].setEnabled(has_frames)

    def _on_playing_changed(self, playing: bool) -> None:
        action = self.action_set["playback.play"]
        action.setText("&Pause" if playing else "&Play")
        action.setIcon(self.player.transport.play.icon())

    # Help -------------------------------------------------------------------------------------
    def show_shortcuts(self) -> ShortcutsDialog:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self.action_set.shortcut_rows(), self)
            self._shortcuts_dialog.destroyed.connect(lambda: setattr(self, "_shortcuts_dialog", None))
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()
        return self._shortcuts_dialog

    def show_welcome(self) -> None:
        self.welcome.show_notice(WELCOME_TITLE, WELCOME_BODY)

    def _on_welcome_dismissed(self) -> None:
        self.settings.welcome_dismissed = True

    def _sync_banner_area(self) -> None:
        self.banner_area.setVisible(not (self.welcome.isHidden() and self.error_banner.isHidden()))

    def show_about(self) -> None:
        QMessageBox.about(self, "About MAGI Studio",
                          "<h3>MAGI Studio</h3><p>A storyboard editor for chunk-by-chunk video generation with "
                          "MAGI-1-style models.</p><p>Bundled font: DejaVu Sans (Bitstream Vera licence).</p>")

    # Closing ----------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.player.pause()
        self.settings.window_geometry = self.saveGeometry()
        if self._owns_worker:
            self.worker.shutdown()  # stops within one denoising step; never leave the thread running
        if self._shortcuts_dialog is not None:
            self._shortcuts_dialog.close()
        event.accept()
        self.closed.emit()
