"""JobProgress's bar: a new value is painted with the rest of the window, never by an immediate repaint."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from magi_studio.widgets.job_progress import BAR_RESOLUTION, JobProgress


class PaintCounter(QObject):
    def __init__(self, *widgets) -> None:
        super().__init__()
        self.counts = {widget: 0 for widget in widgets}
        for widget in widgets:
            widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.counts[watched] += 1
        return False


def test_a_new_value_waits_for_the_windows_next_paint(qtbot, engine_worker):
    window = QWidget()
    qtbot.addWidget(window)
    progress, other = JobProgress(engine_worker), QLabel("elsewhere in the window")
    column = QVBoxLayout(window)
    column.addWidget(progress)
    column.addWidget(other)
    progress.bar.setRange(0, BAR_RESOLUTION)
    progress.bar.show()
    progress.show()
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    assert progress.bar.isVisible()
    paints = PaintCounter(progress.bar, other)
    other.setText("changed")  # waiting to be painted
    for value in (250, 500, 750):
        progress.bar.setValue(value)
        # QProgressBar's own setValue repaints at once, which paints the whole window's pending updates.
        assert paints.counts == {progress.bar: 0, other: 0}
    assert progress.bar.value() == 750
    qtbot.waitUntil(lambda: paints.counts[progress.bar] >= 1 and paints.counts[other] >= 1)
    assert paints.counts[progress.bar] == 1  # the three values in one paint
