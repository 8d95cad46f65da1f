"""GenerationQueueView: the run queue — each request's state and progress, and what the requests made.

    view = GenerationQueueView()
    view.set_generation(generation)      # a GenerationController: queue(), ended_requests(), completed() ...
    view.showTakeRequested.connect(...)  # (shot id, take id): Show on a completed request

Each row is one request: the one under way first (RUNNING: its own bar, chunk c of n, its ETA), then the
waiting ones in the order they will be generated (QUEUED; the one a paused run holds is PAUSED), then those
that failed (with their sentence) or were cancelled, which Retry asks for again and Remove takes off. Cancel
stops the selected request alone; the run goes on with the rest. Below, the Completed list (collapsible):
each request done with its take, its chunks and the time it took; Show (or a double-click) selects that take
in the takes view and moves the player to it; Clear Completed empties it.

The view holds no queue of its own: it redraws from the controller whenever it says its queue or its list
of completed requests changed, and moves the running row's bar on every progress report.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu, QToolButton,
                               QVBoxLayout, QWidget)

from magi_studio.controllers.run_state import ENDED_STATES, QueueItem, RequestState
from magi_studio.theme import icon
from magi_studio.widgets.job_progress import DeferredProgressBar

#: A row's request state (RequestState value) and its text as `items()` gives it.
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
TEXT_ROLE = Qt.ItemDataRole.UserRole + 2
#: A completed row's (shot id, take id).
TAKE_ROLE = Qt.ItemDataRole.UserRole + 3
EMPTY_TEXT = ("Nothing to generate. Generate queues every shot that is not done; what you generate during a run "
              "joins it. It is listed here in order.")
#: The same, in one line, when the Completed list below wants the room.
EMPTY_SHORT_TEXT = "Nothing waiting to generate."
STATE_LABELS = {RequestState.QUEUED: "Queued", RequestState.RUNNING: "Running", RequestState.PAUSED: "Paused",
                RequestState.FAILED: "Failed", RequestState.CANCELLED: "Cancelled"}
STATE_ICONS = {RequestState.RUNNING: "generate", RequestState.PAUSED: "pause", RequestState.FAILED: "warning",
               RequestState.CANCELLED: "cancel"}


def _what(item: QueueItem) -> str:
    """Which chunks a request asks for, in words."""
    if item.stop_index is not None:
        return (f"chunks {item.from_index + 1} to {item.stop_index}" if item.from_index is not None else
                f"the chunks not done up to chunk {item.stop_index}")
    return f"from chunk {item.from_index + 1}" if item.from_index is not None else "the chunks not done"


def detail_text(item: QueueItem) -> str:
    """The line under a row's title: its progress, why it failed, or what it will make."""
    if item.state is RequestState.RUNNING:
        return item.progress_text()
    if item.state is RequestState.PAUSED:
        return f"{item.chunk} of {item.chunks} chunks done · Resume goes on" if item.chunks else "Resume goes on"
    if item.state is RequestState.FAILED:
        return item.failed
    if item.state is RequestState.CANCELLED:
        return f"{_what(item)} · Retry to generate them"
    if item.chunks and item.from_index is None and item.stop_index is None:
        return f"{item.chunks} chunk{'s' * (item.chunks != 1)} to generate"
    return f"{_what(item)} ({item.chunks} chunk{'s' * (item.chunks != 1)})" if item.chunks else _what(item)


