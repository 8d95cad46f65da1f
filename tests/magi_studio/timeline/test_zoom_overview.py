"""A long storyboard: zooming the cards (Ctrl+wheel, Ctrl+= / Ctrl+-) and the overview strip above them."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from magi_studio.document.commands import AddChunk, AddShot, SetPrompt, SetShotStart, new_chunk
from magi_studio.document.model import ProjectSettings, new_project, new_shot
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.store import ProjectStore
from magi_studio.timeline import TimelineView
from magi_studio.timeline.overview import STATE_COLORS
from magi_studio.timeline.style import EMPTY
from magi_studio.timeline.view import DEFAULT_ZOOM, ZOOM_LEVELS
from magi_studio.document_session import DocumentSession
from tests.magi_studio.document.fakes import fake_generate

SHOTS, CHUNKS = 3, 8


@pytest.fixture
def long_timeline(qtbot, tmp_path, no_leaked_windows):
    """Three shots of eight chunks, the first two generated (synthetic results), in a 1366 px window."""
    store = ProjectStore.create(tmp_path / "Long")
    project = new_project(ProjectSettings(model="tiny", width=64, height=64, steps=4))
    history = UndoHistory(Document(project))
    for s in range(SHOTS):
        if s:
            history.push(AddShot(new_shot(project), s))
        shot = project.shots[s]
        while len(shot.chunks) < CHUNKS:
            history.push(AddChunk(shot.id, new_chunk(project, shot.id, len(shot.chunks), f"chunk {len(shot.chunks)}")))
        if s < 2:
            fake_generate(project, store, shot.id, history=history)
    session = DocumentSession(project, store)
    window, timeline = QWidget(), TimelineView()
    QVBoxLayout(window).addWidget(timeline)
    timeline.set_session(session)
    window.resize(1366, 420)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield timeline
    timeline.set_session(None)


def ctrl_wheel(timeline, x: int, delta: int, settle: bool = True) -> None:
    viewport = timeline.scroll.viewport()
    pos = QPointF(x, viewport.height() / 2)
    event = QWheelEvent(pos, QPointF(viewport.mapToGlobal(pos.toPoint())), QPoint(), QPoint(0, delta),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    QApplication.sendEvent(viewport, event)
    if settle:
        QApplication.processEvents()  # the zoom waits for the wheel steps queued behind this one


def screen_x(timeline, card) -> float:
    rect = timeline.strip.card_rect(card)
    return rect.left() - timeline.scroll.horizontalScrollBar().value(), rect


def test_ctrl_wheel_zooms_around_the_mouse_without_moving_the_panels(qtbot, long_timeline):
    timeline = long_timeline
    cards, bar = timeline.cards(), timeline.scroll.horizontalScrollBar()
    bar.setValue(timeline.strip.card_rect(cards[9]).left() - 200)
    card, height = cards[10], timeline.height()
    x, rect = screen_x(timeline, card)
    mouse = round(x + rect.width() / 2)
    full_width, strip_width = rect.width(), timeline.strip.width()

    ctrl_wheel(timeline, mouse, -120)  # wheel towards the user: zoom out
    assert timeline.zoom_level == DEFAULT_ZOOM + 1
    x, rect = screen_x(timeline, card)
    assert rect.width() < full_width and timeline.strip.width() < strip_width
    assert abs(x + rect.width() / 2 - mouse) <= 2  # the chunk under the mouse stays under it
    assert not card.prompt.isVisible() and card.picture.rect.width() > 0  # the picture alone
    qtbot.wait(1)  # the deferred layout changes nothing either
    assert abs(screen_x(timeline, card)[0] + rect.width() / 2 - mouse) <= 2

    for _ in range(len(ZOOM_LEVELS) + 2):  # all the way out: bounded
        ctrl_wheel(timeline, mouse, -120)
    assert timeline.zoom_level == len(ZOOM_LEVELS) - 1
    narrow = timeline.strip.card_rect(card).width()
    assert narrow < full_width / 4
    assert timeline.height() == height and card.height() == rect.height()  # no layout jumps

    for _ in range(len(ZOOM_LEVELS) - 1 - DEFAULT_ZOOM):
        ctrl_wheel(timeline, mouse, 120)
    # All the way out the whole storyboard fits in the view (its one-shot-wide headers are compact), so the
    # zoom back in keeps whichever chunk was under the mouse there: that one shows its prompt again.
    under = next(c for c in cards if 0 <= mouse - screen_x(timeline, c)[0] < screen_x(timeline, c)[1].width())
    assert timeline.zoom_level == DEFAULT_ZOOM and under.prompt.isVisible()
    assert timeline.strip.card_rect(card).width() == full_width
    ctrl_wheel(timeline, mouse, 120)  # one more: wider than the default, the prompt gets more room
    assert timeline.zoom_level == 0 and timeline.strip.card_rect(card).width() > full_width


def test_ctrl_wheel_steps_queued_behind_a_busy_frame_zoom_once_to_the_last_ones_level(qtbot, long_timeline):
    timeline = long_timeline
    cards = timeline.cards()
    timeline.scroll.horizontalScrollBar().setValue(timeline.strip.card_rect(cards[9]).left() - 200)
    card = cards[10]
    x, rect = screen_x(timeline, card)
    mouse = round(x + rect.width() / 2)
    zooms = []
    timeline.zoomChanged.connect(zooms.append)
    for _ in range(2):  # two steps in the queue before the event loop turns
        ctrl_wheel(timeline, mouse, -120, settle=False)
    assert timeline.zoom_level == DEFAULT_ZOOM and not zooms
    qtbot.waitUntil(lambda: bool(zooms))
    assert zooms == [DEFAULT_ZOOM + 2] and timeline.zoom_level == DEFAULT_ZOOM + 2  # one layout, not two
    x, rect = screen_x(timeline, card)
    assert abs(x + rect.width() / 2 - mouse) <= 2  # the chunk under the mouse stays under it


def test_every_card_is_laid_out_at_its_new_width_the_ones_on_screen_at_once(qtbot, long_timeline):
    timeline = long_timeline
    cards, bar = timeline.cards(), timeline.scroll.horizontalScrollBar()
    bar.setValue(timeline.strip.card_rect(cards[12]).left())
    on_screen = [c for c in cards if timeline.strip.card_rect(c).right() >= bar.value()
                 and timeline.strip.card_rect(c).left() <= bar.value() + timeline.scroll.viewport().width()]
    assert 0 < len(on_screen) < len(cards)
    widths = {c.chunk_id: c.prompt.width() for c in cards}
    timeline.set_zoom(0)  # a wider text column: every prompt field gets wider
    assert all(c.width() > c.prompt.width() + c.picture.rect.width() for c in on_screen)  # the cards at once
    QApplication.processEvents()  # the zoom's frame
    assert all(c.prompt.width() > widths[c.chunk_id] for c in on_screen)
    assert any(c.prompt.width() == widths[c.chunk_id] for c in cards)  # the others later
    qtbot.waitUntil(lambda: all(c.prompt.width() > widths[c.chunk_id] for c in cards))
    assert len({c.prompt.width() for c in cards}) == 1
    assert all(c.prompt.geometry().right() < c.width() - 1 for c in cards)  # inside its card
    timeline.set_zoom(len(ZOOM_LEVELS) - 1)  # the picture alone, laid out at its new width
    qtbot.waitUntil(lambda: not any(c.prompt.isVisible() for c in cards))
    assert all(c.picture.rect.right() < c.width() for c in cards)


def test_cards_out_of_view_are_laid_out_at_a_new_zoom_only_when_they_come_into_view(qtbot, long_timeline):
    timeline = long_timeline
    cards, bar = timeline.cards(), timeline.scroll.horizontalScrollBar()
    far = cards[-1]
    widths = {c.chunk_id: c.prompt.width() for c in cards}
    timeline.set_zoom(0)  # a wider text column
    assert far.prompt.width() == widths[far.chunk_id]  # off screen: not laid out yet
    bar.setValue(bar.maximum())  # scrolled into view: laid out before it is painted
    assert far.prompt.width() > widths[far.chunk_id]
    assert far.prompt.geometry().right() < far.width() - 1


class PaintLog(QObject):
    """The paint events the application delivers: (widget, rectangle in global coordinates)."""

    def __init__(self) -> None:
        super().__init__()
        self.paints: list[tuple[QWidget, QRect]] = []

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and isinstance(watched, QWidget):
            self.paints.append((watched, QRect(watched.mapToGlobal(event.rect().topLeft()), event.rect().size())))
        return False


def global_rect(widget) -> QRect:
    return QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size())


def test_a_wheel_step_repaints_only_the_band_of_cards_that_came_into_view(qtbot, long_timeline):
    timeline = long_timeline
    viewport, strip = timeline.scroll.viewport(), timeline.strip
    bar = timeline.scroll.horizontalScrollBar()
    bar.setValue(600)
    qtbot.wait(50)  # everything painted
    log = PaintLog()
    QApplication.instance().installEventFilter(log)
    try:
        event = QWheelEvent(QPointF(300, 50), QPointF(viewport.mapToGlobal(QPoint(300, 50))), QPoint(), QPoint(0, -120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(viewport, event)
        qtbot.waitUntil(lambda: any(widget is strip for widget, _ in log.paints))
        qtbot.wait(20)
    finally:
        QApplication.instance().removeEventFilter(log)
    assert bar.value() == 720
    # The cards already on screen are moved, not drawn again: the strip paints the 120 px that came into view (the
    # shot header kept at the view's edge is a picture of its own, opaque: nothing under it is painted again).
    assert strip.groups[0].stuck_header.isVisible()
    strip_paints = [rect for widget, rect in log.paints if widget is strip]
    assert all(rect.width() <= 130 for rect in strip_paints), strip_paints
    # Nothing behind the storyboard or its overview paints there: not the panel, not the window.
    storyboard = global_rect(viewport).united(global_rect(timeline.overview))
    ancestors = {viewport, timeline.scroll, timeline, timeline.window()}
    behind = [(type(w).__name__, r) for w, r in log.paints if w in ancestors and r.intersects(storyboard)]
    assert not behind, behind


def test_a_plain_wheel_still_scrolls_and_new_cards_take_the_zoom(qtbot, long_timeline):
    timeline = long_timeline
    timeline.zoom_out()
    timeline.zoom_out()
    width = timeline.cards()[0].width()
    shot = timeline.session.project.shots[0]
    assert timeline.add_chunk_to(shot.id)
    assert timeline.card(shot.chunks[-1].id).width() == width
    assert {timeline.strip.card_rect(card).width() for card in timeline.cards()} == {width}
    qtbot.waitUntil(lambda: {card.width() for card in timeline.cards()} == {width})  # out of view: once it settles
    bar = timeline.scroll.horizontalScrollBar()
    bar.setValue(0)
    viewport = timeline.scroll.viewport()
    event = QWheelEvent(QPointF(50, 50), QPointF(viewport.mapToGlobal(QPoint(50, 50))), QPoint(), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)
    assert bar.value() == 120 and timeline.zoom_level == DEFAULT_ZOOM + 2


def test_the_overview_shows_every_chunk_and_jumps_anywhere(qtbot, long_timeline):
    timeline = long_timeline
    overview, bar = timeline.overview, timeline.scroll.horizontalScrollBar()
    assert overview.isVisible() and overview.width() > 1000
    last = timeline.cards()[-1]
    assert not timeline.scroll.viewport().rect().contains(
        QPoint(timeline.strip.card_rect(last).center().x() - bar.value(), 10))  # off screen at first
    # Every chunk has its cell, in order, inside the overview; an empty one in the empty colour.
    cells = [overview.cell_rect(card) for card in timeline.cards()]
    assert all(a.right() <= b.left() + 0.01 for a, b in zip(cells, cells[1:]))
    assert cells[-1].right() <= overview.width()
    image = overview.grab().toImage()
    assert image.pixelColor(cells[-1].center().toPoint()) == QColor(STATE_COLORS[EMPTY])

    qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=cells[-1].center().toPoint())
    x = timeline.strip.card_rect(last).center().x() - bar.value()
    assert 0 <= x <= timeline.scroll.viewport().width()  # scrolled there
    assert overview.viewport_rect().contains(cells[-1].center())

    qtbot.mouseDClick(overview, Qt.MouseButton.LeftButton, pos=cells[5].center().toPoint())
    assert timeline.session.selected_chunk_id == timeline.cards()[5].chunk_id
    assert overview.selected_chunk_id == timeline.cards()[5].chunk_id


def test_ctrl_minus_and_ctrl_equals_zoom_the_storyboard_in_the_main_window(qtbot, make_studio, engine_worker):
    studio = make_studio(worker=engine_worker)  # no model is loaded: keys only
    window, timeline = studio.window, studio.window.timeline
    assert window.action_set["view.zoom_in"].shortcut().toString() == "Ctrl+="
    qtbot.keyClick(timeline.strip, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert timeline.zoom_level == DEFAULT_ZOOM + 1
    timeline.cards()[0].prompt.setFocus()  # a shortcut with Ctrl answers while a prompt is being typed in too
    qtbot.keyClick(timeline.cards()[0].prompt, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(timeline.strip, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert timeline.zoom_level == DEFAULT_ZOOM - 1
    assert studio.session.project.shots[0].chunks[0].prompt == ""  # nothing was typed


def test_deleting_the_selected_shot_selects_its_neighbour_without_an_error(qtbot, long_timeline):
    # Found by the GUI soak: the selection moved to the neighbour while the deleted shot's group was still
    # listed, and redrawing the groups' "current" look asked the project for the deleted shot (KeyError).
    timeline = long_timeline
    session = timeline.session
    shot = session.project.shots[1]
    # In the window another view hears of the change first and moves the selection (as the takes view does).
    timeline.set_session(None)
    session.changed.connect(lambda: session.select(session.project.shots[0].id, session.project.shots[0].chunks[0].id))
    timeline.set_session(session)
    session.select(shot.id, shot.chunks[3].id)
    neighbour = session.project.shots[2]
    with qtbot.captureExceptions() as raised:
        assert timeline.delete_shot(shot.id)
        qtbot.wait(1)
    assert not raised, raised
    assert shot.id not in [s.id for s in session.project.shots]
    assert session.selected_shot_id == neighbour.id
    assert [g.shot_id for g in timeline.strip.groups] == [s.id for s in session.project.shots]
    assert timeline.group(session.selected_shot_id).model.current


def test_an_edit_redraws_the_cards_of_its_shot_and_of_the_shots_it_moves_or_makes_stale(long_timeline):
    # A finished chunk of a 120-chunk storyboard derived all 120 cards again: the slowest event of a run.
    timeline = long_timeline
    session, shots = timeline.session, timeline.session.project.shots
    derived = []
    models_card = timeline.models.card
    timeline.models.card = lambda session, store, shot, *rest: derived.append(shot.id) or models_card(
        session, store, shot, *rest)
    session.push(SetPrompt(shots[2].id, shots[2].chunks[3].id, "a new prompt"))
    assert derived == [shots[2].id]  # the edited chunk's card alone: the shot's others are empty, as they were
    assert timeline.card(shots[2].chunks[3].id).prompt.toPlainText() == "a new prompt"

    derived.clear()  # a chunk more in the first shot moves every later card one second on
    session.push(AddChunk(shots[0].id, new_chunk(session.project, shots[0].id, 1, "inserted")))
    assert set(derived) == {shot.id for shot in shots}
    assert timeline.card(shots[1].chunks[0].id).time_label.text() == "0:09–0:10"

    session.push(SetShotStart(shots[1].id, "continue"))
    assert [timeline.card(c.id).model.state for c in shots[1].chunks] == ["stale"] * CHUNKS  # not its context
    session.undo_stack.undo()
    assert [timeline.card(c.id).model.state for c in shots[1].chunks] == ["done"] * CHUNKS
    session.push(SetShotStart(shots[1].id, "continue"))
    fake_generate(session.project, session.store, shots[0].id, history=session)  # the inserted chunk
    fake_generate(session.project, session.store, shots[1].id, from_index=0, history=session)
    assert [timeline.card(c.id).model.state for c in shots[1].chunks] == ["done"] * CHUNKS
    derived.clear()  # an edit in the first shot makes the shot that continues it stale: both are redrawn
    session.push(SetPrompt(shots[0].id, shots[0].chunks[0].id, "another prompt"))
    assert set(derived) == {shots[0].id, shots[1].id}
    assert [timeline.card(c.id).model.state for c in shots[1].chunks] == ["stale"] * CHUNKS


def test_a_zoom_in_motion_draws_the_overview_cells_once_it_settles(qtbot, long_timeline, monkeypatch):
    timeline, overview = long_timeline, long_timeline.overview
    drawn, draw_cards = [], type(overview)._draw_cards
    monkeypatch.setattr(type(overview), "_draw_cards",
                        lambda self: (drawn.append(timeline.strip.width()), draw_cards(self))[1])
    overview.repaint()
    drawn.clear()
    widths = [timeline.strip.width()]
    for _ in range(2):  # a Ctrl+wheel passing two levels: each step repaints the overview, no cell drawn again
        ctrl_wheel(timeline, 400, -120)
        overview.repaint()
        widths.append(timeline.strip.width())
    assert drawn == [] and len(set(widths)) == 3
    with qtbot.waitSignal(timeline.zoomSettled):
        pass
    qtbot.waitUntil(lambda: drawn == [widths[-1]])  # settled: the cells at the new scale
    cells = [overview.cell_rect(card) for card in timeline.cards()]
    assert cells[-1].right() <= overview.width() and all(a.right() <= b.left() + 1 for a, b in zip(cells, cells[1:]))
    image = overview.grab().toImage()
    empty = QColor(STATE_COLORS[EMPTY])
    assert image.pixelColor(cells[-1].center().toPoint()) == empty  # the last shot is not generated
    timeline.session.select(timeline.session.project.shots[0].id, timeline.cards()[3].chunk_id)
    overview.repaint()
    assert drawn == [widths[-1], widths[-1]]  # what the cells show changed, no zoom in motion: drawn again at once


def test_a_chunk_that_changes_has_its_overview_cell_drawn_again_alone(qtbot, long_timeline, monkeypatch):
    timeline, overview = long_timeline, long_timeline.overview
    cards = timeline.cards()
    timeline.session.select(timeline.session.project.shots[0].id, cards[4].chunk_id)  # outlined, beside a change
    overview.repaint()
    full, cells, draw_cards, draw_cell = [], [], type(overview)._draw_cards, type(overview)._draw_cell
    monkeypatch.setattr(type(overview), "_draw_cards", lambda self: (full.append(1), draw_cards(self))[1])
    monkeypatch.setattr(type(overview), "_draw_cell",
                        lambda self, painter, card, *rest: (cells.append(card), draw_cell(self, painter, card, *rest)))
    timeline.set_job_state(cards[5].chunk_id, "queued")  # a run's states, then a result: a cell or two each time
    timeline.set_job_state(cards[20].chunk_id, "denoising", 0.3)
    overview.repaint()
    assert full == [] and set(cells) <= {cards[5], cards[6], cards[20], cards[21]} and cards[5] in cells
    fake_generate(timeline.session.project, timeline.session.store, timeline.session.project.shots[2].id, 0,
                  history=timeline.session)  # chunk 17 done: its shot redrawn, one cell changed in the overview
    overview.repaint()
    assert full == [] and cards[16] in cells
    drawn_alone = overview.grab().toImage()
    overview.invalidate()  # every cell drawn afresh looks the same
    assert overview.grab().toImage() == drawn_alone and full == [1]


def drawn_rect(timeline, card) -> QRect:
    """Where the card really is in the strip (its widget), placed yet or not."""
    return QRect(card.mapTo(timeline.strip, QPoint(0, 0)), card.size())


def test_after_a_zoom_every_card_drawn_in_view_is_in_its_place_and_the_ones_scrolled_to_take_the_zoom(qtbot, long_timeline):
    timeline = long_timeline
    bar, viewport = timeline.scroll.horizontalScrollBar(), timeline.scroll.viewport()
    bar.setValue(timeline.strip.card_rect(timeline.cards()[9]).left() - 200)
    for delta in (-120, -120, -120, 120):  # out three levels and in one, the zoom never settling
        ctrl_wheel(timeline, 500, delta)
        in_view = QRect(bar.value(), 0, viewport.width(), timeline.strip.height())
        drawn = [c for c in timeline.cards() if drawn_rect(timeline, c).intersects(in_view)]
        assert drawn and all(drawn_rect(timeline, c) == timeline.strip.card_rect(c) for c in drawn)
    width = timeline.strip.card_rect(timeline.cards()[0]).width()
    far = timeline.cards()[-1]
    assert far.width() != width  # out of view: not sized yet
    bar.setValue(bar.maximum())  # scrolled to: sized and placed before it is painted
    assert far.width() == width and drawn_rect(timeline, far) == timeline.strip.card_rect(far)
    assert far.picture.rect.width() == timeline.card_width()[0]


def test_the_strip_is_as_wide_at_a_zoom_as_a_storyboard_laid_out_at_that_zoom_from_the_start(qtbot, long_timeline):
    timeline = long_timeline
    for level in (len(ZOOM_LEVELS) - 1, 3, 0, 2):
        timeline.set_zoom(level)
        fresh = TimelineView()
        qtbot.addWidget(fresh)
        fresh.resize(timeline.size())
        fresh.set_zoom(level)
        fresh.set_session(timeline.session)  # every card laid out at once at this zoom
        fresh.show()
        qtbot.waitUntil(lambda: fresh.strip.width() == timeline.strip.width(), timeout=2000)
        fresh.set_session(None)
        fresh.close()
    with qtbot.waitSignal(timeline.zoomSettled):
        pass
    qtbot.waitUntil(lambda: not any(group.card_row.has_unplaced() for group in timeline.strip.groups))
    for group in timeline.strip.groups:  # settled: every card placed, the row ending where its last card ends
        assert [drawn_rect(timeline, c) for c in group.cards] == [timeline.strip.card_rect(c) for c in group.cards]
        assert group.cards[-1].geometry().right() + 1 == group.card_row.width()


def test_a_chunk_deleted_or_moved_between_a_zoom_and_its_repaint_loses_nothing(qtbot, long_timeline):
    timeline = long_timeline
    session, shots = timeline.session, timeline.session.project.shots
    timeline.set_zoom(0)  # the cards in view are sized now, the window repainted in the next turn
    with qtbot.captureExceptions() as raised:
        session.select(shots[0].id, shots[0].chunks[1].id)
        assert timeline.delete_chunk()
        timeline.move_chunk_to(shots[0].id, shots[0].chunks[0].id, shots[1].id, 0)
        qtbot.wait(1)
    assert not raised, raised
    moved = timeline.card(shots[1].chunks[0].id)
    assert moved.column.isVisible() and moved.prompt.geometry().right() < moved.width() - 1  # laid out at its width
    assert moved.layout().isEnabled()


def test_cards_scrolled_back_to_the_start_after_a_zoom_are_laid_out_before_they_are_painted(long_timeline):
    timeline = long_timeline
    cards, bar = timeline.cards(), timeline.scroll.horizontalScrollBar()
    bar.setValue(timeline.strip.card_rect(cards[12]).left())
    first = cards[0]
    width = first.prompt.width()
    timeline.set_zoom(0)  # a wider text column
    QApplication.processEvents()
    assert first.prompt.width() == width  # out of view: not laid out yet
    bar.setValue(0)  # scrolled to (the scroll bar's value 0 is no "later")
    assert first.prompt.width() > width and first.prompt.geometry().right() < first.width() - 1


def test_after_a_zoom_the_pictures_of_the_next_levels_are_drawn_at_idle_so_the_next_zoom_draws_none(
        qtbot, long_timeline, monkeypatch):
    from magi_studio.timeline.thumbnail import CardPicture

    timeline = long_timeline
    timeline.set_zoom(2)
    out_width = timeline.card_width(3)[0]
    in_view = [card for card in timeline.cards() if card.visibleRegion().boundingRect().width() > 0]
    assert in_view
    # Drawn ahead a slice per event-loop turn once the zoom's frame is out, for the cards in view and around them.
    qtbot.waitUntil(lambda: all(out_width in card.picture.kept_widths() for card in in_view))
    qtbot.waitUntil(lambda: not timeline._pictures_ahead)  # and the ones around them
    drawn = []
    paint = CardPicture._paint
    monkeypatch.setattr(CardPicture, "_paint", lambda self, *args, **kwargs: (drawn.append(self.model),
                                                                              paint(self, *args, **kwargs))[1])
    ctrl_wheel(timeline, timeline.scroll.viewport().width() // 2, -120)  # out, around the middle of the view
    assert timeline.zoom_level == 3
    qtbot.wait(30)  # the zoom's frame, before anything is drawn ahead
    shown = [card for card in timeline.cards() if card.visibleRegion().boundingRect().width() > 0]
    assert len(shown) > len(in_view)
    assert all(card.picture.rect.width() == out_width for card in shown)
    assert not drawn, drawn


def test_a_picture_drawn_ahead_is_the_one_painted_and_a_new_result_drops_it(qtbot, monkeypatch):
    from PySide6.QtGui import QImage, QPixmap

    from magi_studio.timeline.style import DONE
    from magi_studio.timeline.card import ChunkCard
    from magi_studio.timeline.thumbnail import CardModel, CardPicture

    def model(colour: str) -> CardModel:
        image = QImage(64, 64, QImage.Format.Format_RGB32)
        image.fill(QColor(colour))
        return CardModel("s", "c", 0, "Shot", "0:00–0:01", "", 1, False, DONE, thumbnail=QPixmap.fromImage(image))

    def centre(card: ChunkCard) -> QColor:
        return card.grab(card.picture.rect).toImage().pixelColor(33, 56)

    card = ChunkCard(40)
    qtbot.addWidget(card)
    card.set_width(40, 0)
    card.show_model(model("#d02020"))
    assert card.picture.prepare(67) and 67 in card.picture.kept_widths()
    assert not card.picture.prepare(67)  # kept: nothing to draw the second time
    drawn = []
    paint = CardPicture._paint
    monkeypatch.setattr(CardPicture, "_paint", lambda self, *args, **kwargs: (drawn.append(1),
                                                                            paint(self, *args, **kwargs))[1])
    card.set_width(67, 0)
    assert not drawn and centre(card).red() > 150  # painted from the picture drawn ahead
    card.show_model(model("#2040d0"))  # a new result: the pictures of the old one are dropped
    assert card.picture.kept_widths() == []
    assert centre(card).blue() > 150 and drawn


def in_view(timeline, card, field=None) -> bool:
    """The card's place at the current zoom is inside the view, or (a `field` of it) the field's start, where its
    text cursor is (what QScrollArea shows of a text field that takes the focus)."""
    bar = timeline.scroll.horizontalScrollBar()
    rect = timeline.strip.card_rect(card)
    if field is not None:
        rect = QRect(drawn_rect(timeline, field).topLeft(), QSize(4, 4))
    return bar.value() <= rect.left() and rect.right() <= bar.value() + timeline.scroll.viewport().width()


def test_tab_into_a_card_a_zoom_has_not_placed_yet_scrolls_to_its_place_at_the_zoom(qtbot, long_timeline):
    timeline = long_timeline
    cards, bar = timeline.cards(), timeline.scroll.horizontalScrollBar()
    bar.setValue(timeline.strip.card_rect(cards[9]).left() - 200)
    timeline.set_zoom(0)  # wider: the cards out of view keep their old place until they are scrolled to
    QApplication.processEvents()
    last = max(i for i, c in enumerate(cards) if in_view(timeline, c))
    index = next(i for i in range(last + 1, len(cards))  # the first card after the view not placed yet
                 if drawn_rect(timeline, cards[i]) != timeline.strip.card_rect(cards[i]))
    before, target = cards[index - 1], cards[index]
    before.seed.setFocus()
    QTest.keyClick(before.seed, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is target.prompt
    assert drawn_rect(timeline, target) == timeline.strip.card_rect(target)  # placed, its prompt laid out, in view
    assert in_view(timeline, target, target.prompt) and target.prompt.geometry().right() < target.width() - 1


def test_ensure_widget_visible_on_a_card_a_zoom_has_not_placed_yet_scrolls_to_its_place(qtbot, long_timeline):
    timeline = long_timeline
    cards = timeline.cards()
    timeline.set_zoom(len(ZOOM_LEVELS) - 1)  # narrow: cards[12] is drawn in view at its old place, then out of sight
    timeline.set_zoom(2)
    far = cards[-1]
    assert drawn_rect(timeline, far) != timeline.strip.card_rect(far)
    timeline.scroll.ensureWidgetVisible(far)
    assert in_view(timeline, far) and far.width() == timeline.strip.card_rect(far).width()
    middle = cards[12]
    timeline.set_zoom(0)
    timeline.scroll.ensureWidgetVisible(middle.prompt)
    assert drawn_rect(timeline, middle) == timeline.strip.card_rect(middle) and in_view(timeline, middle, middle.prompt)


def test_a_zoom_sizes_only_the_cards_in_view_at_its_new_scroll_position(qtbot, long_timeline):
    timeline = long_timeline
    cards, bar = timeline.cards(), timeline.scroll.horizontalScrollBar()
    bar.setValue(timeline.strip.card_rect(cards[9]).left() - 200)
    for level in (3, 5, 2, 0):  # out and in, never settling
        timeline.set_zoom(level, anchor=40)
        view = QRect(bar.value(), 0, timeline.scroll.viewport().width(), timeline.strip.height())
        sized = [c for c in cards if c.width() == timeline.strip.card_rect(c).width()]
        assert sized and all(timeline.strip.card_rect(c).intersects(view) for c in sized), level


def test_a_long_shots_header_keeps_to_the_visible_left_edge_while_its_cards_are_in_view(qtbot, long_timeline):
    """As an editor's clip names do: scrolled into a long shot, its header (a picture of its fields) stays at the view's
    left edge, its actions button at the shot's end, and goes with the shot's end when that leaves it too little room;
    a click on it puts the fields there to edit, under the mouse, until they lose the focus. No card moves in its shot,
    and a zoom keeps the header where it is seen."""
    timeline = long_timeline
    strip, viewport, bar = timeline.strip, timeline.scroll.viewport(), timeline.scroll.horizontalScrollBar()
    first, second = strip.groups[:2]
    stuck = first.stuck_header

    def in_view(widget) -> int:
        return widget.mapTo(viewport, QPoint(0, 0)).x()

    start, actions, margin = in_view(first.name_edit), first.more.geometry(), first.name_edit.x()
    cards = [card.geometry() for card in first.cards]
    assert not stuck.isVisible() and start == first.x() + margin
    # How wide the header's fields are, from the shot's name to its take (the actions button is at the shot's end).
    fields = max(widget.geometry().right() for widget in (first.start_box, first.take_chip) if widget.isVisible()) - margin
    for value in (200, 900, first.geometry().right() - actions.width() - fields - 2 * margin - 60):
        bar.setValue(value)
        assert stuck.isVisible() and in_view(stuck) == 0, value  # its fields as far from the edge as from the start
        assert stuck.geometry().right() < actions.left() and first.more.geometry() == actions
        picture = stuck.grab().toImage()  # the shot's name is written there, as in the header
        assert len({picture.pixel(x, y) for x in range(margin, margin + 40) for y in range(picture.height())}) > 3
    bar.setValue(first.geometry().right() - 300)  # its last card in view: the header goes with the shot's end
    assert stuck.isVisible() and in_view(stuck) < 0 and stuck.geometry().right() < actions.left()
    assert not second.stuck_header.isVisible() and in_view(second.name_edit) == second.x() + margin - bar.value()
    assert [card.geometry() for card in first.cards] == cards
    # A click on its prompt: the shot prompt itself is there to type in, and stays there as the storyboard scrolls.
    bar.setValue(700)
    click = QPoint(first.prompt_edit.x() + 20, first.prompt_edit.y() + first.prompt_edit.height() // 2 - stuck.y())
    qtbot.mouseClick(stuck, Qt.MouseButton.LeftButton, pos=click)
    prompt = first.prompt_edit
    assert prompt.hasFocus() and not stuck.isVisible() and in_view(prompt) == prompt.x() - first.name_edit.x() + margin
    qtbot.keyClicks(prompt, "a red ball")
    assert timeline.session.project.shots[0].prompt == "a red ball"
    bar.setValue(820)
    assert in_view(prompt) == prompt.x() - first.name_edit.x() + margin and prompt.hasFocus()
    strip.setFocus()
    qtbot.waitUntil(lambda: stuck.isVisible() and first.name_edit.x() == margin)
    assert in_view(stuck) == 0 and [card.geometry() for card in first.cards] == cards
    bar.setValue(300)
    ctrl_wheel(timeline, 300, 120)  # zoomed in around the mouse: still inside the first shot, wider now
    qtbot.waitUntil(lambda: timeline.zoom_level == DEFAULT_ZOOM - 1)
    assert first.x() < bar.value() < first.geometry().right() - 2 * fields
    assert stuck.isVisible() and in_view(stuck) == 0
    bar.setValue(0)
    assert in_view(first.name_edit) == start and not stuck.isVisible()
