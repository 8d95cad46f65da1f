"""A short seeded GUI soak of the real main window (tests/magi_studio/soak.py; the long run is
benchmarks/gui_soak.py): random legal actions on the tiny model, the document checked after each."""

from __future__ import annotations

import pytest

from magi_studio.document.model import Take
from tests.magi_studio.soak import Soak, document_violations

ACTIONS = 220


@pytest.fixture
def soak_studio(make_studio, engine_worker, tiny_session, isolated_settings, qtbot):
    isolated_settings.model, isolated_settings.width, isolated_settings.height = "tiny", 64, 64
    job = engine_worker.use_session(tiny_session)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=10_000)
    return make_studio(worker=engine_worker)


def test_a_seeded_soak_of_the_main_window_finds_no_exception_and_no_broken_invariant(soak_studio, tmp_path):
    soak = Soak(soak_studio, seed=20261206, folder=tmp_path / "soak")
    report = soak.run(actions=ACTIONS)
    assert report.clean(), report.describe()
    assert report.actions == ACTIONS
    # The run reached the interesting places: edits, generation, takes, history, files.
    done = {name for name, count in report.counts.items() if count}
    assert {"type prompt", "add chunk", "delete chunk", "generate", "undo", "save", "reopen"} <= done, done
    assert report.runs_finished >= 1


def test_the_soak_checks_catch_a_dangling_take_parent_and_active_take(soak_studio):
    project = soak_studio.session.project
    assert document_violations(project) == []
    shot = project.shots[0]
    shot.takes.append(Take("t1", "Take 1", parent_id="gone"))
    shot.active_take_id = "also-gone"
    found = document_violations(project)
    assert any("parent gone does not exist" in text for text in found), found
    assert any("active take also-gone does not exist" in text for text in found), found
    shot.takes.clear()
    shot.active_take_id = None
