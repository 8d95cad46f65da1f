"""The main window: the preview player in the centre, the storyboard timeline docked below it, the takes
and the undo history docked beside it, menus and toolbar from magi_studio.actions, the engine's status
and progress, and the one place errors are shown.

    window = MainWindow(settings, worker)    # the caller (magi_studio.studio.Studio, a test) owns `worker`
    window.set_document_session(session)     # the project controller: another project was made or opened
    window.attach_generation(generation)     # Generate, Regenerate from here, job states on the cards
    window.close_guard = projects.close_project   # asked first when the window is closed; False keeps it open
    job = window.worker.generate(request); window.preview_job(job)   # tests: an engine job in the player

The window holds no project of its own: it shows the DocumentSession it is given (None: nothing open),
and the Studio gives it the project controller's. Everything that shows the project listens to that
one session (magi_studio.document_session): the timeline, the takes view, the history, the player (through
PlayerSync) and the title's unsaved mark. Errors
from the engine (EngineWorker.failed) and from edits the user asked for (DocumentSession.errorOccurred,
e.g. a dropped file that is not an image) reach one banner with the error's title and message.
"""

from __future__ import annotations

import logging
from html import escape
from typing import Callable

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMessageBox, QToolBar, QVBoxLayout, QWidget

from magi_studio.actions import ActionSet
from magi_studio.document.commands import SetProjectSettings
from magi_studio.document.model import storyboard_chunks
from magi_engine.events import Failed
from magi_studio.document.errors import ProjectError
from magi_studio.engine_worker import EngineState, EngineWorker, ModelLoaded
from magi_studio.keyboard import TypingGuard
from magi_studio.player import GenerationFeed, PreviewPlayer
from magi_studio.settings import Settings
from magi_studio.takes import PreviewModeBar, TakesView
from magi_studio.takes.side_by_side import SideBySide
from magi_studio.timeline import PlayerSync, TimelineView
from magi_studio.timeline.glyphs import glyph
from magi_studio.document_session import DocumentSession
from magi_studio.widgets.history_view import HistoryView
from magi_studio.widgets.elided_label import ElidedLabel
from magi_studio.widgets.engine_status import EngineStatus
from magi_studio.widgets.generation_queue import GenerationQueueView
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

#: Icons drawn in code (timeline.glyphs) for actions whose icon resources/icons does not ship.
GLYPH_ICONS = {"edit.insert_chunk": "insert-chunk", "edit.move_left": "move-left", "edit.move_right": "move-right",
               "edit.split_shot": "split", "edit.new_shot": "new-shot", "edit.rename_shot": "rename",
               "edit.lock_seed": "lock", "edit.new_seed": "dice", "view.storyboard": "storyboard",
               "view.history": "history", "view.zoom_in": "zoom-in", "view.zoom_out": "zoom-out",
               "generate.draft": "draft", "generate.final_quality": "final"}
#: How long a status message stays; a generation's outcome stays longer (the user may have looked away).
STATUS_MESSAGE_MS = 5000
OUTCOME_MESSAGE_MS = 15000
#: A window at least this tall on first start shows the takes and the history one above the other.
TALL_WINDOW = 950
#: The timeline's own toolbar (None: a separator).
TIMELINE_ACTIONS = ("edit.add_chunk", "edit.insert_chunk", "edit.duplicate_chunk", "edit.delete_chunk", None,
                    "edit.move_left", "edit.move_right", None, "edit.split_shot", "edit.new_shot", None,
                    "edit.reference_image", "edit.lock_seed", "edit.new_seed", None, "view.zoom_out", "view.zoom_in")
#: Editing action → the timeline's availability key (TimelineEditing.availability).
EDIT_AVAILABILITY = {"edit.add_chunk": "add", "edit.insert_chunk": "chunk", "edit.duplicate_chunk": "chunk",
                     "edit.delete_chunk": "delete", "edit.move_left": "move_left", "edit.move_right": "move_right",
                     "edit.split_shot": "split", "edit.new_shot": "document", "edit.rename_shot": "shot",
                     "edit.reference_image": "shot", "edit.lock_seed": "chunk", "edit.new_seed": "chunk",
                     "generate.regenerate": "regenerate", "generate.from": "generate_from",
                     "generate.shot": "generate_shot", "generate.takes": "shot",
                     "generate.variations": "regenerate"}


