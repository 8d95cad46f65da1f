"""PlayerSync decodes frames off the GUI thread: a take switch on a long storyboard returns at once with the
chunks loading, the frames then arrive bit-exact (the chunk under the playhead first), a late decode for a
take no longer shown is dropped, frames held for results still shown are not decoded again, and only the
memory budget's worth of chunks around the playhead stays decoded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from magi_studio.document.commands import AddChunk, SetPrompt, new_chunk
from magi_studio.document.model import ProjectSettings, active_path, new_project, resolve_take
from magi_studio.document.observer import Document, UndoHistory
from magi_studio.document.store import ProjectStore
from magi_studio.player import ChunkState, PreviewPlayer
from magi_studio.timeline import PlayerSync
from magi_studio.undo import DocumentSession
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
    assert player.store.frame_image(45 * 24).state == ChunkState.LOADING

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
    held = [p for p in range(CHUNKS) if player.store.state(p) == ChunkState.FRAMES]
    assert held == [18, 19, 20, 21, 22]  # the playhead's chunk and its neighbours, ahead before behind
    reads = Reads(monkeypatch)
    player.seek_chunk(40)  # the playhead nears evicted chunks: they are decoded again, the old ones dropped
    qtbot.waitUntil(lambda: [p for p in range(CHUNKS) if player.store.state(p) == ChunkState.FRAMES]
                    == [38, 39, 40, 41, 42], timeout=5000)
    assert reads.on_gui_thread == [] and reads.ids[0] == active_path(session.project.shots[0])[40]
    path = sync.shown_results()
    assert all(np.array_equal(player.store.frames(p), f) for p, f in zip(range(38, 43), stored(session, path[38:43])))
