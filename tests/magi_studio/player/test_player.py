"""The preview player: frame store, real painted pixels, transport behaviour, and what playback does with
time (frames presented in order, none dropped on time, late ones dropped and counted), on a clock the test
moves; the real-time 24 fps figure is benchmarks/player_playback.py's."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPixmap

from magi_engine.config import CHUNK_FRAMES
from magi_studio.player import FrameStore, PreviewPlayer, SlotState, timecode
from magi_studio.player.clock import PlaybackClock
from magi_studio.theme import palette

COLOURS = [(220, 40, 40), (40, 200, 60), (40, 80, 230), (230, 200, 30), (200, 40, 200)]


def solid_chunk(rgb, size=(256, 256), frames=CHUNK_FRAMES) -> np.ndarray:
    chunk = np.empty((frames, size[1], size[0], 3), np.uint8)
    chunk[:] = rgb
    return chunk


def numbered_chunk(chunk: int, size=(256, 256)) -> np.ndarray:
    """Frame f of the chunk has red = f * 10 and green = chunk * 40 (mod 256): each frame is identifiable."""
    frames = np.zeros((CHUNK_FRAMES, size[1], size[0], 3), np.uint8)
    frames[..., 0] = (np.arange(CHUNK_FRAMES) * 10)[:, None, None]
    frames[..., 1] = chunk * 40 % 256
    frames[..., 2] = 90
    return frames


@pytest.fixture
def player(qtbot):
    widget = PreviewPlayer()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.pause()


def pixel(widget, point: QPoint) -> tuple[int, int, int]:
    image = widget.grab().toImage()
    colour = QColor(image.pixel(point))
    return colour.red(), colour.green(), colour.blue()


def close(a, b, tolerance=6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


# Frame store --------------------------------------------------------------------------------------
def test_store_fills_chunk_by_chunk_with_holes_and_previews(qtbot):
    store = FrameStore(chunk_count=2)
    changed = []
    store.chunkChanged.connect(changed.append)
    assert [store.state(i) for i in range(2)] == [SlotState.EMPTY, SlotState.EMPTY]
    assert store.frame_image(30).state == SlotState.EMPTY and store.frame_image(30).chunk == 1

    store.set_frames(3, numbered_chunk(3, (128, 64)))  # grows the store; first frames set the resolution
    assert store.chunk_count == 4 and store.frame_count == 96
    assert (store.frame_size.width(), store.frame_size.height()) == (128, 64)
    image = store.frame_image(3 * 24 + 5).image
    assert QColor(image.pixel(10, 10)).getRgb()[:3] == (50, 120, 90)

    preview = np.zeros((6, 8, 16, 3), np.uint8)
    preview[:, :, :, 2] = (np.arange(6) * 40)[:, None, None]
    store.set_preview(3, preview, progress=0.5)
    shown = store.frame_image(3 * 24 + 9)  # pixel frame 9 → latent frame 2 of 6
    assert shown.state == SlotState.PREVIEW and shown.progress == 0.5
    assert QColor(shown.image.pixel(0, 0)).blue() == 80
    store.clear_preview(3)  # e.g. cancelled: the older frames show again
    assert store.state(3) == SlotState.FRAMES
    store.clear_chunk(3)
    assert store.state(3) == SlotState.EMPTY
    assert changed == [3, 3, 3, 3]


def solid_pixmap(rgb, size=(64, 64)) -> QPixmap:
    pixmap = QPixmap(*size)
    pixmap.fill(QColor(*rgb))
    return pixmap


def test_a_loading_chunk_carries_its_poster_until_its_frames_arrive(qtbot):
    store = FrameStore(chunk_count=1)
    changed = []
    store.chunkChanged.connect(changed.append)
    poster = solid_pixmap((200, 120, 40))
    store.set_loading(0, poster)
    shown = store.frame_image(5)
    assert (shown.state, shown.image, shown.poster) == (SlotState.LOADING, None, poster)
    store.set_loading(0, poster)  # the same picture again: nothing to repaint
    assert changed == [0]

    store.set_frames(0, solid_chunk(COLOURS[0]))
    assert store.frame_image(5).state == SlotState.FRAMES and store.frame_image(5).poster is None
    store.set_loading(0)  # frames dropped with no picture at hand: the text placeholder
    assert store.frame_image(5).poster is None
    store.set_loading(0, QPixmap())  # a thumbnail file that did not decode is no picture either
    assert store.frame_image(5).poster is None and changed == [0, 0, 0]


def test_an_unreadable_chunk_is_a_hole_that_says_so_until_it_loads_again(qtbot):
    store = FrameStore(chunk_count=2)
    changed = []
    store.chunkChanged.connect(changed.append)
    store.set_loading(1, solid_pixmap((200, 120, 40)))
    store.set_unreadable(1)  # its file did not decode
    shown = store.frame_image(30)
    assert (shown.state, shown.image, shown.poster) == (SlotState.UNREADABLE, None, None)
    assert store.state(0) == SlotState.EMPTY and store.frames(1) is None
    store.set_unreadable(1)  # said once: nothing to repaint
    assert changed == [1, 1]
    store.set_loading(1)  # read again (the user asked): loading, then unreadable again if it still fails
    assert store.state(1) == SlotState.LOADING
    store.set_unreadable(1)
    assert store.state(1) == SlotState.UNREADABLE
    store.set_preview(1, solid_chunk(COLOURS[0])[:6, :16, :16], 0.5)  # being regenerated meanwhile:
    store.set_loading(1)
    store.set_unreadable(1)  # the old result's file failing does not hide the live preview
    assert store.state(1) == SlotState.PREVIEW
    store.set_frames(1, solid_chunk(COLOURS[1]))  # repaired
    assert store.state(1) == SlotState.FRAMES


def test_store_rejects_what_is_not_a_chunk_of_frames():
    store = FrameStore()
    with pytest.raises(ValueError, match="24 frames"):
        store.set_frames(0, solid_chunk((0, 0, 0), frames=12))
    with pytest.raises(ValueError, match="uint8"):
        store.set_frames(0, np.zeros((24, 8, 8, 3), np.float32))
    with pytest.raises(IndexError):
        store.frame_image(0)


def test_timecode_is_hours_minutes_seconds_frames_at_the_projects_rate():
    assert timecode(0, 24) == "00:00:00:00"
    assert timecode(24 * 61 + 5, 24) == "00:01:01:05"
    assert timecode(24 * 3600 + 23, 24) == "01:00:00:23"
    assert timecode(25 * 10 + 24, 25) == "00:00:10:24" and timecode(30 * 2, 30) == "00:00:02:00"


# Painting -----------------------------------------------------------------------------------------
def test_player_paints_real_frames_holes_and_previews(player):
    for chunk, rgb in enumerate(COLOURS[:2]):
        player.store.set_frames(chunk, solid_chunk(rgb))
    player.store.set_chunk_count(4)
    centre = player.view.picture_rect().center()
    inside = player.view.mapTo(player, centre)
    assert close(pixel(player, inside), COLOURS[0])
    player.seek_chunk(1)
    assert close(pixel(player, inside), COLOURS[1])

    player.seek_chunk(2)  # a hole: the placeholder, not stale pixels
    corner = player.view.mapTo(player, player.view.picture_rect().topLeft() + QPoint(30, 30))
    assert close(pixel(player, corner), (0x14, 0x16, 0x1a), 2)

    player.store.set_preview(3, solid_chunk((10, 200, 200), size=(32, 32), frames=6), progress=0.25)
    player.seek_chunk(3)
    assert close(pixel(player, inside), (10, 200, 200), 8)
    assert player.view.shown_frame.state == SlotState.PREVIEW


def test_clicking_an_unreadable_chunk_asks_to_read_it_again(player, qtbot):
    player.store.set_frames(0, solid_chunk(COLOURS[0]))
    player.store.set_chunk_count(2)
    asked = []
    player.view.retryRequested.connect(asked.append)
    centre = player.view.picture_rect().center()
    qtbot.mouseClick(player.view, Qt.MouseButton.LeftButton, pos=centre)  # real frames: a click is no request
    player.store.set_unreadable(1)
    player.seek_chunk(1)
    assert player.view.cursor().shape() == Qt.CursorShape.PointingHandCursor
    qtbot.mouseClick(player.view, Qt.MouseButton.RightButton, pos=centre)
    qtbot.mouseClick(player.view, Qt.MouseButton.LeftButton, pos=QPoint(2, 2))  # outside the picture
    assert asked == []
    qtbot.mouseClick(player.view, Qt.MouseButton.LeftButton, pos=centre)
    assert asked == [1]
    player.seek_chunk(0)
    assert player.view.cursor().shape() == Qt.CursorShape.ArrowCursor


def dimmed(rgb, alpha=140) -> tuple[int, int, int]:
    """`rgb` under the view's dimming veil (13, 14, 17, alpha)."""
    return tuple(round(c * (255 - alpha) / 255 + v * alpha / 255) for c, v in zip(rgb, (13, 14, 17)))


