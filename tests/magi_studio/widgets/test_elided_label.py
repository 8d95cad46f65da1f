"""ElidedLabel: what does not fit ends in "…", measured with the font it is drawn in."""

from __future__ import annotations

from PySide6.QtCore import Qt
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


def test_its_short_form_stands_in_for_text_cut_at_the_end(qtbot) -> None:
    label = ElidedLabel()
    qtbot.addWidget(label)
    label.show()
    label.setText("In/Out 00:00:01:00", "In/Out")
    metrics = label.fontMetrics()
    label.resize(metrics.horizontalAdvance("In/Out 00:0") + 10, 20)
    assert label.shown_text() == "In/Out" and label.text() == label.toolTip() == "In/Out 00:00:01:00"
    label.resize(metrics.horizontalAdvance("In/"), 20)
    assert label.shown_text().endswith("…") and "In/Out".startswith(label.shown_text()[:-1])
    label.resize(2000, 20)
    assert label.shown_text() == "In/Out 00:00:01:00"


def test_a_middle_cut_keeps_the_whole_text_while_it_keeps_the_short_form(qtbot) -> None:
    label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)
    qtbot.addWidget(label)
    label.show()
    label.setText("The very long opening shot on the beach · chunk 12", "chunk 12")
    metrics = label.fontMetrics()
    label.resize(metrics.horizontalAdvance("The very long · chunk 12"), 20)
    shown = label.shown_text()
    assert shown.startswith("The") and "…" in shown and shown.endswith("chunk 12")
    label.resize(metrics.horizontalAdvance("chunk 12") + 6, 20)
    assert label.shown_text() == "chunk 12"
