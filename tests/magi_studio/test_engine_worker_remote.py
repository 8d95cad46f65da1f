"""EngineWorker on a remote engine: connect_remote is a load job, generations stream the server's events through
the worker's one signal exactly as with a local session, cancel reaches the server, a refusal keeps the model."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from magi_engine.errors import RemoteError
from magi_engine.events import Cancelled, ChunkFinished, Failed, Finished
from magi_engine.remote.client import RemoteSession
from magi_engine.remote.server import ServerThread
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from magi_studio.engine_worker import EngineState, EngineWorker, ModelLoaded, is_final
from tests.engine.factories import tiny_bundle

TOKEN = "worker-test-token-0123456789"


@pytest.fixture(scope="module")
def server():
    running = ServerThread(GenerationSession(tiny_bundle()), TOKEN)
    yield running
    running.stop()


@pytest.fixture
def worker(qtbot):
    engine = EngineWorker()
    yield engine
    engine.shutdown()


def record(worker):
    events = []
    worker.event.connect(lambda job, event: events.append((job, event)))
    return events


def ended(events, job):
    return any(j == job and is_final(e) for j, e in events)


def request(n: int) -> GenerationRequest:
    return GenerationRequest(chunks=tuple(ChunkSpec("a red ball falls", seed=10 + i) for i in range(n)), width=64,
                             height=64)


def test_the_worker_drives_a_remote_engine_like_a_local_one(qtbot, worker, server):
    events = record(worker)
    job = worker.connect_remote(server.url, TOKEN)
    qtbot.waitUntil(lambda: ended(events, job), timeout=10_000)
    (loaded,) = [e for j, e in events if j == job and isinstance(e, ModelLoaded)]
    assert worker.state == EngineState.READY
    assert loaded.info.label == "Tiny test model" and loaded.info.device == f"cpu at {server.url}"
    assert loaded.info.dtype == "float32" and (loaded.info.width, loaded.info.height) == (64, 64)

    job = worker.generate(request(2))
    qtbot.waitUntil(lambda: ended(events, job), timeout=10_000)
    theirs = {e.chunk: e for j, e in events if j == job and isinstance(e, ChunkFinished)}
    ours = {e.chunk: e for e in GenerationSession(tiny_bundle()).generate(request(2)) if isinstance(e, ChunkFinished)}
    assert sorted(theirs) == [0, 1] and isinstance(events[-1][1], Finished)
    assert all(torch.equal(theirs[c].latent, ours[c].latent) and np.array_equal(theirs[c].frames, ours[c].frames)
               for c in ours)


class HoldAfterEachChunk(GenerationSession):
    """The real engine, waiting after each finished chunk until the run is cancelled (a deterministic cancel)."""

    def generate(self, request, cancel=None):
        for event in super().generate(request, cancel):
            yield event
            if isinstance(event, ChunkFinished):
                cancel._event.wait(10)


def test_cancel_reaches_the_server_and_keeps_finished_chunks(qtbot, worker):
    server = ServerThread(HoldAfterEachChunk(tiny_bundle()), TOKEN)
    try:
        events = record(worker)
        worker.connect_remote(server.url, TOKEN)
        qtbot.waitUntil(lambda: worker.state == EngineState.READY, timeout=10_000)
        job = worker.generate(request(4))
        qtbot.waitUntil(lambda: any(j == job and isinstance(e, ChunkFinished) for j, e in events), timeout=10_000)
        worker.cancel(job)
        qtbot.waitUntil(lambda: ended(events, job), timeout=10_000)
        final = [e for j, e in events if j == job][-1]
        assert isinstance(final, Cancelled) and final.finished_chunks == (0,)
        qtbot.waitUntil(lambda: server.call(lambda: server.server._running is None), timeout=10_000)
    finally:
        server.stop()


def test_a_refused_connection_is_a_failed_load_and_nothing_else_changes(qtbot, worker, server):
    events = record(worker)
    job = worker.connect_remote(server.url, "wrong-token-0123456789")
    qtbot.waitUntil(lambda: ended(events, job), timeout=10_000)
    failed = events[-1][1]
    assert isinstance(failed, Failed) and isinstance(failed.error, RemoteError) and "token" in str(failed.error)
    assert worker.model_info is None and worker.state == EngineState.NO_MODEL


class HeldAtStart(GenerationSession):
    """The real engine, each run held after its first event until the test opens the gate."""

    def __init__(self, bundle) -> None:
        super().__init__(bundle)
        self.gate = threading.Event()

    def generate(self, request, cancel=None):
        events = super().generate(request, cancel)
        yield next(events)
        self.gate.wait(30)
        yield from events


def test_the_status_bar_says_how_many_runs_are_ahead_on_a_busy_server(qtbot, worker):
    from magi_studio.widgets.engine_status import EngineStatus
    from magi_studio.widgets.job_progress import JobProgress

    session = HeldAtStart(tiny_bundle())
    server = ServerThread(session, TOKEN)
    other = RemoteSession.connect(server.url, token=TOKEN)
    try:
        status, progress = EngineStatus(worker), JobProgress(worker)
        qtbot.addWidget(status)
        qtbot.addWidget(progress)
        worker.connect_remote(server.url, TOKEN)
        qtbot.waitUntil(lambda: worker.state == EngineState.READY, timeout=10_000)
        assert status.text().endswith(f"Tiny test model · cpu at {server.url} · 64×64 · ready")
        busy = other.generate(request(1))  # another client's run holds the server
        next(busy)
        events = record(worker)
        job = worker.generate(request(1))
        qtbot.waitUntil(lambda: "Waiting" in status.text(), timeout=10_000)
        assert status.text().endswith(f"Waiting · 1 run ahead on {server.url}")
        # The progress panel says where the run stands instead of a bar that does not move.
        assert progress.text().startswith("Waiting for the server: 2nd in its queue · ")
        assert progress.bar.maximum() == 0  # busy, no fraction
        session.gate.set()
        list(busy)
        qtbot.waitUntil(lambda: ended(events, job) or "step" in progress.text(), timeout=10_000)
        assert "Waiting" not in progress.text()
        qtbot.waitUntil(lambda: ended(events, job), timeout=10_000)
        assert isinstance(events[-1][1], Finished) and "Waiting" not in status.text()
    finally:
        session.gate.set()
        other.close()
        server.stop()


def test_the_place_in_the_server_s_queue_is_an_ordinal():
    from magi_studio.widgets.job_progress import waiting_text

    assert [waiting_text(n).split(": ")[1] for n in (0, 1, 2, 3, 10, 11, 12, 20, 21, 100)] == [
        "1st in its queue", "2nd in its queue", "3rd in its queue", "4th in its queue", "11th in its queue",
        "12th in its queue", "13th in its queue", "21st in its queue", "22nd in its queue", "101st in its queue"]