def badge_pixels(player, colour) -> int:
    """How many pixels of `colour` lie in the picture's top-left corner, where the view puts its badges."""
    image = player.grab().toImage()
    corner = player.view.mapTo(player, player.view.picture_rect().topLeft())
    return sum(close(QColor(image.pixel(corner.x() + x, corner.y() + y)).getRgb()[:3], colour, 3)
               for x in range(8, 40) for y in range(8, 40))


def test_a_loading_chunk_paints_its_poster_dimmed_and_badged_until_its_frames_arrive(player):
    player.store.set_chunk_count(2)
    player.store.set_loading(0)
    view = player.view
    inside = view.mapTo(player, view.picture_rect().topLeft() + QPoint(30, 30))
    assert close(pixel(player, inside), (0x14, 0x16, 0x1a), 2)  # no picture at hand: the text placeholder

    player.store.set_loading(0, solid_pixmap((200, 120, 40)))
    centre = view.mapTo(player, view.picture_rect().center())
    assert close(pixel(player, centre), dimmed((200, 120, 40)), 4)  # the chunk's picture at once, dimmed
    raised = QColor(palette.RAISED).getRgb()[:3]
    assert badge_pixels(player, raised) > 50  # the "Loading chunk 1…" pill

    player.store.set_frames(0, solid_chunk(COLOURS[0]))  # the real frames replace it, badge and all
    assert close(pixel(player, centre), COLOURS[0]) and badge_pixels(player, raised) == 0
    assert view.shown_frame.state == SlotState.FRAMES


