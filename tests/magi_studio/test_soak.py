"""A short seeded GUI soak of the real main window (tests/magi_studio/soak.py; the long run is
benchmarks/gui_soak.py): random legal actions on the tiny model, the document checked after each."""

from __future__ import annotations


import pytest
from PySide6.QtCore import QTimer

from magi_studio.document.model import Take
from tests.magi_studio.soak import Soak

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
    assert {"type prompt", "add chunk", "delete chunk", "generate", "undo", "save"} <= done, done
    assert sum(report.runs.values()) >= 1 and report.chunks_committed >= 1, (report.runs, report.chunks_committed)


def test_a_broken_document_or_a_raising_slot_is_reported_with_the_step_that_showed_it(soak_studio, tmp_path):
    soak = Soak(soak_studio, seed=1, folder=tmp_path / "soak")
    soak.actions = [("break the takes", 1, lambda: soak_studio.session.project.shots[0].takes.append(
        Take("t1", "Take 1", parent_id="gone")))]
    soak.run(actions=1)
    assert [p.step for p in soak.report.violations] and all(p.action == "break the takes" for p in soak.report.violations)
    assert any("'gone'" in p.text for p in soak.report.violations), soak.report.describe()
    soak_studio.session.project.shots[0].takes.clear()

    # The functor QTimer.singleShot calls: the driver runs its steps inside an event loop (Soak.run says why).
    soak.actions = [("raise in a slot", 1, lambda: QTimer.singleShot(0, lambda: 1 / 0))]
    report = soak.run(actions=2)
    assert len(report.exceptions) == 1 and "ZeroDivisionError" in report.exceptions[0].text
    assert report.exceptions[0].step == 2 and report.exceptions[0].action == "raise in a slot"
