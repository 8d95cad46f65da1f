"""PlayerSync decodes frames off the GUI thread: a take switch on a long storyboard returns at once with the
chunks loading, the frames then arrive bit-exact (the chunk under the playhead first), a late decode for a
take no longer shown is dropped, frames held for results still shown are not decoded again, and only the
memory budget's worth of chunks around the playhead stays decoded. A loading chunk shows its card's
thumbnail meanwhile; an unreadable result is read again only when the user asks to see its chunk again."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor

from magi_engine.config import CHUNK_FRAMES
from magi_studio.document.commands import AddChunk, SetPrompt, new_chunk
from magi_studio.document.model import ProjectSettings, active_path, new_project, resolve_take
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.store import ProjectStore
from magi_studio.player import SlotState, PreviewPlayer
from magi_studio.timeline import PlayerSync
from magi_studio.timeline.player_sync import slots_near_playhead
from magi_studio.document_session import DocumentSession
from tests.magi_studio.document.fakes import fake_generate
from tests.magi_studio.timeline.helpers import wait_for_frames

READ_FRAMES = ProjectStore.read_frames  # the real decoder, for the expected frames (tests wrap the method)
CHUNKS, EDITED = 60, 30  # Take 2 regenerates chunks 30..59: chunks 0..29 are the same results in both takes


@pytest.fixture(scope="module")
def long_board(tmp_path_factory):
    """One shot of 60 generated chunks (64x64) with two takes differing from chunk 30 on (Take 2 active)."""
    store = ProjectStore.create(tmp_path_factory.mktemp("long") / "Long")
    project = new_project(ProjectSettings(model="tiny", width=64, height=64, steps=4))
    history = UndoHistory(Document(project))
    shot = project.shots[0]
    for index in range(CHUNKS):
        if index:
            history.push(AddChunk(shot.id, new_chunk(project, shot.id, index)))
        history.push(SetPrompt(shot.id, shot.chunks[index].id, f"chunk {index}"))
    fake_generate(project, store, shot.id, history=history)
    history.push(SetPrompt(shot.id, shot.chunks[EDITED].id, "another turn"))
    fake_generate(project, store, shot.id, EDITED, history=history)
    assert len(shot.takes) == 2
    return project, store


class Reads:
    """Wraps ProjectStore.read_frames: records (thread, result id) per decode; `gate` can hold the decodes."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[tuple[bool, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        original = ProjectStore.read_frames

        def read_frames(store, result):
            self.calls.append((threading.current_thread() is threading.main_thread(), result.id))
            self.gate.wait(10)
            return original(store, result)

        monkeypatch.setattr(ProjectStore, "read_frames", read_frames)

    @property
    def ids(self) -> list[str]:
        return [rid for _, rid in self.calls]

    @property
    def on_gui_thread(self) -> list[str]:
        return [rid for gui, rid in self.calls if gui]


@pytest.fixture
def synced(qtbot, long_board):
    project, store = long_board
    session = DocumentSession(project, store)
    player = PreviewPlayer()
    qtbot.addWidget(player)
    sync = PlayerSync(player)
    sync.set_session(session)
    wait_for_frames(qtbot, sync)
    yield session, player, sync
    sync.set_session(None)
    sync.loader.wait(5000)


def stored(session, result_ids) -> list[np.ndarray]:
    return [READ_FRAMES(session.store, session.project.results[r]) for r in result_ids]


def test_a_take_switch_decodes_nothing_on_the_gui_thread_and_the_frames_arrive_bit_exact(qtbot, synced, monkeypatch):
    session, player, sync = synced
    shot = session.project.shots[0]
    take1 = next(t for t in shot.takes if t.id != shot.active_take_id)
    kept = [player.store.frames(p) for p in range(EDITED)]  # chunks 0..29 show the same results in Take 1
    player.seek_chunk(45)
    reads = Reads(monkeypatch)
    reads.gate.clear()  # hold the worker: what the switch itself does is seen before any frame arrives

    session.set_preview_take(shot.id, take1.id)
    path = resolve_take(shot, take1.id)
    assert sync.shown_results() == path  # the timeline and the player's slots switch at once
    assert reads.on_gui_thread == []
    assert sync.loading() == list(range(EDITED, CHUNKS))  # Take 2's frames are gone: no stale picture
    assert player.store.frame_image(45 * 24).state == SlotState.LOADING

    reads.gate.set()
    wait_for_frames(qtbot, sync)
    assert reads.on_gui_thread == []
    assert sorted(reads.ids) == sorted(path[EDITED:])  # only the chunks that changed were decoded, once each
    assert reads.ids[:3] == [path[45], path[46], path[44]]  # the playhead's chunk first, then outwards
    assert all(player.store.frames(p) is kept[p] for p in range(EDITED))
    frames = [player.store.frames(p) for p in range(CHUNKS)]
    assert all(np.array_equal(a, b) for a, b in zip(frames, stored(session, path), strict=True))


