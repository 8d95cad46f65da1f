"""A card's state badge takes each state's colours and text with a repaint, never a re-polish."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor

from magi_studio.timeline.state_badge import StateBadge
from magi_studio.timeline.style import BADGE_COLOURS, DONE, QUEUED, STALE


class Polishes(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched, event) -> bool:
        self.count += event.type() in (QEvent.Type.Polish, QEvent.Type.StyleChange)
        return False


def test_each_state_paints_its_colours_and_text_and_the_size_follows_the_text(qtbot):
    badge = StateBadge()
    qtbot.addWidget(badge)
    badge.show()
    badge.show_state(DONE, "Done")
    polishes = Polishes()
    badge.installEventFilter(polishes)
    sizes = {}
    for state, text in ((DONE, "Done"), (STALE, "Stale"), (QUEUED, "Queued"), (DONE, "Done")):
        badge.show_state(state, text)
        badge.resize(badge.sizeHint())
        sizes[text] = badge.sizeHint().width()
        image = badge.grab().toImage()
        edge = image.pixelColor(int(3 * image.devicePixelRatio()), image.height() // 2)  # inside the pill, left of the text
        assert edge == QColor(BADGE_COLOURS[state][0]), (state, edge.name())
        assert badge.text() == text and badge.state() == state
    assert sizes["Queued"] > sizes["Done"] and polishes.count == 0