class QueueRow(QWidget):
    """One request's row: state icon, title and state, a bar (running or paused) and a line of detail."""

    def __init__(self, item: QueueItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("QueueRow")
        self.icon = QLabel()
        self.icon.setFixedSize(16, 16)
        self.title = QLabel(" · ".join([item.shot_name] + ([item.label] if item.label else [])))
        self.title.setObjectName("QueueRowTitle")
        self.state = QLabel()
        self.state.setObjectName("QueueRowState")
        self.bar = DeferredProgressBar()  # it moves on every engine step: never a repaint of the window there and then
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(6)
        self.detail = QLabel()
        self.detail.setObjectName("QueueRowDetail")
        self.detail.setWordWrap(True)  # a failed request's sentence is read in full
        top = QHBoxLayout()
        top.setSpacing(6)
        top.addWidget(self.icon)
        top.addWidget(self.title, 1)
        top.addWidget(self.state)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        self.show_item(item)

    def show_item(self, item: QueueItem) -> None:
        old, self.item = getattr(self, "item", None), item
        if old is None or old.state != item.state:  # drawn from its SVG: not again on every engine step
            name = STATE_ICONS.get(item.state)  # a queued request: the generate glyph, greyed (it waits)
            self.icon.setPixmap(icon(name).pixmap(QSize(16, 16)) if name else
                                icon("generate").pixmap(QSize(16, 16), QIcon.Mode.Disabled))
        self.state.setText(item.stopping.capitalize() if item.stopping else STATE_LABELS[item.state])
        self.bar.setVisible(item.state in (RequestState.RUNNING, RequestState.PAUSED))
        self.bar.setValue(round(item.fraction * 1000))
        self.detail.setText(detail_text(item))
        self.setToolTip(item.failed)


class QueueList(QListWidget):
    """A list whose row widgets get the height their wrapped text needs at the list's width."""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_rows()

    def fit_rows(self) -> None:
        width = self.viewport().width()
        for row in range(self.count()):
            item, widget = self.item(row), self.itemWidget(self.item(row))
            if widget is not None:
                height = widget.heightForWidth(width) if widget.hasHeightForWidth() else -1
                item.setSizeHint(QSize(width, height if height > 0 else widget.sizeHint().height()))


class GenerationQueueView(QWidget):
    #: (shot id, take id) of a completed request to show: the takes view selects it, the player goes to it.
    showTakeRequested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("GenerationQueue")
        self.generation = None
        self.list = QueueList()
        self.list.setAccessibleName("Generation queue")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._show_menu)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.pause_action = self._action("pause", "Pause", "Pause the run after the current step (finished chunks "
                                         "are kept); Resume goes on from there", self._toggle_pause)
        self.up_action = self._action("chevron-up", "Move Up", "Generate the selected request earlier",
                                      lambda: self._move(-1))
        self.down_action = self._action("chevron-down", "Move Down", "Generate the selected request later",
                                        lambda: self._move(1))
        self.cancel_action = self._action("stop", "Cancel", "Stop the selected request (its finished chunks are "
                                          "kept); the run goes on with the others", self._cancel)
        self.retry_action = self._action("regenerate", "Retry", "Generate the selected failed or cancelled request "
                                         "again, from its first chunk not done", self._retry)
        self.remove_action = self._action("delete", "Remove", "Take the selected request off the list (a waiting "
                                          "one is not generated in this run)", self._remove)
        self.pause_button = self._button(self.pause_action)
        self.up_button, self.down_button = self._button(self.up_action), self._button(self.down_action)
        self.cancel_button, self.retry_button = self._button(self.cancel_action), self._button(self.retry_action)
        self.remove_button = self._button(self.remove_action)
        self.list.currentRowChanged.connect(lambda _row: self._sync_buttons())
        self.list.itemSelectionChanged.connect(self._sync_buttons)

        # Completed: collapsible, under the queue.
        self.completed_toggle = QToolButton()
        self.completed_toggle.setObjectName("CompletedToggle")
        self.completed_toggle.setCheckable(True)
        self.completed_toggle.setChecked(True)
        self.completed_toggle.setAutoRaise(True)
        self.completed_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.completed_toggle.setToolTip("Show or hide the requests that are done")
        self.completed_toggle.toggled.connect(self._sync_completed)
        self.show_action = self._action("play", "Show", "Select the take the request made in the takes view and "
                                        "move the player to it (or double-click it)", self._show_selected)
        self.clear_action = self._action("delete", "Clear Completed", "Empty the list of requests done (their "
                                         "takes stay)", self._clear_completed)
        self.show_button, self.clear_button = self._button(self.show_action), self._button(self.clear_action)
        self.completed_list = QListWidget()
        self.completed_list.setObjectName("CompletedList")
        self.completed_list.setAccessibleName("Completed requests")
        self.completed_list.itemActivated.connect(lambda item: self._show(item))
        self.completed_list.itemDoubleClicked.connect(lambda item: self._show(item))
        self.completed_list.currentRowChanged.connect(lambda _row: self._sync_buttons())

        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for button in (self.pause_button, self.cancel_button, self.retry_button, self.remove_button,
                       self.up_button, self.down_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        completed_bar = QHBoxLayout()
        completed_bar.setSpacing(2)
        completed_bar.addWidget(self.completed_toggle)
        completed_bar.addStretch(1)
        completed_bar.addWidget(self.show_button)
        completed_bar.addWidget(self.clear_button)
        self.completed_header = QWidget()
        self.completed_header.setLayout(completed_bar)
        completed_bar.setContentsMargins(0, 4, 0, 0)
        self._layout = layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 2)
        layout.addWidget(self.empty, 2)
        layout.addWidget(self.completed_header)
        layout.addWidget(self.completed_list, 1)
        #: What changed while the view was out of sight, drawn when it shows: `_draw` (the queue and the completed
        #: list), `_draw_completed` (the list alone) or None.
        self._stale = None
        self.refresh()

    def _action(self, icon_name: str, text: str, tip: str, slot) -> QAction:
        action = QAction(icon(icon_name), text, self)
        action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _button(self, action: QAction) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        button.setIconSize(QSize(16, 16))
        button.setAccessibleName(action.text())
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setAutoRaise(True)
        return button

    def set_generation(self, generation) -> None:
        self.generation = generation
        generation.queueChanged.connect(self.refresh)
        generation.completedChanged.connect(self._refresh_completed)  # a method: disconnected when the view goes
        generation.progressChanged.connect(self._show_progress)
        self.refresh()

    # Reading ----------------------------------------------------------------------------------
    def items(self) -> list[str]:
        """The rows as shown (tests, accessibility): the queue, then the failed and cancelled requests."""
        self.catch_up()
        return [self.list.item(row).data(TEXT_ROLE) for row in range(self.list.count())]

    def states(self) -> list[str]:
        """Each row's state ("running", "queued", "paused", "failed", "cancelled")."""
        self.catch_up()
        return [self.list.item(row).data(STATE_ROLE) for row in range(self.list.count())]

    def row_widget(self, row: int) -> QueueRow:
        self.catch_up()
        return self.list.itemWidget(self.list.item(row))

    def completed_items(self) -> list[str]:
        self.catch_up()
        return [self.completed_list.item(row).text() for row in range(self.completed_list.count())]

    # Redrawing --------------------------------------------------------------------------------
    # The Queue dock is often a tab behind History or Takes (1366x768, 1920x1080): out of sight, it draws nothing,
    # and shows what is true when it comes into sight (a run's start made its row twice on the GUI thread, unseen).
    def refresh(self, completed_only: bool = False) -> None:
        """Draw the queue and the completed list (`completed_only`: the list alone), or, out of sight, when it shows."""
        draw = self._draw_completed if completed_only and self._stale != self._draw else self._draw
        if self._out_of_sight():
            self._stale = draw
            return
        self._stale = None
        draw()

    def _refresh_completed(self) -> None:
        self.refresh(completed_only=True)

    def _out_of_sight(self) -> bool:
        # In a shown window, hidden or behind another tab (Qt leaves a dock behind a tab visible, with nothing of it
        # on screen); a view not in a shown window draws as before. The window calls catch_up when its dock's tab
        # comes to the front (QDockWidget.visibilityChanged).
        return self.window().isVisible() and (not self.isVisible() or self.visibleRegion().isEmpty())

    def catch_up(self) -> None:
        """Draw now what changed while the view was hidden (what reads the rows reads them as shown)."""
        draw, self._stale = self._stale, None
        if draw is not None:
            draw()

    def showEvent(self, event) -> None:
        self.catch_up()
        super().showEvent(event)

    def _draw(self) -> None:
        rows = self.generation.queue() + self.generation.ended_requests() if self.generation is not None else []
        selected = self._selected_item()
        if [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())] == \
                [item.id for item in rows]:
            # The same requests in the same order (a run starting, a request's state moving on): each row is
            # written again in place; a new row widget was the slowest part of Generate's first repaint.
            for index, item in enumerate(rows):
                self._write_row(self.list.item(index), item)
                self.row_widget(index).show_item(item)
        else:
            self.list.clear()
            for item in rows:
                row = QListWidgetItem()
                self._write_row(row, item)
                self.list.addItem(row)
                self.list.setItemWidget(row, QueueRow(item))
                if item.id == selected:
                    self.list.setCurrentItem(row)
        self.list.fit_rows()
        going, coming = (self.empty, self.list) if rows else (self.list, self.empty)
        going.setVisible(False)  # first: both shown at once would ask for both heights (the window grows)
        coming.setVisible(True)
        paused = self.generation is not None and self.generation.is_paused()
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName(self.pause_action.text())
        self.pause_action.setIcon(icon("play" if paused else "pause"))
        self._draw_completed()

    @staticmethod
    def _write_row(row: QListWidgetItem, item) -> None:
        row.setData(Qt.ItemDataRole.UserRole, item.id)
        row.setData(STATE_ROLE, item.state.value)
        row.setData(TEXT_ROLE, item.text())
        row.setData(Qt.ItemDataRole.AccessibleTextRole, f"{item.text()} · {detail_text(item)}")

    def _draw_completed(self) -> None:
        done = self.generation.completed() if self.generation is not None else []
        selected = self.completed_list.currentItem()
        selected_id = selected.data(Qt.ItemDataRole.UserRole) if selected is not None else None
        self.completed_list.clear()
        for request in reversed(done):  # the latest on top
            row = QListWidgetItem(icon("check"), request.text())
            row.setData(Qt.ItemDataRole.UserRole, request.id)
            row.setData(TAKE_ROLE, (request.shot_id, request.take_id))
            row.setToolTip(f"{request.shot_name}: {request.take_name}, {request.chunks} "
                           f"chunk{'s' * (request.chunks != 1)} made. Double-click to show it.")
            self.completed_list.addItem(row)
            if request.id == selected_id:
                self.completed_list.setCurrentItem(row)
        self.completed_toggle.setText(f"Completed ({len(done)})")
        self.completed_header.setVisible(bool(done))
        # An empty queue above a Completed list: one line, the list gets the room (a 768-px screen has little).
        self.empty.setText(EMPTY_SHORT_TEXT if done else EMPTY_TEXT)
        self._sync_completed()

    def _sync_completed(self) -> None:
        shown = self.completed_toggle.isChecked()
        self._layout.setStretchFactor(self.empty, 0 if shown and self.completed_list.count() else 2)
        self.completed_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.completed_list.setVisible(shown and self.completed_list.count() > 0)
        self._sync_buttons()

    def _show_progress(self, _progress=None) -> None:
        """The running row's bar, chunk and ETA move on every report, without rebuilding the list."""
        if self.generation is None or self._stale == self._draw or self.list.count() == 0:
            return
        current = next((item for item in self.generation.queue() if item.current), None)
        widget = self.row_widget(0)
        if current is not None and widget is not None and widget.item.id == current.id:
            stopping = widget.item.stopping
            widget.show_item(current)
            if current.stopping != stopping:
                self._sync_buttons()

    # Selection and buttons ------------------------------------------------------------------------
    def _selected_item(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None and item.isSelected() else None

    def _state(self, row: int) -> str | None:
        item = self.list.item(row)
        return item.data(STATE_ROLE) if item is not None else None

    def _sync_buttons(self) -> None:
        generating = self.generation is not None and self.generation.is_generating()
        self.pause_action.setEnabled(generating)
        row = self.list.currentRow()
        state = self._state(row) if self._selected_item() is not None else None
        waiting = state in (RequestState.QUEUED.value, RequestState.PAUSED.value)
        ended = state in {s.value for s in ENDED_STATES}
        self.up_action.setEnabled(waiting and self._state(row - 1) in (RequestState.QUEUED.value,
                                                                       RequestState.PAUSED.value))
        self.down_action.setEnabled(waiting and self._state(row + 1) in (RequestState.QUEUED.value,
                                                                         RequestState.PAUSED.value))
        running = state == RequestState.RUNNING.value and not self.row_widget(row).item.stopping  # not twice
        self.cancel_action.setEnabled(waiting or running)
        self.retry_action.setEnabled(ended)
        self.remove_action.setEnabled(waiting or ended)
        has_completed = self.completed_list.count() > 0
        self.show_action.setEnabled(has_completed and self.completed_list.isVisible()
                                    and self.completed_list.currentItem() is not None)
        self.clear_action.setEnabled(has_completed)

    def _show_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        menu = QMenu(self)
        for action in (self.retry_action, self.cancel_action, self.remove_action, None, self.up_action,
                       self.down_action):
            menu.addSeparator() if action is None else menu.addAction(action)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    # Gestures ---------------------------------------------------------------------------------
    def _toggle_pause(self) -> None:
        if self.generation is None:
            return
        if self.generation.is_paused():
            self.generation.resume_paused()
        else:
            self.generation.pause()

    def _move(self, offset: int) -> None:
        item_id = self._selected_item()
        if item_id is not None:
            self.generation.move_queued(item_id, offset)

    def _cancel(self) -> None:
        item_id = self._selected_item()
        if item_id is not None and self.generation.cancel_request(item_id):
            self._select(item_id)  # its row, now (or once it has stopped) a cancelled one: Retry is at hand

    def _select(self, item_id: int) -> None:
        rows = [row for row in range(self.list.count()) if self.list.item(row).data(Qt.ItemDataRole.UserRole) == item_id]
        if rows:
            self.list.setCurrentRow(rows[-1])

    def _retry(self) -> None:
        item_id = self._selected_item()
        if item_id is not None and self.generation.retry(item_id):
            self._select(item_id)  # its row in the queue again

    def _remove(self) -> None:
        item_id = self._selected_item()
        if item_id is not None:
            self.generation.remove_queued(item_id)

    def _show(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.showTakeRequested.emit(*item.data(TAKE_ROLE))

    def _show_selected(self) -> None:
        self._show(self.completed_list.currentItem())

    def _clear_completed(self) -> None:
        if self.generation is not None:
            self.generation.clear_completed()
