"""ElidedLabel: what does not fit ends in "…", measured with the font it is drawn in."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from magi_studio.widgets.elided_label import ElidedLabel

SENTENCE = "Shot 1 is already being generated as asked: nothing was added to the queue."


def test_it_elides_to_its_width_and_keeps_the_whole_text(qtbot) -> None:
    label = ElidedLabel(SENTENCE)
    qtbot.addWidget(label)
    label.show()
    label.resize(200, 20)
    shown = QLabel.text(label)
    assert shown.endswith("…") and SENTENCE.startswith(shown[:-1])
    assert label.text() == SENTENCE and label.toolTip() == SENTENCE
    label.resize(2000, 20)
    assert QLabel.text(label) == SENTENCE


def test_a_style_sheet_font_that_arrives_later_is_the_one_it_elides_with(qtbot) -> None:
    label = ElidedLabel(SENTENCE)
    qtbot.addWidget(label)
    label.show()
    label.resize(200, 20)
    label.setStyleSheet("font-size: 20px")  # as the app's theme does once the label is polished
    label.ensurePolished()
    shown = QLabel.text(label)
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert shown.endswith("…")
