"""A project opened with a damaged result: its card says so, the player shows a hole, nothing else changes."""

from __future__ import annotations

import pytest

from magi_studio.document.store import ProjectStore, open_project
from magi_studio.player.frame_store import SlotState
from magi_studio.timeline.style import STATE_TEXT
from tests.magi_studio.timeline.helpers import wait_for_frames


@pytest.fixture
def storyboard(tmp_path, storyboard):
    """The three-chunk storyboard saved, chunk 2's frames file emptied, and opened again from disk."""
    project, store = storyboard
    store.save(project)
    (store.path / project.results[project.shots[0].takes[0].results[project.shots[0].chunks[1].id]]
     .files["frames"]).write_bytes(b"")
    return open_project(store.path)


def test_a_damaged_chunk_shows_its_badge_and_a_hole_and_the_others_play(editor):
    project = editor.project
    damaged = project.shots[0].takes[0].results[project.shots[0].chunks[1].id]
    assert list(project.damaged) == [damaged]
    assert editor.timeline.cards()[1].chunk_id == project.shots[0].chunks[1].id
    cards = editor.timeline.cards()
    assert [c.badge.text() for c in cards] == [STATE_TEXT["done"], STATE_TEXT["damaged"], STATE_TEXT["done"]]
    assert "missing or unreadable" in cards[1].badge.toolTip()
    assert [c.regenerate.isHidden() for c in cards] == [True, False, True]  # the damaged one offers to regenerate
    assert cards[1].regenerate.text() == "Regenerate" and "missing or unreadable" in cards[1].regenerate.toolTip()
    assert "1 damaged" in editor.timeline.summary.text()
    assert [editor.player.store.state(p) for p in range(3)] == [SlotState.FRAMES, SlotState.UNREADABLE,
                                                               SlotState.FRAMES]


def test_a_damaged_result_is_never_read_so_no_error_is_reported_for_it(qtbot, editor, monkeypatch):
    session, player, sync = editor.session, editor.player, editor.sync
    damaged = next(iter(editor.project.damaged))
    reads, errors = [], []
    original = ProjectStore.read_frames
    monkeypatch.setattr(ProjectStore, "read_frames", lambda store, result: (reads.append(result.id),
                                                                           original(store, result))[1])
    session.errorOccurred.connect(errors.append)
    sync.set_session(None)
    sync.set_session(session)  # opened again: every chunk is shown, the damaged one as a hole
    wait_for_frames(qtbot, sync)
    player.seek_chunk(1)  # the user asks for it three ways: a seek, its card, its hole
    session.select(editor.shot.id, editor.chunk_ids()[0])
    session.select(editor.shot.id, editor.chunk_ids()[1])
    player.view.retryRequested.emit(1)
    sync.loader.wait(5000)  # the requests above asked the loader synchronously: their decodes have run
    assert damaged not in reads and set(reads) == set(sync.shown_results()) - {None} and errors == []
    assert player.store.state(1) == SlotState.UNREADABLE and sync.shown_results()[1] is None
