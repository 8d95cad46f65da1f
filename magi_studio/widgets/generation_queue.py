"""GenerationQueueView: what a run will generate, in order, with Pause/Resume, Move Up/Down and Remove.

    view = GenerationQueueView()
    view.set_generation(generation)      # a GenerationController: its queue(), queueChanged and phaseChanged

The request under way is listed first (it cannot be moved or removed: Pause or Stop it); the requests
after it (a shot, a shot from a chunk, one variation of a shot) wait in the order they will be generated.
Requests that could not be generated follow, marked failed with their sentence (`failed_requests()`), until
the next run starts or Remove takes them off. The view holds no queue of its own: it redraws from the
controller whenever it says its queue changed.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

from magi_studio.theme import icon

#: Marks a row of a request that failed (it is removed, never moved).
FAILED_ROLE = Qt.ItemDataRole.UserRole + 1
EMPTY_TEXT = ("Nothing to generate. Generate queues every shot that is not done; what you generate during a run "
              "joins it. It is listed here in order.")


class GenerationQueueView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("GenerationQueue")
        self.generation = None
        self.list = QListWidget()
        self.list.setAccessibleName("Generation queue")
        self.list.setWordWrap(True)  # a failed request's sentence is read in full
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pause_button = self._button("pause", "Pause", "Pause the run after the current step (finished chunks "
                                         "are kept); Resume goes on from there")
        self.up_button = self._button("chevron-up", "Move Up", "Generate the selected request earlier")
        self.down_button = self._button("chevron-down", "Move Down", "Generate the selected request later")
        self.remove_button = self._button("delete", "Remove", "Do not generate the selected request in this run")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(1))
        self.remove_button.clicked.connect(self._remove)
        self.list.currentRowChanged.connect(lambda _row: self._sync_buttons())

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for button in (self.pause_button, self.up_button, self.down_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty, 1)
        self.refresh()

    def _button(self, icon_name: str, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(icon_name))
        button.setIconSize(QSize(16, 16))
        button.setText(text)
        button.setToolTip(tip)
        button.setAccessibleName(text)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setAutoRaise(True)
        return button

    def set_generation(self, generation) -> None:
        self.generation = generation
        generation.queueChanged.connect(self.refresh)
        self.refresh()

    def items(self) -> list[str]:
        """The rows as shown (tests, accessibility)."""
        return [self.list.item(row).text() for row in range(self.list.count())]

    def refresh(self) -> None:
        queue = self.generation.queue() + self.generation.failed_requests() if self.generation is not None else []
        selected = self._selected_item()
        self.list.clear()
        for item in queue:
            row = QListWidgetItem(item.text())
            row.setData(Qt.ItemDataRole.UserRole, item.id)
            if item.current:
                row.setFlags(row.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            if item.failed:
                row.setIcon(icon("warning"))
                row.setToolTip(item.failed)
                row.setData(FAILED_ROLE, True)
            self.list.addItem(row)
            if item.id == selected and not item.current:
                self.list.setCurrentItem(row)
        self.list.setVisible(bool(queue))
        self.empty.setVisible(not queue)
        paused = self.generation is not None and self.generation.is_paused()
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName(self.pause_button.text())
        self.pause_button.setIcon(icon("play" if paused else "pause"))
        self._sync_buttons()

    def _selected_item(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None and item.isSelected() else None

    def _sync_buttons(self) -> None:
        generating = self.generation is not None and self.generation.is_generating()
        self.pause_button.setEnabled(generating)
        row = self.list.currentRow()
        selected = self._selected_item() is not None
        waiting = selected and not self.list.item(row).data(FAILED_ROLE)  # a failed row can only be removed
        self.up_button.setEnabled(waiting and row > 0 and bool(self.list.item(row - 1).flags()
                                                             & Qt.ItemFlag.ItemIsSelectable))
        self.down_button.setEnabled(waiting and row < self.list.count() - 1
                                    and not self.list.item(row + 1).data(FAILED_ROLE))
        self.remove_button.setEnabled(selected)

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

    def _remove(self) -> None:
        item_id = self._selected_item()
        if item_id is not None:
            self.generation.remove_queued(item_id)