class MainWindow(QMainWindow):
    #: Emitted from closeEvent once the window has agreed to close (the app's loop waits for it).
    closed = Signal()

    def __init__(self, settings: Settings, worker: EngineWorker, parent: QWidget | None = None, *,
                 session: DocumentSession | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.settings = settings
        self.worker = worker
        #: Asked when the window is about to close (the project's Save / Discard / Cancel); False keeps it open.
        self.close_guard: Callable[[], bool] | None = None
        self._feeds: dict[int, GenerationFeed] = {}
        self._shortcuts_dialog: ShortcutsDialog | None = None
        self.session: DocumentSession | None = None
        #: The GenerationController, once attach_generation has wired it (None: nothing generates yet).
        self.generation = None
        self._session_connections: list = []
        self._docks_sized = False
        #: Hands a file or web address to the desktop (Help › User Guide); tests replace it.
        self.open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl

        # Centre: banners and the take-preview bar above the player.
        self.player = PreviewPlayer()
        self.welcome = NoticeBanner()
        self.welcome.dismissed.connect(lambda: setattr(self.settings, "welcome_dismissed", True))  # remembered
        self.error_banner = NoticeBanner()
        self.last_error: Exception | None = None
        self._error_job = 0  # the engine job whose error the banner shows (0: not an engine job's)
        self.banner_area = QWidget()  # hidden with its margins when no banner is up
        banners = QVBoxLayout(self.banner_area)
        banners.setContentsMargins(16, 12, 16, 0)
        banners.setSpacing(10)
        self._welcome_up = False  # shown and not dismissed (it steps aside while the error banner is up)
        self.welcome.shownChanged.connect(lambda shown: setattr(self, "_welcome_up", shown))
        for banner in (self.welcome, self.error_banner):
            banners.addWidget(banner)
            banner.shownChanged.connect(self._sync_banner_area)
        # Before the error shows, not after: the two up for a moment grew a 1366x768 window to hold both, for good.
        self.error_banner.aboutToShow.connect(self.welcome.hide)
        self.banner_area.hide()
        self.preview_bar = PreviewModeBar()
        centre = QWidget()
        centre.setObjectName("PlayerPanel")
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.preview_bar)
        column.addWidget(self.banner_area)
        column.addWidget(self.player, 1)
        self.setCentralWidget(centre)

        # The document's views: the timeline below the player, takes and history beside it.
        self.timeline = TimelineView()
        self.timeline.set_frame_store(self.player.store)
        self.timeline.takesRequested.connect(lambda shot_id: self.show_takes())
        self.timeline.set_zoom(self.settings.timeline_zoom)  # the zoom the user left it at
        self.timeline.zoomSettled.connect(lambda level: setattr(self.settings, "timeline_zoom", level))
        self.timeline.set_image_folder(self.settings.image_folder)
        self.timeline.imageFolderChosen.connect(lambda folder: setattr(self.settings, "image_folder", folder))
        self.takes_view = TakesView()
        self.history_view = HistoryView()
        self.player_sync = PlayerSync(self.player, self.timeline, self)
        self.timeline_dock = self._dock("Storyboard", "StoryboardDock", self.timeline,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.timeline_dock.setTitleBarWidget(self.timeline.detach_header())
        self.takes_dock = self._dock("Takes", "TakesDock", self.takes_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", "HistoryDock", self.history_view,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.queue_view = GenerationQueueView()
        self.queue_view.showTakeRequested.connect(self.show_take)
        self.queue_dock = self._dock("Queue", "QueueDock", self.queue_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.queue_dock.visibilityChanged.connect(lambda shown: shown and self.queue_view.catch_up())  # its tab raised
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.BottomDockWidgetArea)

        # Actions → menus, toolbars and the docks' view toggles.
        self.action_set = ActionSet(self)
        for action_id, name in GLYPH_ICONS.items():
            self.action_set[action_id].setIcon(glyph(name))
        #: (tool tip, status tip) of the actions that generate from the selected chunk on, shown while it can be.
        self._generate_from_tips = {action_id: (self.action_set[action_id].toolTip(), self.action_set[action_id].statusTip())
                                    for action_id in ("generate.from", "generate.regenerate", "generate.variations")}
        self.action_set.fill_menu_bar(self.menuBar())
        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("MainToolBar")
        self.toolbar.setMovable(False)
        self.toolbar.setIconSize(QSize(20, 20))
        self.action_set.fill_tool_bar(self.toolbar)
        draft = self.action_set["generate.draft"]
        draft.setIconText("Draft")  # beside Generate, with its word: a director sees at once which mode runs
        self.toolbar.widgetForAction(draft).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toolbar.widgetForAction(draft).setObjectName("DraftModeButton")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self.timeline.set_header_actions([self.action_set[a] if a else None for a in TIMELINE_ACTIONS])
        for action_id, dock in (("view.storyboard", self.timeline_dock), ("view.takes", self.takes_dock),
                                ("view.history", self.history_dock), ("view.queue", self.queue_dock)):
            self.action_set[action_id].setChecked(True)
            dock.toggleViewAction().toggled.connect(self.action_set[action_id].setChecked)
        # Plain keys type while a text field has the focus; Esc leaves it for the storyboard or the player.
        self.typing_guard = TypingGuard(
            lambda field: self.timeline.strip if self.timeline.isAncestorOf(field) else self.player, self)
        for widget in (self, self.timeline_dock, self.takes_dock, self.history_dock):
            self.typing_guard.watch(widget)
        # Two takes side by side in the player, asked for by the takes view; Esc (outside fields) leaves.
        self.side_by_side = SideBySide(self.player, self)
        for widget in (self, self.takes_dock):
            self.side_by_side.watch(widget)
        self.takes_view.errorReported.connect(self.report_error)
        self.takes_view.sideBySideRequested.connect(
            lambda shot_id, take_id: self.side_by_side.show_takes(shot_id, take_id) if shot_id
            else self.side_by_side.leave())
        self.side_by_side.changed.connect(self.takes_view.set_side_by_side)
        self.player.loopingChanged.connect(self.action_set["playback.loop"].setChecked)
        self.player.inOutChanged.connect(self.refresh_actions)  # Generate In/Out Range needs a range
        frame_numbers = self.action_set["view.frame_numbers"]  # timecode unless the user chose frame numbers
        frame_numbers.setChecked(self.settings.frame_numbers)
        frame_numbers.toggled.connect(lambda on: setattr(self.settings, "frame_numbers", on))
        self.player.playingChanged.connect(self._on_playing_changed)
        self.player.store.layoutChanged.connect(self._sync_playback_actions)
        self._sync_playback_actions()

        # Status bar: messages on the left; the engine's state (where it runs) and the job's progress on the
        # right, as permanent widgets: a message (15 s after a run) never hides where the engine runs.
        self.engine_status = EngineStatus(self.worker)
        self.job_progress = JobProgress(self.worker)
        # The message area is a label of our own, not QStatusBar.showMessage (which cuts a sentence wider than the
        # room the engine line and the progress leave mid-word): it ends in "…" there, whole in its tooltip.
        self.status_message = ElidedLabel()
        self.status_message.setObjectName("StatusMessage")
        self._status_timer = QTimer(self, singleShot=True)
        self._status_timer.timeout.connect(lambda: self.status_message.setText(""))
        self.statusBar().addWidget(self.status_message, 1)
        self.statusBar().addPermanentWidget(self.engine_status)
        self.statusBar().addPermanentWidget(self.job_progress)
        self.statusBar().setSizeGripEnabled(False)
        self.job_progress.outcome.connect(self._on_job_outcome)

        self.worker.stateChanged.connect(self._on_engine_state)
        self.worker.event.connect(self._on_engine_event)
        self._on_engine_state(self.worker.state.value)

        self._initial_size()
        if not self.settings.window_geometry.isEmpty():
            self.restoreGeometry(self.settings.window_geometry)
        if not self.settings.window_state.isEmpty():
            self._docks_sized = self.restoreState(self.settings.window_state)
        if not self.settings.welcome_dismissed:
            self.show_welcome()
        self.set_document_session(session)
        self.player.setFocus(Qt.FocusReason.OtherFocusReason)  # the playback keys work from the start

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = PanelDock(title, self)
        dock.setObjectName(name)  # saveState/restoreState find docks by name
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

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

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_sized:  # first start: room for the cards below, a readable take list beside
            self._docks_sized = True
            if self.height() >= TALL_WINDOW:  # room for both: the history below the takes, not behind them
                self.splitDockWidget(self.takes_dock, self.history_dock, Qt.Orientation.Vertical)
                column = self.height() - self.timeline.sizeHint().height()
                self.resizeDocks([self.takes_dock, self.history_dock], [column * 3 // 5, column * 2 // 5],
                                 Qt.Orientation.Vertical)
            else:
                self.tabifyDockWidget(self.takes_dock, self.history_dock)
            self.tabifyDockWidget(self.history_dock, self.queue_dock)  # the run's queue behind the history
            (self.history_dock if self.height() >= TALL_WINDOW else self.takes_dock).raise_()
            self.resizeDocks([self.timeline_dock], [self.timeline.sizeHint().height()], Qt.Orientation.Vertical)
            self.resizeDocks([self.takes_dock], [max(300, min(400, self.width() // 4))], Qt.Orientation.Horizontal)

    # The document -----------------------------------------------------------------------------
    def set_document_session(self, session: DocumentSession | None) -> None:
        """Show `session`'s project everywhere: timeline, takes, history, player, title, actions (None: none)."""
        for signal, slot in self._session_connections:
            signal.disconnect(slot)
        self._session_connections = []
        self.session = session
        for view in (self.timeline, self.takes_view, self.history_view, self.preview_bar, self.player_sync,
                     self.side_by_side):
            view.set_session(session)
        if session is None:
            self._update_title()
            self._sync_undo_actions()
            self.refresh_actions()
            return
        stack = session.undo_stack
        self._session_connections = [
            (session.errorOccurred, self.report_error), (session.dirtyChanged, self._update_title),
            (session.storeChanged, self._update_title), (session.changed, self.refresh_actions),
            (session.selectionChanged, self.refresh_actions), (session.previewTakeChanged, self.refresh_actions),
            (stack.indexChanged, self._sync_undo_actions),
            (stack.undoTextChanged, self._sync_undo_actions), (stack.redoTextChanged, self._sync_undo_actions)]
        for signal, slot in self._session_connections:
            signal.connect(slot)
        self._update_title()
        self._sync_undo_actions()
        self.refresh_actions()

    def undo(self) -> None:
        if self._next_step(-1) is not None:
            self.session.undo_stack.undo()

    def redo(self) -> None:
        if self._next_step(1) is not None:
            self.session.undo_stack.redo()

    def _next_step(self, direction: int):
        """The command Undo (-1) or Redo (+1) would run, or None when there is none or it must wait: a
        shot being generated keeps its history until its finished chunks are all committed."""
        stack = self.session.undo_stack if self.session is not None else None
        if stack is None:
            return None
        index = stack.index() - 1 if direction < 0 else stack.index()
        step = stack.command(index) if 0 <= index < stack.count() else None
        command = getattr(step, "command", None)
        if step is None or (command is not None and self.generation is not None
                            and self.generation.touches_busy_shot(command)):
            return None
        return step

    # Generation -------------------------------------------------------------------------------
    def attach_generation(self, generation) -> None:
        """Wire a GenerationController (magi_studio.controllers.generation) to the window.

        Generate runs the storyboard, the timeline's "Regenerate from here" / "Generate shot" go to it,
        its chunk job states show on the cards, its errors in the banner, Stop cancels its run, and
        Undo/Redo wait while a command would change a shot it is generating. Sessions are not touched
        here: the project controller hands each new session to the generation controller itself.
        """
        self.generation = generation
        generation.chunkJobState.connect(self.timeline.show_chunk_job_state)
        generation.errorReported.connect(self.report_error)
        generation.noticeReported.connect(self.report_notice)
        generation.queueNotice.connect(self.show_status)  # a request the run makes already: said, not queued
        generation.busyShotsChanged.connect(self._on_busy_shots)
        generation.generatingChanged.connect(self._on_generating)
        generation.queueChanged.connect(self._on_run_queue)
        generation.resultFrames.connect(self.player_sync.remember_frames)  # no decoding on the GUI thread
        self.queue_view.set_generation(generation)
        self.timeline.regenerateRequested.connect(self._regenerate_from)
        self.timeline.generateFromRequested.connect(self._generate_from)
        self.timeline.generateShotRequested.connect(generation.generate_shot)
        self.takes_view.set_generation(generation)
        self.refresh_actions()
        self._sync_undo_actions()

    def _on_generating(self, running: bool) -> None:
        self._on_run_queue()
        if running:
            self.status_message.setText("")  # how the last run ended is old news
            # The first run is the welcome's point made; left up, it kept the player a strip at 1366x768.
            self.welcome.dismiss()
        self._on_engine_state(self.worker.state.value)

    def generate_storyboard(self) -> None:
        """Generate: every chunk of the storyboard that is not done yet, shot after shot."""
        if self.generation is not None:
            with self.timeline.held_redraws():  # each card drawn once, queued (timeline.held_redraws)
                self.generation.generate_storyboard()

    def set_draft_mode(self, on: bool) -> None:
        """Draft Mode (the toolbar's Draft, Ctrl+Shift+D): the project's setting, one undoable step, saved with it."""
        if self.session is None or self.session.project.settings.draft == bool(on):
            return
        command = SetProjectSettings(draft=bool(on))
        command.text = "Draft mode on" if on else "Draft mode off"
        self.session.push(command)

    def generate_in_out(self) -> None:
        """Generate In/Out Range: exactly the chunks the player's in/out range touches, shot by shot in playing
        order, each from its first chunk in the range to its last (the controller's Generate From; a later
        request joins the run's queue)."""
        marks = self.player.in_out
        if self.generation is None or self.session is None or marks is None:
            return
        first, last = marks.chunks
        spans: dict[str, list[int]] = {}  # shot id -> its chunks in the range, in playing order
        for ref in storyboard_chunks(self.session.project)[first:last + 1]:
            spans.setdefault(ref.shot_id, []).append(ref.index)
        with self.timeline.held_redraws():
            for shot_id, indices in spans.items():
                stop = indices[-1] + 1
                self.generation.generate_from(shot_id, indices[0],
                                              stop if stop < len(self.session.project.shot(shot_id).chunks) else None)

    # The timeline names chunks by id; the controller counts them by their index in the shot.
    def _regenerate_from(self, shot_id: str, chunk_id: str) -> None:
        self.generation.regenerate_from(shot_id, self.session.project.shot(shot_id).chunk_index(chunk_id))

    def _generate_from(self, shot_id: str, chunk_id: str) -> None:
        self.generation.generate_from(shot_id, self.session.project.shot(shot_id).chunk_index(chunk_id))

    def _on_busy_shots(self, shot_ids: list) -> None:
        self.history_view.setEnabled(not shot_ids)  # clicking the history is an undo too
        self._sync_undo_actions()
        self._on_run_queue()

    def _on_run_queue(self) -> None:
        # Generate From a chunk whose earlier chunks the run is still making queues behind it: enabled.
        self.timeline.shots_in_run = frozenset(item.shot_id for item in self.generation.queue())
        self.refresh_actions()

    def refresh_actions(self, *_args) -> None:
        """Enable the editing actions the selection allows (controllers call this after connecting)."""
        available = self.timeline.availability()
        for action_id, key in EDIT_AVAILABILITY.items():
            self.action_set[action_id].setEnabled(available[key])
        self.action_set["generate.run"].setEnabled(self.generation is not None and self.session is not None)
        self.action_set["generate.in_out"].setEnabled(self.generation is not None and self.session is not None
                                                      and self.player.in_out is not None)
        waiting = self.timeline.missing_context()  # disabled for it: the tips say why
        for action_id, tips in self._generate_from_tips.items():
            action = self.action_set[action_id]
            action.setToolTip(waiting or tips[0])
            action.setStatusTip(waiting or tips[1])
        chunk = self.timeline.selected_chunk()
        self.action_set["edit.lock_seed"].setText("Unloc&k Seed" if chunk and chunk.seed_locked else "Loc&k Seed")
        draft = self.action_set["generate.draft"]
        draft.setEnabled(self.session is not None)
        draft.setChecked(self.session is not None and self.session.project.settings.draft)
        self.action_set["generate.final_quality"].setEnabled(
            self.generation is not None and self.takes_view.final_quality_take() is not None)

    def _sync_undo_actions(self, *_args) -> None:
        for action_id, direction, word in (("edit.undo", -1, "Undo"), ("edit.redo", 1, "Redo")):
            step = self._next_step(direction)
            action = self.action_set[action_id]
            action.setEnabled(step is not None)
            action.setText(f"&{word} {step.text()}" if step is not None and step.text() else f"&{word}")

    def _update_title(self, *_args) -> None:
        name = self.session.display_name if self.session is not None else ""
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}" if name else APP_TITLE)
        self.setWindowModified(bool(self.session and self.session.is_dirty))

    def show_take(self, shot_id: str, take_id: str) -> bool:
        """Go to a take (a completed request's Show): its first chunk selected, the player there, the take
        selected in the takes view (previewed unless it is the active one). False: it no longer exists."""
        session = self.session
        shot = session.project.find_shot(shot_id) if session is not None else None
        take = shot.find_take(take_id) if shot is not None else None
        if take is None or not shot.chunks:
            self.show_status("That take no longer exists.")
            return False
        first = take.first_chunk_id if any(c.id == take.first_chunk_id for c in shot.chunks) else shot.chunks[0].id
        session.select(shot.id, first)
        session.set_preview_take(shot.id, take.id)  # the active take: no preview, the storyboard shows it already
        self.show_takes()
        return True

    def show_takes(self) -> None:
        """Show the takes of the selected shot (Generate › Takes…, a shot's take chip)."""
        self.takes_dock.show()
        self.takes_dock.raise_()
        self.takes_view.tree.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # Engine -----------------------------------------------------------------------------------
    def preview_job(self, job_id: int, chunk_offset: int = 0) -> GenerationFeed:
        """Paint job `job_id`'s previews and chunks into the player as they arrive."""
        feed = GenerationFeed(self.worker, self.player.store, job_id, chunk_offset, parent=self)
        self._feeds[job_id] = feed
        feed.done.connect(lambda: self._feeds.pop(job_id, None))
        return feed

    def cancel_engine_job(self) -> None:
        """Stop whatever the engine is doing (the Stop action); finished chunks are kept."""
        if self.generation is not None and self.generation.is_generating():
            self.generation.cancel()  # the whole run stops, not only its current shot
        else:
            self.worker.cancel()

    def report_engine_error(self, job_id: int, error: Exception) -> None:
        """The one place errors reach the user: a banner with the error's title and message."""
        self.last_error, self._error_job = error, job_id
        log.warning("job %d failed: %s", job_id, error)
        self.error_banner.show_notice(getattr(error, "title", "Engine error"), escape(str(error)), kind="error")

    def report_error(self, error: Exception) -> None:
        """An error that belongs to no engine job (an edit, a file): the same banner."""
        self.report_engine_error(0, error)

    def report_internal_error(self, sentence: str) -> None:
        """A bug that nothing caught (magi_studio.app_log's hook): the same banner, with the log's place."""
        self._error_job = 0
        self.error_banner.show_notice("Internal error", escape(sentence), kind="error")

    def show_status(self, text: str, timeout_ms: int = STATUS_MESSAGE_MS) -> None:
        """The one writer of the status bar's message area (saves, exports, how a generation ended)."""
        self.status_message.setText(text)
        self._status_timer.start(timeout_ms)

    def _on_job_outcome(self, text: str, completed: bool) -> None:
        self.show_status(text, OUTCOME_MESSAGE_MS)
        if not self.isActiveWindow():
            QApplication.alert(self)  # the platform's attention request: the taskbar entry flashes

    def report_notice(self, sentence: str) -> None:
        """Something the user should know that is not an error (a chunk kept after an edit): the same banner."""
        self._error_job = 0
        self.error_banner.show_notice("Generation", escape(sentence), kind="info")

    def _on_engine_state(self, state: str) -> None:
        busy = state in (EngineState.LOADING.value, EngineState.GENERATING.value)
        running = self.generation is not None and self.generation.is_generating()  # e.g. planning, between shots
        self.action_set["generate.cancel"].setEnabled(busy or running)

    def _on_engine_event(self, job_id: int, event) -> None:
        if isinstance(event, Failed):
            self.report_engine_error(job_id, event.error)
        # A model that loads answers an engine error shown before (a failed load); not a user's bad file.
        # The player's size and frame rate are the project's (PlayerSync), whatever model made the frames.
        elif isinstance(event, ModelLoaded) and self._error_job:
            self.error_banner.dismiss()
        if isinstance(event, ModelLoaded):
            self.timeline.set_uses_guidance(not event.info.distilled)

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
    def show_user_guide(self) -> bool:
        """Help › User Guide: the guide that ships with the app (magi_studio.user_guide), in the desktop's viewer."""
        from magi_studio.user_guide import user_guide_url

        url = user_guide_url()
        if self.open_url(url):
            return True
        where = url.toLocalFile() or url.toString()
        self._error_job = 0
        self.error_banner.show_notice("User guide", f"Nothing on this computer opens it; it is at "
                                      f"<code>{escape(where)}</code>.", kind="info")
        return False

    def show_log_folder(self) -> bool:
        """Help › Show Log Folder: the folder of magi-studio.log in the desktop's file manager."""
        from magi_studio.app_log import log_folder

        folder = log_folder()
        folder.mkdir(parents=True, exist_ok=True)
        if self.open_url(QUrl.fromLocalFile(str(folder))):
            return True
        self._error_job = 0
        self.error_banner.show_notice("Log", f"Nothing on this computer opens folders; the log is in "
                                      f"<code>{escape(str(folder))}</code>.", kind="info")
        return False

    def show_shortcuts(self) -> ShortcutsDialog:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self.action_set.shortcut_rows(), self)
            self._shortcuts_dialog.destroyed.connect(lambda: setattr(self, "_shortcuts_dialog", None))
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()
        return self._shortcuts_dialog

    def show_welcome(self) -> None:
        self.welcome.show_notice(WELCOME_TITLE, WELCOME_BODY)

    def _sync_banner_area(self) -> None:
        # One banner at a time: both at once left the player a sliver at 1366x768 and cut their text mid-line.
        # An error (or notice) goes in front of the welcome, which comes back once it is dismissed.
        error_up = not self.error_banner.isHidden()
        self.welcome.setVisible(self._welcome_up and not error_up)
        self.banner_area.setVisible(self._welcome_up or error_up)

    def show_about(self) -> None:
        QMessageBox.about(self, "About MAGI Studio",
                          "<h3>MAGI Studio</h3><p>A storyboard editor for chunk-by-chunk video generation with "
                          "MAGI-1-style models.</p><p>Bundled font: DejaVu Sans (Bitstream Vera licence).</p>")

    # Keys -------------------------------------------------------------------------------------
    def keyReleaseEvent(self, event) -> None:
        # K is held for K+J / K+L frame steps; its release reaches the window from whatever has the focus.
        if event.key() == Qt.Key.Key_K and not event.isAutoRepeat():
            self.player.release_stop()
        super().keyReleaseEvent(event)

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.ActivationChange and not self.isActiveWindow():
            self.player.release_stop()  # a release that went to another window must not leave K held
        super().changeEvent(event)

    # Closing ----------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        try:
            agreed = self.close_guard is None or self.close_guard()
        except Exception as error:  # never into Qt: PySide 6.11 crashed reporting it (the GUI soak's segfault)
            log.exception("the close question failed; the window stays open")
            self.report_error(ProjectError(f"The window could not close ({type(error).__name__}: {error}); "
                                           "the project stays open."))
            agreed = False
        if not agreed:
            event.ignore()  # the user chose Cancel (or saving failed, or the question did): keep working
            return
        self.player.pause()
        self.player_sync.shutdown()
        self.side_by_side.shutdown()
        self.settings.window_geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        if self.settings.timeline_zoom != self.timeline.zoom_level:  # zoomed within ZOOM_SETTLE_MS of closing
            self.settings.timeline_zoom = self.timeline.zoom_level
        if self._shortcuts_dialog is not None:
            self._shortcuts_dialog.close()
        event.accept()
        self.closed.emit()


class PanelDock(QDockWidget):
    """A panel of the window, shown and hidden by its View item (Ctrl+1..4)."""

    def set_shown(self, shown: bool) -> None:
        """View's toggle: a panel that is a tab behind another comes to the front (the press meant "show me"; it
        closed the panel), one in front closes."""
        if shown:
            self.show()
            self.raise_()
        elif self.isVisible() and not self.isFloating() and self.visibleRegion().isEmpty():
            self.raise_()
            self.toggleViewAction().toggled.emit(True)  # its View item stays checked
        else:
            self.hide()
