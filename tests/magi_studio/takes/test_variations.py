"""Generate Variations: N takes of a shot from a chunk on, each with new seeds, through the real generation
controller and the tiny model; the takes are siblings under the take they branch from, their seeds
differ, each comes back done when made active, and the menu action asks how many and queues them, behind a
run going on."""

from __future__ import annotations

import random

from magi_studio.controllers.generation import GenerationController
from magi_studio.document.commands import AddChunk, SetPrompt, new_chunk
from magi_studio.document.model import ChunkState, ProjectSettings, chunk_states, new_project
from magi_studio.document.store import ProjectStore
from magi_studio.document.take_commands import SetActiveTake
from magi_studio.takes import TakesView
from magi_studio.takes.variations import VariationRun
from magi_studio.document_session import DocumentSession


def _session(tmp_path) -> DocumentSession:
    project = new_project(ProjectSettings(model="tiny", width=64, height=64))
    session = DocumentSession(project, ProjectStore.create(tmp_path / "Film"))
    shot = project.shots[0]
    session.push(SetPrompt(shot.id, shot.chunks[0].id, "a red ball falls to the floor"))
    session.push(AddChunk(shot.id, new_chunk(project, shot.id, 1, "the blue square moves left")))
    return session


def test_three_variations_are_sibling_takes_with_distinct_seeds(qtbot, tmp_path, engine_worker,
                                                               pausing_session_factory):
    job = engine_worker.use_session(pausing_session_factory())
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    session = _session(tmp_path)
    controller = GenerationController(session, engine_worker)
    try:
        shot = session.project.shots[0]
        controller.generate_shot(shot.id)
        qtbot.waitUntil(lambda: not controller.is_generating(), timeout=30_000)
        first = shot.active_take_id
        runs, ended = VariationRun(controller, session), []
        runs.ended.connect(lambda made, outcome: ended.append((made, outcome)))
        runs.start(shot.id, 1, 3, rng=random.Random(4))
        assert runs.running and runs.progress_text() == "Variation 1 of 3"
        qtbot.waitUntil(lambda: bool(ended), timeout=60_000)
        assert ended == [(3, "finished")] and not runs.running
        assert shot.active_take_id == first  # none of them made active: the user picks one
        variations = [t for t in shot.takes if t.id != first]
        assert len(variations) == 3 and all(t.parent_id == first for t in variations)  # siblings
        assert all(t.first_chunk_id == shot.chunks[1].id for t in variations)
        seeds = {t.specs[shot.chunks[1].id].seed for t in variations}
        assert len(seeds) == 3 and shot.take(first).specs[shot.chunks[1].id].seed not in seeds
        results = {t.results[shot.chunks[1].id] for t in variations}
        assert len(results) == 3  # three different chunks were made
        for take in [first] + [t.id for t in variations]:  # each one comes back done
            session.push(SetActiveTake(shot.id, take))
            assert chunk_states(session.project, shot.id) == [ChunkState.DONE] * 2
    finally:
        controller.stop(timeout_ms=5000)


def test_the_menu_action_asks_how_many_and_queues_them_behind_a_run_going_on(qtbot, tmp_path, engine_worker,
                                                                           pausing_session_factory):
    engine = pausing_session_factory(lambda event: True)  # holds the engine on its first event
    job = engine_worker.use_session(engine)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    session = _session(tmp_path)
    controller = GenerationController(session, engine_worker)
    view = TakesView()
    qtbot.addWidget(view)
    try:
        view.set_session(session)
        view.set_generation(controller)
        shot = session.project.shots[0]
        session.select(shot.id, shot.chunks[0].id)
        asked = []
        view.ask_variation_count = lambda name, index: asked.append((name, index)) or None
        assert not view.generate_variations() and asked == [("Shot 1", 0)]  # cancelled: nothing starts
        assert not controller.is_generating()
        controller.generate_shot(shot.id)
        ended = []
        view.variations.ended.connect(lambda made, outcome: ended.append((made, outcome)))
        view.ask_variation_count = lambda name, index: 2
        assert view.generate_variations()
        assert [item.text() for item in controller.queue()] == [
            "Shot 1 · generating", "Shot 1 · variation 1 of 2 · from chunk 1",
            "Shot 1 · variation 2 of 2 · from chunk 1"]
        assert view.variations.running and view.variations.progress_text() == "waiting in the queue"
        controller.cancel()  # the run stops: so do the variations, none made
        engine.resume()
        qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
        assert ended == [(0, "cancelled")] and not view.variations.running
    finally:
        engine.resume()
        controller.stop(timeout_ms=5000)
        view.set_session(None)
