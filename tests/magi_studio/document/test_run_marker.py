"""The run marker: written whole, read back, never through a link or from a FIFO, and progress counted from the
project itself."""

from __future__ import annotations

import os

import pytest

from magi_engine.errors import EngineError
from magi_studio.document.run_marker import RUN_MARKER, clear_run_marker, read_run_marker, write_run_marker
from tests.magi_studio.document.fakes import rich_project


def test_a_marker_round_trips_and_counts_what_the_project_has_done(tmp_path):
    project, store = rich_project(tmp_path)  # shots 1 and 2 generated, shot 3 not
    first, third = project.shots[0], project.shots[2]
    chunks = [(first.id, c.id) for c in first.chunks[2:]] + [(third.id, c.id) for c in third.chunks]
    write_run_marker(store.path, chunks)
    marker = read_run_marker(store.path)
    assert marker.chunks == tuple(chunks) and marker.shot_ids() == [first.id, third.id] and not marker.is_live()
    assert marker.progress(project) == (2, 4)
    clear_run_marker(store.path)
    assert read_run_marker(store.path) is None and not (store.path / RUN_MARKER).exists()


def test_a_marker_is_never_written_through_a_link_nor_read_from_a_fifo_or_a_link(tmp_path):
    folder, victim = tmp_path / "Film.magi", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_text("keep me")
    (folder / f"{RUN_MARKER}.tmp").symlink_to(victim)
    write_run_marker(folder, [("s", "c")])
    assert victim.read_text() == "keep me" and read_run_marker(folder).chunks == (("s", "c"),)
    (folder / RUN_MARKER).unlink()
    (folder / RUN_MARKER).symlink_to(victim)
    with pytest.raises(EngineError):
        write_run_marker(folder, [("s", "c")])
    assert read_run_marker(folder) is None and victim.read_text() == "keep me"
    clear_run_marker(folder)
    assert (folder / RUN_MARKER).is_symlink() and victim.exists()  # a link is not ours to remove
    (folder / RUN_MARKER).unlink()
    os.mkfifo(folder / RUN_MARKER)  # no writer: a plain read would block
    assert read_run_marker(folder) is None
    (folder / RUN_MARKER).unlink()
    (folder / RUN_MARKER).write_text('{"format": "magi-studio-run", "chunks": [[1]]}')
    assert read_run_marker(folder) is None
