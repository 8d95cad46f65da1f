"""Help > Keyboard Shortcuts: a table generated from the action declarations (magi_studio.actions)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)


class ShortcutsDialog(QDialog):
    """Non-modal list of every shortcut; rows come from ActionSet.shortcut_rows()."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ShortcutsDialog")
        self.setWindowTitle("Keyboard Shortcuts")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(520, 600)
        intro = QLabel("Shortcuts work anywhere in the main window. While you type in a text field, keys "
                       "without Ctrl or Alt type text instead; Esc leaves the field.")
        intro.setWordWrap(True)
        intro.setStyleSheet("color: #9aa2b1;")
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Command", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        previous_menu = None
        for row, (menu, command, keys) in enumerate(rows):
            shown_menu = menu if menu != previous_menu else ""  # name each menu once: a grouped list
            previous_menu = menu
            for column, text in enumerate((shown_menu, command, keys)):
                item = QTableWidgetItem(text)
                if column == 2:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)
        layout.setSpacing(12)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(max(520, self.width_for_columns()), 600)

    def width_for_columns(self) -> int:
        """The dialog width at which no column elides ("Insert Chun…" in a 520-px dialog): the columns'
        contents, the table's frame and scroll bar, and the layout's margins."""
        table = self.table
        columns = sum(max(table.sizeHintForColumn(c), table.horizontalHeader().sectionSizeHint(c))
                      for c in range(table.columnCount()))
        chrome = 2 * table.frameWidth() + table.verticalScrollBar().sizeHint().width()
        margins = self.layout().contentsMargins()
        return columns + chrome + margins.left() + margins.right()

    def shortcut_texts(self) -> dict[str, str]:
        """Command → shortcut, as shown (for tests and accessibility checks)."""
        return {self.table.item(r, 1).text(): self.table.item(r, 2).text() for r in range(self.table.rowCount())}