def test_empty_player_paints_its_empty_state(player):
    image = player.grab().toImage()
    assert player.frame_count == 0 and not player.transport.play.isEnabled()
    assert image.width() == 800 and player.view.shown_frame is None


# Transport ----------------------------------------------------------------------------------------
def test_step_seek_chunk_and_keys(player, qtbot):
    for chunk in range(3):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    frames, chunks = [], []
    player.frameChanged.connect(frames.append)
    player.chunkChanged.connect(chunks.append)
    player.setFocus()
    qtbot.keyClick(player, Qt.Key.Key_Right)
    qtbot.keyClick(player, Qt.Key.Key_Right)
    qtbot.keyClick(player, Qt.Key.Key_Left)
    assert player.current_frame == 1 and frames == [1, 2, 1]
    player.seek_chunk(2)
    assert (player.current_frame, player.current_chunk, chunks) == (48, 2, [2])
    qtbot.keyClick(player, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert player.current_frame == 24  # previous chunk
    qtbot.keyClick(player, Qt.Key.Key_End)
    assert player.current_frame == 71
    qtbot.keyClick(player, Qt.Key.Key_Right)
    assert player.current_frame == 71  # clamped
    assert player.transport.timecode.text() == "00:00:02:23" and player.transport.caption.text() == "TC"
    assert player.transport.duration.text() == "/ 00:00:03:00" and player.transport.chunk.text() == "Chunk 3"
    player.set_frame_counter(True)  # the frame counter option
    assert (player.transport.caption.text(), player.transport.timecode.text(),
            player.transport.duration.text()) == ("Frame", "72", "/ 72")
    player.set_frame_counter(False)
    player.seek(24)

    qtbot.keyClick(player, Qt.Key.Key_Space)
    assert player.is_playing()
    qtbot.keyClick(player, Qt.Key.Key_Right)  # stepping pauses, as in editors
    assert not player.is_playing() and player.current_frame == 25


def test_scrub_bar_seeks_where_it_is_clicked(player, qtbot):
    for chunk in range(5):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    scrub = player.transport.scrub
    x = round(scrub.x_for_frame(100.5))
    qtbot.mouseClick(scrub, Qt.MouseButton.LeftButton, pos=QPoint(x, scrub.height() // 2))
    assert player.current_frame == 100 and player.current_chunk == 4


def test_playback_stops_at_the_end_unless_looping(player, qtbot):
    player.store.set_frames(0, numbered_chunk(0))
    player.set_fps(120)  # a fast clock keeps the test short
    player.seek(20)
    player.play()
    qtbot.waitUntil(lambda: not player.is_playing(), timeout=3000)
    assert player.current_frame == 23

    player.play()  # at the end: starts over
    assert player.current_frame == 0
    player.pause()


def test_loop_over_a_chunk_range(player, qtbot):
    for chunk in range(4):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    player.set_fps(120)
    player.set_loop_chunks(1, 2)
    player.set_looping(True)
    assert player.transport.loop.isChecked()
    seen = []
    player.frameChanged.connect(seen.append)
    player.play()  # outside the range: starts at its first frame
    qtbot.waitUntil(lambda: seen.count(24) >= 2, timeout=5000)  # wrapped around at least once
    player.pause()
    assert min(seen) == 24 and max(seen) <= 71
    assert 71 in seen or player.stats.dropped > 0

    player.clear_loop_range()  # loop the whole timeline
    player.seek(95)
    player.play()
    qtbot.waitUntil(lambda: player.current_frame < 10, timeout=3000)
    assert player.is_playing()
    player.pause()


def test_clock_ticks_by_absolute_time(qtbot):
    clock = PlaybackClock(fps=100)
    ticks = []
    clock.tick.connect(ticks.append)
    clock.start()
    qtbot.waitUntil(lambda: clock.elapsed_s() >= 0.5, timeout=3000)
    clock.stop()
    assert ticks == sorted(set(ticks)) and abs(ticks[-1] - clock.elapsed_s() * 100) <= 2


def test_generation_feed_paints_previews_then_chunks_and_needs_no_reference(qtbot, engine_worker, tiny_session):
    import gc

    from magi_engine.requests import ChunkSpec, GenerationRequest
    from magi_studio.player import GenerationFeed

    store = FrameStore()
    loaded = engine_worker.use_session(tiny_session)
    qtbot.waitUntil(lambda: loaded not in engine_worker.live_jobs, timeout=5000)
    states = []
    store.chunkChanged.connect(lambda chunk: states.append((chunk, store.state(chunk))))
    request = GenerationRequest(chunks=tuple(ChunkSpec("a red ball falls", seed=i) for i in range(3)), width=64,
                                height=64)
    job = engine_worker.generate(request)
    GenerationFeed(engine_worker, store, job, chunk_offset=2)  # no reference kept: the store owns it
    gc.collect()
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=10_000)
    assert store.chunk_count == 5 and [store.state(c) for c in range(5)] == [SlotState.EMPTY] * 2 + [
        SlotState.FRAMES] * 3
    assert (2, SlotState.PREVIEW) in states and states.index((2, SlotState.PREVIEW)) < states.index(
        (2, SlotState.FRAMES))
    assert store.frames(2).shape == (24, 64, 64, 3)


# What playback does with time --------------------------------------------------------------------
class ManualClock(PlaybackClock):
    """The player's clock with time in the test's hands: `advance` moves it and emits the tick then due,
    counting the ticks it jumped over in `skipped`, as PlaybackClock does when its timer fires late
    (a busy or loaded machine). Real-time figures are benchmarks/player_playback.py's."""

    def __init__(self, fps: float = 24.0, parent=None) -> None:
        super().__init__(fps, parent)
        self._periods, self._running = 0, False  # time, in whole frame periods since start()

    def is_running(self) -> bool:
        return self._running

    def elapsed_s(self) -> float:
        return self._periods / self.fps

    def start(self) -> None:
        self._periods, self._ticks, self.skipped, self._running = 0, 0, 0, True

    def stop(self) -> None:
        self._running = False

    def advance(self, frames: int) -> None:
        self._periods += frames
        due = self._periods
        if self._running and due > self._ticks:
            self.skipped += due - self._ticks - 1
            self._ticks = due
            self.tick.emit(due)


@pytest.fixture
def timed_player(qtbot, monkeypatch):
    """A shown player whose clock is a ManualClock (the player makes its own clock, as its child)."""
    monkeypatch.setattr("magi_studio.player.player.PlaybackClock", ManualClock)
    widget = PreviewPlayer()
    qtbot.addWidget(widget)
    widget.resize(800, 600)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget, widget.findChild(ManualClock)
    widget.pause()


def test_playback_presents_every_frame_in_order_on_time_and_drops_only_late_ones(timed_player, qtbot):
    """However fast the machine: a frame painted before the next is due means nothing is dropped; a tick
    the clock jumped over (the GUI thread was busy) or one replaced before it was painted is dropped,
    counted, and the frame due now is shown instead."""
    player, clock = timed_player
    for chunk in range(2):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    painted = []
    player.view.framePainted.connect(painted.append)
    player.play()

    def advance_and_paint(frames: int, shown: int) -> None:
        clock.advance(frames)
        qtbot.waitUntil(lambda: painted[-1:] == [shown], timeout=5000)

    for frame in range(1, 25):  # on time: each frame reaches the screen before the next is due
        advance_and_paint(1, frame)
    assert (player.stats.presented, player.stats.dropped, clock.skipped) == (24, 0, 0)

    advance_and_paint(3, 27)  # the thread was busy for three periods: ticks 25 and 26 never came
    assert clock.skipped == 2 and (player.stats.presented, player.stats.dropped) == (25, 2)

    clock.advance(1)  # tick 28 is shown, but tick 29 comes before the event loop paints it
    advance_and_paint(1, 29)
    stats = player.stats
    assert (stats.presented, stats.dropped) == (26, 3)
    assert player.current_frame == 29 and stats.max_late_ms == 0.0
    shown = [frame for i, frame in enumerate(painted) if i == 0 or frame != painted[i - 1]]
    assert shown == [*range(1, 25), 27, 29]  # in order, each frame once; nothing between was painted
    assert pixel(player.view, player.view.rect().center()) == pytest.approx((29 % 24 * 10, 40, 90), abs=6)


# Shuttle, in/out, shots -----------------------------------------------------------------------------
def test_shuttle_doubles_its_speed_each_press_and_runs_both_ways(player, qtbot):
    for chunk in range(5):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    rates = []
    player.rateChanged.connect(rates.append)
    player.seek(60)
    for _ in range(5):
        player.shuttle(1)
    assert rates == [1, 2, 4, 8, 8] and player.transport.rate.text() == "▶▶ 8×"
    assert player.transport.rate.isVisibleTo(player)
    qtbot.waitUntil(lambda: player.current_frame >= 84, timeout=3000)  # eight frames a tick
    player.shuttle(-1)  # the other way: back to normal speed, backwards
    assert player.playback_rate == -1 and player.is_playing()
    start = player.current_frame
    qtbot.waitUntil(lambda: player.current_frame <= start - 3, timeout=3000)
    player.shuttle(-1)
    assert player.playback_rate == -2 and player.transport.rate.text() == "◀◀ 2×"
    player.pause()
    assert player.playback_rate == 0 and not player.transport.rate.isVisibleTo(player)
    player.set_fps(240)  # backwards to the first frame, then it stops there
    player.shuttle(-1)
    qtbot.waitUntil(lambda: not player.is_playing(), timeout=5000)
    assert player.current_frame == 0
    player.shuttle(-1)  # backwards from the start plays from the end
    assert player.is_playing() and player.current_frame >= 100
    player.play()  # Space: forward at normal speed
    assert player.playback_rate == 1


def test_in_and_out_marks_make_the_range_loop_plays(player, qtbot):
    for chunk in range(4):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    changes = []
    player.inOutChanged.connect(changes.append)
    player.seek(30)
    player.mark_in()
    assert player.in_out.first == 30 and player.in_out.last == 95  # to the end until an out is marked
    player.mark_out(53)
    marks = player.in_out
    assert (marks.first, marks.last, marks.frame_count, marks.chunks, marks.frames) == (30, 53, 24, (1, 2), (30, 54))
    assert player.loop_range == (30, 53) and changes[-1] == marks
    assert player.transport.in_out.text() == "In/Out 00:00:01:00"
    assert player.transport.in_out.toolTip().startswith("In 00:00:01:06, out 00:00:02:05: 24 frames.")
    player.mark_out(10)  # an out before the in drops the in
    assert (player.in_out.first, player.in_out.last) == (0, 10)
    player.mark_in(40)  # an in after the out drops the out
    assert (player.in_out.first, player.in_out.last) == (40, 95)
    player.mark_out(60)
    player.go_to_out()
    assert player.current_frame == 60
    player.go_to_in()
    assert player.current_frame == 40

    player.set_fps(240)
    player.set_looping(True)
    seen = []
    player.frameChanged.connect(seen.append)
    player.seek(0)
    player.play()  # outside the range: from the in mark, wrapping at the out mark
    qtbot.waitUntil(lambda: seen.count(40) >= 2, timeout=5000)
    player.pause()
    assert min(seen[1:]) >= 40 and max(seen) <= 60
    player.clear_in_out()
    assert player.in_out is None and changes[-1] is None and not player.transport.in_out.isVisibleTo(player)


def test_shots_name_the_chunks_and_mark_their_boundaries(player):
    from magi_studio.player import ShotSpan

    for chunk in range(6):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    player.set_shots([ShotSpan("Shot 1", 0, 4), ShotSpan("Opening", 4, 2), ShotSpan("Later", 6, 2)])
    player.seek_chunk(5)
    assert player.transport.chunk.text() == "Opening · chunk 2" and player.chunk_name(1) == "Shot 1 · chunk 2"
    scrub = player.transport.scrub
    assert scrub.shot_boundaries() == [4]  # "Later" has no frames yet: no line past the last chunk
    # The boundary line is drawn in the gap before chunk 5's cell, in amber.
    image = scrub.grab().toImage()
    x = round(scrub.x_for_frame(4 * CHUNK_FRAMES) - 1)
    amber = QColor(palette.WARNING).getRgb()[:3]
    drawn = [QColor(image.pixel(x + dx, scrub.height() // 2)).getRgb()[:3] for dx in (-1, 0, 1)]
    assert any(close(colour, amber, 30) for colour in drawn), drawn
    assert not any(close(QColor(image.pixel(round(scrub.x_for_frame(2 * CHUNK_FRAMES) - 1) + dx,
                                             scrub.height() // 2)).getRgb()[:3], amber, 30) for dx in (-1, 0, 1))
    player.set_shots([ShotSpan("Shot 1", 0, 6)])
    assert scrub.shot_boundaries() == [] and player.transport.chunk.text() == "Shot 1 · chunk 6"


def test_a_long_shot_name_is_elided_not_widening_the_player(player, qtbot):
    from magi_studio.player.transport import CHUNK_LABEL_WIDTH
    from magi_studio.player import ShotSpan

    player.store.set_frames(0, numbered_chunk(0))
    width = player.minimumSizeHint().width()
    player.set_shots([ShotSpan("The very long opening shot on the beach at dawn, seen from the dunes", 0, 1)])
    label = player.transport.chunk
    qtbot.waitUntil(lambda: label.width() == CHUNK_LABEL_WIDTH)  # laid out at its widest
    shown = label.shown_text()
    assert shown.startswith("The very") and "…" in shown and shown.endswith("chunk 1")
    assert player.chunk_name(0) in label.toolTip()
    assert player.minimumSizeHint().width() <= width


def test_the_in_out_readout_gives_up_its_width_before_the_window_grows(player, qtbot):
    # Seen under Xvfb at 1366x768: with an in/out range marked, the readouts asked for 116 pixels more and the main
    # window grew past the screen's right edge.
    for chunk in range(4):
        player.store.set_frames(chunk, numbered_chunk(chunk))
    width = player.minimumSizeHint().width()
    player.seek(30)
    player.mark_in()
    player.mark_out(53)
    readout = player.transport.in_out
    assert readout.isVisibleTo(player) and readout.text() == "In/Out 00:00:01:00"
    asks = readout.minimumSizeHint().width()  # the word "In/Out", not the whole readout
    assert asks < readout.sizeHint().width() / 2 and player.minimumSizeHint().width() <= width + asks + 14
    player.resize(player.minimumSizeHint().width(), 600)
    qtbot.waitUntil(lambda: readout.shown_text() != readout.text())
    assert readout.shown_text().startswith("In/") and readout.toolTip().startswith("In 00:00:01:06")


def test_the_scrub_bar_draws_again_only_the_cell_of_a_chunk_that_changed(player, qtbot, monkeypatch, qtlog):
    for chunk in range(40):
        player.store.set_frames(chunk, solid_chunk((40, 40, 40), size=(16, 16)))
    scrub, store = player.transport.scrub, player.store
    scrub.repaint()
    asked, state = [], store.state
    monkeypatch.setattr(store, "state", lambda chunk: (asked.append(chunk), state(chunk))[1])
    player.seek(30)  # the playhead moves: the cells are copied, none drawn again
    scrub.repaint()
    assert asked == []
    store.set_preview(12, np.full((CHUNK_FRAMES, 8, 8, 3), 200, np.uint8), 0.5)  # a live preview's step on chunk 13
    scrub.repaint()
    assert asked == [12]
    after_step = scrub.grab().toImage()
    scrub.resize(scrub.width() + 1, scrub.height())  # every cell drawn afresh ...
    scrub.resize(scrub.width() - 1, scrub.height())
    assert scrub.grab().toImage() == after_step  # ... looks the same as the cell drawn alone
    assert len(asked) > 40
    assert not [record.message for record in qtlog.records if "QPixmap" in record.message]  # cleared, then drawn
