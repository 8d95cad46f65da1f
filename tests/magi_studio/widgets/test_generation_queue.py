"""The queue panel (widgets/generation_queue.py) on a real GenerationController and the tiny model: a row per
request with its own state, bar, chunk count and ETA, moved on every step without rebuilding the list; a failed
request's sentence on its row; Retry, Cancel and Remove in the row's context menu; the Completed list."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from magi_engine.events import StepProgress
from magi_studio.controllers.run_state import RunPhase
from magi_studio.document.commands import AddShot, SetShotStart
from magi_studio.document.model import new_shot
from magi_studio.widgets.generation_queue import GenerationQueueView
from tests.magi_studio.controllers import test_generation
from tests.magi_studio.controllers.test_generation import PROMPTS, wait_run

studio = test_generation.studio  # the controller's fixture: a session, the tiny model, a pausable engine


def make_view(qtbot, controller) -> GenerationQueueView:
    view = GenerationQueueView()
    qtbot.addWidget(view)
    view.set_generation(controller)
    view.resize(360, 600)
    view.show()
    return view


def test_the_running_row_moves_its_own_bar_and_eta_on_every_step(qtbot, studio):
    steps = []  # held at the job's third step: two were timed, so an ETA can be given
    s = studio(pause_when=lambda e: isinstance(e, StepProgress) and (steps.append(e) or len(steps) == 3), chunks=2)
    s.session.push(AddShot(new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)))
    view = make_view(qtbot, s.controller)
    s.controller.generate_storyboard()
    row = view.row_widget(0)
    assert view.states() == ["running", "queued"] and row.detail.text() == "planning"
    assert view.row_widget(1).detail.text() == "1 chunk to generate" and not view.row_widget(1).bar.isVisible()
    qtbot.waitUntil(lambda: s.controller.phase is RunPhase.RUNNING, timeout=10_000)
    row = view.row_widget(0)  # from here on, moved by the progress reports, never rebuilt
    qtbot.waitUntil(s.engine.paused.is_set, timeout=10_000)
    qtbot.waitUntil(lambda: row.bar.value() > 0, timeout=5000)
    assert view.row_widget(0) is row
    assert row.detail.text().startswith("chunk 1 of 2") and row.bar.isVisible()
    assert ("left" in row.detail.text()) == (s.controller.queue()[0].eta_s is not None)
    s.engine.resume()
    wait_run(qtbot, s)
    assert view.items() == [] and view.empty.isVisible()
    assert view.empty.text() == "Nothing waiting to generate."  # one line: the Completed list gets the room
    assert [text.split(" · ")[:3] for text in view.completed_items()] == [["B", "Take 1", "chunk 1"],
                                                                         ["Shot 1", "Take 1", "chunks 1–2"]]


def test_a_failed_row_says_why_and_its_menu_retries_or_removes_it(qtbot, studio):
    s = studio(chunks=1)
    b = new_shot(s.session.project, name="B", prompt=PROMPTS[2], seed=7)
    s.session.push(AddShot(b))
    s.session.push(SetShotStart(b.id, "image"))  # from a reference image, but none is set
    view = make_view(qtbot, s.controller)
    s.controller.generate_storyboard()
    wait_run(qtbot, s)
    assert view.states() == ["failed"]
    row = view.row_widget(0)
    assert row.state.text() == "Failed" and row.detail.text().startswith("B starts from a reference image")
    assert row.detail.isVisible() and not row.bar.isVisible()
    assert view.list.visualItemRect(view.list.item(0)).height() >= row.detail.height()  # the sentence fits
    seen = []

    def read_menu() -> None:
        menu = QApplication.activePopupWidget()
        seen.extend((a.text(), a.isEnabled()) for a in menu.actions() if not a.isSeparator())
        menu.close()

    QTimer.singleShot(50, read_menu)
    view._show_menu(view.list.visualItemRect(view.list.item(0)).center())
    assert seen == [("Retry", True), ("Cancel", False), ("Remove", True), ("Move Up", False), ("Move Down", False)]
    s.session.push(SetShotStart(b.id, "text"))
    view.retry_action.trigger()  # the row is still the current one
    wait_run(qtbot, s, 2)
    assert view.items() == [] and view.completed_items()[0].startswith("B · Take 1 · chunk 1 · ")


def test_a_row_moved_by_a_step_waits_for_the_windows_next_paint(qtbot):
    # QProgressBar's own setValue repaints at once, which paints the whole window's pending updates (the storyboard,
    # the scrub bar) on every engine step.
    from dataclasses import replace

    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    from magi_studio.controllers.run_state import QueueItem, RequestState
    from magi_studio.widgets.generation_queue import QueueRow
    from tests.magi_studio.widgets.test_job_progress import PaintCounter

    window = QWidget()
    qtbot.addWidget(window)
    item = QueueItem(1, "shot", "Shot 1", 0, current=True, state=RequestState.RUNNING, chunk=1, chunks=4)
    row, other = QueueRow(item), QLabel("elsewhere in the window")
    column = QVBoxLayout(window)
    column.addWidget(row)
    column.addWidget(other)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    paints = PaintCounter(row.bar, other)
    other.setText("changed")  # waiting to be painted
    for fraction in (0.25, 0.5, 0.75):
        row.show_item(replace(item, fraction=fraction))
        assert paints.counts == {row.bar: 0, other: 0}
    assert row.bar.value() == 750
    qtbot.waitUntil(lambda: paints.counts[row.bar] >= 1 and paints.counts[other] >= 1)
