"""The studio's generation controller on a remote engine: a shot generated and then regenerated from chunk 2
(a second take) gives, chunk for chunk, the latents and frames the same project gets from the local engine."""

from __future__ import annotations

import random

import numpy as np
import torch

from magi_engine.remote.server import ServerThread
from magi_engine.session import GenerationSession
from magi_studio.controllers.generation import GenerationController
from magi_studio.document.model import active_path, resolve_take
from tests.engine.factories import tiny_bundle
from tests.magi_studio.controllers.test_generation import make_session

TOKEN = "controller-test-token-0123456789"


def generate_and_regenerate(qtbot, worker, folder):
    """Generate a 3-chunk shot, regenerate it from chunk 2; (first take's chunks, second take's), as arrays."""
    session = make_session(folder, chunks=3)
    controller = GenerationController(session, worker)
    controller.seed_source = random.Random(7)  # the re-rolled seeds are the same in both runs
    ends, errors = [], []
    controller.runEnded.connect(ends.append)
    controller.errorReported.connect(errors.append)
    shot = session.project.shots[0]
    try:
        controller.generate_shot(shot.id)
        qtbot.waitUntil(lambda: len(ends) == 1, timeout=20_000)
        first_take = shot.active_take_id
        controller.regenerate_from(shot.id, 1)
        qtbot.waitUntil(lambda: len(ends) == 2, timeout=20_000)
    finally:
        controller.stop(timeout_ms=5000)
    assert ends == ["finished", "finished"] and not errors
    project, store = session.project, session.store

    def chunks(path):
        return [(store.read_latent(project.results[r]), store.read_frames(project.results[r])) for r in path]

    return chunks(resolve_take(shot, first_take)), chunks(active_path(shot))


def test_a_shot_and_its_regeneration_from_chunk_2_equal_the_local_engine_s(qtbot, engine_worker, tiny_session,
                                                                         tmp_path):
    job = engine_worker.use_session(tiny_session)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    local = generate_and_regenerate(qtbot, engine_worker, tmp_path / "local")
    server = ServerThread(GenerationSession(tiny_bundle()), TOKEN, spec="tiny")
    try:
        job = engine_worker.connect_remote(server.url, TOKEN)
        qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=10_000)
        assert engine_worker.model_info.remote == server.url
        remote = generate_and_regenerate(qtbot, engine_worker, tmp_path / "remote")
    finally:
        server.stop()
    for local_take, remote_take in zip(local, remote):
        assert len(local_take) == len(remote_take) == 3
        for (latent, frames), (their_latent, their_frames) in zip(local_take, remote_take):
            assert torch.equal(latent, their_latent) and np.array_equal(frames, their_frames)
    assert torch.equal(local[0][0][0], local[1][0][0])  # chunk 1 is shared by both takes