def test_a_late_decode_for_a_take_no_longer_shown_is_dropped(qtbot, synced, monkeypatch):
    session, player, sync = synced
    shot = session.project.shots[0]
    take2, take1 = shot.active_take_id, next(t.id for t in shot.takes if t.id != shot.active_take_id)
    path1, path2 = resolve_take(shot, take1), resolve_take(shot, take2)
    player.seek_chunk(EDITED)
    reads = Reads(monkeypatch)
    reads.gate.clear()
    session.set_preview_take(shot.id, take1)  # A: the worker starts decoding Take 1's chunk 30 and is held there
    qtbot.waitUntil(lambda: reads.ids == [path1[EDITED]], timeout=5000)
    session.set_preview_take(shot.id, take2)  # B, before A's decode is delivered
    assert sync.shown_results() == path2 and sync.loading() == list(range(EDITED, CHUNKS))

    expected = dict(enumerate(stored(session, path2)))
    painted_wrong = []
    player.store.chunkChanged.connect(lambda p: painted_wrong.append(p) if player.store.frames(p) is not None
                                      and not np.array_equal(player.store.frames(p), expected[p]) else None)
    reads.gate.set()
    wait_for_frames(qtbot, sync)
    sync.loader.wait(5000)
    qtbot.wait(50)  # any queued delivery of Take 1's frames has landed by now
    assert reads.ids[0] == path1[EDITED] and set(reads.ids[1:]) == set(path2[EDITED:])  # A's decode did finish
    assert painted_wrong == []
    assert all(np.array_equal(player.store.frames(p), expected[p]) for p in range(CHUNKS))


def test_only_the_memory_budget_around_the_playhead_stays_decoded(qtbot, synced, monkeypatch):
    session, player, sync = synced
    chunk_bytes = 24 * 64 * 64 * 3
    monkeypatch.setattr(sync, "FRAME_BUDGET", 5 * chunk_bytes)
    player.seek_chunk(20)
    held = [p for p in range(CHUNKS) if player.store.state(p) == SlotState.FRAMES]
    assert held == [18, 19, 20, 21, 22]  # the playhead's chunk and its neighbours, ahead before behind
    reads = Reads(monkeypatch)
    player.seek_chunk(40)  # the playhead nears evicted chunks: they are decoded again, the old ones dropped
    qtbot.waitUntil(lambda: [p for p in range(CHUNKS) if player.store.state(p) == SlotState.FRAMES]
                    == [38, 39, 40, 41, 42], timeout=5000)
    assert reads.on_gui_thread == [] and reads.ids[0] == active_path(session.project.shots[0])[40]
    path = sync.shown_results()
    assert all(np.array_equal(player.store.frames(p), f) for p, f in zip(range(38, 43), stored(session, path[38:43])))


