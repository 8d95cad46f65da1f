"""The run's state machine (every move of the TRANSITIONS table allowed, every other one refused), the ETA
that settles, and the progress text of each phase."""

from __future__ import annotations

import itertools

import pytest

from magi_studio.controllers.run_state import (TRANSITIONS, GenerationProgress, IllegalTransition, RunPhase,
                                               StepTimer)

P = RunPhase
ALLOWED = {(P.IDLE, P.LOADING), (P.IDLE, P.PLANNING),
           (P.LOADING, P.LOADING), (P.LOADING, P.PLANNING), (P.LOADING, P.PAUSED), (P.LOADING, P.IDLE),
           (P.PLANNING, P.PLANNING), (P.PLANNING, P.RUNNING), (P.PLANNING, P.PAUSED), (P.PLANNING, P.IDLE),
           (P.RUNNING, P.DRAINING),
           (P.DRAINING, P.LOADING), (P.DRAINING, P.PLANNING), (P.DRAINING, P.PAUSED), (P.DRAINING, P.IDLE),
           (P.PAUSED, P.LOADING), (P.PAUSED, P.PLANNING), (P.PAUSED, P.IDLE)}


@pytest.mark.parametrize("source,target", sorted(itertools.product(RunPhase, RunPhase)))
def test_each_transition_is_allowed_exactly_when_the_table_lists_it(source, target):
    if (source, target) in ALLOWED:
        assert source.advance(target) is target
    else:
        with pytest.raises(IllegalTransition, match=f"from {source.value} to {target.value}"):
            source.advance(target)


def test_the_table_has_every_phase_and_a_run_can_always_get_back_to_idle():
    assert set(TRANSITIONS) == set(RunPhase)
    for phase in RunPhase:
        reachable, frontier = {phase}, [phase]
        while frontier:
            for target in TRANSITIONS[frontier.pop()]:
                if target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        assert P.IDLE in reachable or phase is P.IDLE


def test_the_eta_appears_after_two_timed_steps_and_counts_down_through_small_wobbles():
    timer = StepTimer()
    timer.step(1, 1.0)
    assert timer.eta(100, now_s=1.0) is None  # nothing timed yet
    timer.step(2, 2.0)
    assert timer.eta(99, now_s=2.0) is None  # one sample is not an estimate
    etas, engine_s = [], 2.0
    for step, wobble in enumerate((1.1, 0.9, 1.05, 0.95, 1.1, 0.9, 1.0, 1.0), start=3):
        engine_s += wobble
        timer.step(step, engine_s)
        etas.append(timer.eta(100 - step, now_s=engine_s))
    assert etas[0] is not None and all(later <= earlier for earlier, later in zip(etas, etas[1:])), etas
    assert etas[-1] == pytest.approx(92, rel=0.15)
    timer.step(11, engine_s + 5.0)  # a step five times slower: the estimate does go up
    timer.step(12, engine_s + 10.0)
    assert timer.eta(88, now_s=engine_s + 10.0) > etas[-1] * 1.15


def test_each_phase_says_what_is_happening_from_the_first_second():
    base = dict(shot_name="Shot 1", chunk=1, chunks=4, step=0, steps=0, elapsed_s=1.0, eta_s=None)
    assert GenerationProgress(**base, phase=P.LOADING, model="studio-mini").text() == (
        "Loading model studio-mini… · 0:01")
    assert GenerationProgress(**base, phase=P.PLANNING).text() == "Planning Shot 1 · 0:01"
    assert GenerationProgress(**base, phase=P.RUNNING, shot_chunk=3).text() == (
        "Shot 1 · chunk 3 (1 of 4 in this run) · starting · 0:01")
    running = GenerationProgress(**{**base, "eta_s": 100.0}, phase=P.RUNNING, shot_chunk=3, chunk_step=5,
                                 chunk_steps=32)
    assert running.text() == "Shot 1 · chunk 3 (1 of 4 in this run) · step 5/32 · 0:01 · about 1:40 left"
    assert running.fraction == pytest.approx(5 / 32 / 4)
    assert "saving finished chunks" in GenerationProgress(**base, phase=P.DRAINING).text()
    assert GenerationProgress(**{**base, "chunk": 2}, phase=P.PAUSED).text() == "Paused · 3 chunks to go · 0:01"
    assert GenerationProgress(**base, phase=P.RUNNING, pausing=True).text() == "Pausing after this step… · 0:01"
