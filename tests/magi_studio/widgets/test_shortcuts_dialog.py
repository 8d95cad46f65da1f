"""Help > Keyboard Shortcuts: the table of every key, built from the action declarations."""

from __future__ import annotations

from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QStyle

from magi_studio.widgets.shortcuts_dialog import ShortcutsDialog
from tests.magi_studio.document.fakes import rich_project


def test_every_command_and_shortcut_is_shown_whole(qtbot, show_main_window, tmp_path):
    window = show_main_window(*rich_project(tmp_path))
    dialog = ShortcutsDialog(window.action_set.shortcut_rows())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    table = dialog.table
    metrics = table.fontMetrics()
    # An item view draws a cell's text inside this margin on each side (QCommonStyle's item text rect).
    margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    for column in (1, 2):
        width = table.columnWidth(column)
        for row in range(table.rowCount()):
            item = table.item(row, column)
            text_width = (metrics if column == 1 else _bold(table)).horizontalAdvance(item.text())
            assert text_width + 2 * margin <= width, f"{item.text()!r} ({text_width} px) elided in a {width}-px column"


def _bold(table) -> QFontMetrics:
    font = table.font()
    font.setBold(True)
    return QFontMetrics(font)