# Posters and unreadable results (the three-chunk editor of conftest: timeline, player and sync) ---------
def test_a_loading_chunk_shows_its_card_thumbnail_until_its_frames_arrive(qtbot, editor, monkeypatch):
    session, player, sync, timeline = editor.session, editor.player, editor.sync, editor.timeline
    thumbnails = [card.model.thumbnail for card in timeline.cards()]
    assert all(t is not None and not t.isNull() for t in thumbnails)
    reads = Reads(monkeypatch)
    reads.gate.clear()
    sync.set_session(session)  # as on opening the project: every chunk is decoded again, held here

    shown = player.view.shown_frame
    assert (shown.chunk, shown.state) == (0, SlotState.LOADING) and shown.poster is thumbnails[0]
    # Painted: the thumbnail (the chunk's middle frame), dimmed, not the text placeholder.
    thumbnail = thumbnails[0].toImage()
    source = QColor(thumbnail.pixel(thumbnail.width() // 2, thumbnail.height() // 4)).getRgb()[:3]
    picture = player.view.picture_rect()
    at = player.view.mapTo(player, picture.topLeft() + QPoint(picture.width() // 2, picture.height() * 3 // 8))
    painted = QColor(player.grab().toImage().pixel(at)).getRgb()[:3]
    veil = (13, 14, 17)
    assert all(abs(p - round(c * 115 / 255 + v * 140 / 255)) <= 6 for p, c, v in zip(painted, source, veil))

    reads.gate.set()
    wait_for_frames(qtbot, sync)
    assert player.view.shown_frame.state == SlotState.FRAMES and player.view.shown_frame.poster is None
    monkeypatch.setattr(sync, "FRAME_BUDGET", 1)  # one chunk kept: the others are dropped, with their poster
    player.seek_chunk(2)
    assert [player.store.frame_image(p * 24).poster for p in (0, 1)] == thumbnails[:2]


def damage(session, result_id: str) -> bytes:
    """Overwrite a result's strip of frames with bytes no decoder reads; returns the original bytes."""
    path = session.store.path / session.project.results[result_id].files["frames"]
    original = path.read_bytes()
    path.write_bytes(b"not a png")
    return original


def dropped_then_damaged(qtbot, editor, monkeypatch):
    """Chunk 1's frames dropped from memory (only the playhead's chunk stays decoded), then its file
    damaged. Returns its result id, the errors reported from now on, a Reads spy and a repair function."""
    session, player, sync = editor.session, editor.player, editor.sync
    result_id = sync.shown_results()[1]
    errors = []
    session.errorOccurred.connect(errors.append)
    monkeypatch.setattr(sync, "FRAME_BUDGET", 1)
    player.seek_chunk(2)
    player.seek_chunk(0)  # chunk 1's frames are dropped, to be read from the file when it is shown
    qtbot.waitUntil(lambda: player.store.state(0) == SlotState.FRAMES, timeout=5000)
    original = damage(session, result_id)
    frames_file = session.store.path / session.project.results[result_id].files["frames"]
    return result_id, errors, Reads(monkeypatch), lambda: frames_file.write_bytes(original)


def test_an_unreadable_result_is_read_again_once_each_time_the_user_asks_for_its_chunk(qtbot, editor, monkeypatch):
    session, player, sync = editor.session, editor.player, editor.sync
    chunk_1, errors, reads, repair = dropped_then_damaged(qtbot, editor, monkeypatch)

    def reads_of_chunk_1() -> int:
        return reads.ids.count(chunk_1)

    def settled() -> None:  # the decode asked for has landed, and any retry it would start has begun
        sync.loader.wait(5000)
        qtbot.wait(100)

    player.seek_chunk(1)  # the first look: the file does not decode, the clear message says so
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert "damaged" in str(errors[0]) and player.store.state(1) == SlotState.UNREADABLE  # not "not generated"
    assert player.view.shown_frame.state == SlotState.UNREADABLE
    settled()
    session.push(SetPrompt(editor.shot.id, editor.chunk_ids()[2], "a document change"))  # not a request
    settled()
    assert reads_of_chunk_1() == 1 and len(errors) == 1  # no retry loop

    player.seek_chunk(0)
    player.set_fps(240)
    player.play()  # playback passes through chunk 1: the clock never retries
    qtbot.waitUntil(lambda: not player.is_playing(), timeout=5000)
    settled()
    assert player.current_chunk == 2 and reads_of_chunk_1() == 1

    player.seek_chunk(1)  # asked for again, still damaged: one read, the message again, a hole
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
    settled()
    assert reads_of_chunk_1() == 2 and player.store.state(1) == SlotState.UNREADABLE

    repair()
    session.select(editor.shot.id, editor.chunk_ids()[0])
    session.select(editor.shot.id, editor.chunk_ids()[1])  # the user picks its card again: read once more
    qtbot.waitUntil(lambda: player.store.state(1) == SlotState.FRAMES, timeout=5000)
    settled()
    assert reads_of_chunk_1() == 3 and len(errors) == 2
    assert np.array_equal(player.store.frames(1), stored(session, [chunk_1])[0])


def test_clicking_the_hole_of_an_unreadable_chunk_reads_it_again(qtbot, editor, monkeypatch):
    session, player = editor.session, editor.player
    chunk_1, errors, reads, repair = dropped_then_damaged(qtbot, editor, monkeypatch)
    player.seek_chunk(1)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert player.view.shown_frame.state == SlotState.UNREADABLE and reads.ids.count(chunk_1) == 1

    repair()
    # The chunk is already under the playhead and selected: the click on its hole is the user's request.
    qtbot.mouseClick(player.view, Qt.MouseButton.LeftButton, pos=player.view.picture_rect().center())
    qtbot.waitUntil(lambda: player.store.state(1) == SlotState.FRAMES, timeout=5000)
    assert reads.ids.count(chunk_1) == 2 and len(errors) == 1
    assert np.array_equal(player.store.frames(1), stored(session, [chunk_1])[0])


def test_clicking_the_card_already_selected_reads_its_unreadable_chunk_again(qtbot, editor, monkeypatch):
    session, player = editor.session, editor.player
    chunk_1, errors, reads, repair = dropped_then_damaged(qtbot, editor, monkeypatch)
    session.select(editor.shot.id, editor.chunk_ids()[1])  # its card selected: the file does not decode
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert player.store.state(1) == SlotState.UNREADABLE and reads.ids.count(chunk_1) == 1

    repair()
    card = editor.timeline.card(editor.chunk_ids()[1])
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton, pos=card.rect().center())  # selected already
    qtbot.waitUntil(lambda: player.store.state(1) == SlotState.FRAMES, timeout=5000)
    assert reads.ids.count(chunk_1) == 2 and len(errors) == 1
    assert session.selected_chunk_id == editor.chunk_ids()[1]


def test_slots_near_playhead_keep_the_playheads_chunk_then_ahead_before_behind_within_the_budget():
    settings = ProjectSettings(width=16, height=16)
    chunk_bytes = CHUNK_FRAMES * 16 * 16 * 3
    shown = ["a", None, "b", "c", "d", "e"]
    kept, far = slots_near_playhead(shown, 3, settings, budget=3 * chunk_bytes)
    assert kept == [3, 4, 2] and far == [5, 0]  # slot 1 has nothing to decode
    kept, far = slots_near_playhead(shown, 0, settings, budget=1)  # a budget under one chunk keeps one
    assert kept == [0] and far == [2, 3, 4, 5]
