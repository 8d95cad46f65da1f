"""EngineWorker: the tiny real model generating in the engine thread, events re-emitted as GUI-thread
signals, chunks streamed before the run ends, cancel within one step, superseding, typed failures,
and a shutdown that leaves no thread or session behind."""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
import shiboken6

from magi_engine.bundle import save_native_bundle
from magi_engine.config import GuidanceConfig
from magi_engine.errors import CheckpointError, ConfigError, DownloadError, EngineError
from magi_engine.events import (Cancelled, ChunkFinished, ChunkStarted, Failed, Finished, GenerationStarted,
                           StepProgress)
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from magi_studio.engine_worker import (EngineState, EngineWorker, JobStarted, LoadProgress, ModelInfo, ModelLoaded,
                                      is_final)
from tests.engine.factories import tiny_bundle

PROMPTS = ("a red ball falls", "the blue square moves left", "a green triangle grows")
#: Each event type by a short name, and what a test reads of it (the event itself unless said).
NAMES = {JobStarted: ("jobStarted", lambda e: e.kind), LoadProgress: ("loadProgress", None),
         ModelLoaded: ("modelLoaded", lambda e: e.info), GenerationStarted: ("generationStarted", None),
         ChunkStarted: ("chunkStarted", None), StepProgress: ("stepProgress", None),
         ChunkFinished: ("chunkFinished", None), Finished: ("finished", None), Cancelled: ("cancelled", None),
         Failed: ("failed", lambda e: e.error)}


def request(n: int = 3, **kwargs) -> GenerationRequest:
    return GenerationRequest(chunks=tuple(ChunkSpec(PROMPTS[i % 3], seed=10 + i) for i in range(n)),
                             width=64, height=64, **kwargs)


class Recorder:
    """Every event of the worker's one signal as (name, (job, payload)), checking each arrives on the GUI thread;
    a job's final event is followed by ("jobEnded", (job,))."""

    def __init__(self, worker: EngineWorker) -> None:
        self.events: list[tuple[str, tuple]] = []
        self.wrong_thread: list[str] = []
        gui = threading.get_ident()

        def record(job: int, event) -> None:
            name, read = NAMES[type(event)]
            if threading.get_ident() != gui:
                self.wrong_thread.append(name)
            self.events.append((name, (job, read(event) if read else event)))
            if is_final(event):
                assert job not in worker.live_jobs  # gone once its last event is out
                self.events.append(("jobEnded", (job,)))
        worker.event.connect(record)

    def names(self, job: int | None = None) -> list[str]:
        return [n for n, a in self.events if job is None or (a and a[0] == job)]

    def of(self, name: str, job: int | None = None) -> list[tuple]:
        return [a for n, a in self.events if n == name and (job is None or a[0] == job)]

    def ended(self, job: int) -> bool:
        return any(n == "jobEnded" and a[0] == job for n, a in self.events)


def ready_worker(qtbot, worker: EngineWorker, session) -> Recorder:
    recorder = Recorder(worker)
    job = worker.use_session(session)
    qtbot.waitUntil(lambda: recorder.ended(job), timeout=5000)
    assert worker.state == EngineState.READY
    return recorder


def test_generation_runs_in_the_engine_thread_and_every_event_reaches_the_gui_thread(
        qtbot, engine_worker, pausing_session_factory):
    session = pausing_session_factory()
    recorder = ready_worker(qtbot, engine_worker, session)
    info = recorder.of("modelLoaded")[0][1]
    assert isinstance(info, ModelInfo) and (info.width, info.height, info.fps) == (64, 64, 24)

    job = engine_worker.generate(request(3))
    qtbot.waitUntil(lambda: recorder.ended(job), timeout=10_000)

    assert session.thread_ids and session.thread_ids[0] != threading.get_ident()  # not the GUI thread
    assert not recorder.wrong_thread
    names = recorder.names(job)
    assert names[:2] == ["jobStarted", "generationStarted"] and names[-2:] == ["finished", "jobEnded"]
    finished = [a[1] for a in recorder.of("chunkFinished", job)]
    assert [e.chunk for e in finished] == [0, 1, 2]
    assert finished[0].frames.shape == (24, 64, 64, 3) and finished[0].frames.dtype == np.uint8
    assert tuple(finished[0].latent.shape) == (16, 6, 8, 8)
    # Chunk 0 arrives while denoising steps of later chunks are still coming.
    assert names.index("chunkFinished") < len(names) - 1 - names[::-1].index("stepProgress")
    steps = [a[1] for a in recorder.of("stepProgress", job)]
    assert steps[0].previews and steps[-1].step == steps[-1].total_steps
    assert isinstance(recorder.of("finished", job)[0][1], Finished)
    assert engine_worker.state == EngineState.READY and engine_worker.live_jobs == ()


def test_a_finished_chunk_reaches_the_gui_while_the_run_is_still_going(qtbot, engine_worker, pausing_session_factory):
    session = pausing_session_factory(pause_when=lambda e: isinstance(e, ChunkFinished))
    recorder = ready_worker(qtbot, engine_worker, session)
    job = engine_worker.generate(request(3))
    qtbot.waitUntil(lambda: bool(recorder.of("chunkFinished", job)), timeout=10_000)
    # The engine is held right after chunk 0: the GUI has the frames and the run is not over. The engine
    # thread holds once it asks for the next event, which can come after the GUI has the chunk.
    qtbot.waitUntil(session.paused.is_set, timeout=10_000)
    assert engine_worker.state == EngineState.GENERATING and job in engine_worker.live_jobs
    assert not recorder.of("finished", job)
    session.resume()
    qtbot.waitUntil(lambda: recorder.ended(job), timeout=10_000)
    assert [a[1].chunk for a in recorder.of("chunkFinished", job)] == [0, 1, 2]


def test_cancel_stops_within_one_step_and_keeps_finished_chunks(qtbot, engine_worker, pausing_session_factory):
    session = pausing_session_factory(pause_when=lambda e: isinstance(e, ChunkFinished))
    recorder = ready_worker(qtbot, engine_worker, session)
    job = engine_worker.generate(request(4))
    qtbot.waitUntil(lambda: bool(recorder.of("chunkFinished", job)), timeout=10_000)
    engine_worker.cancel(job)
    steps_before = len(recorder.of("stepProgress", job))
    session.resume()
    qtbot.waitUntil(lambda: recorder.ended(job), timeout=10_000)

    assert session.after_cancel.count("StepProgress") <= 1 and session.after_cancel[-1] == "Cancelled"
    assert len(recorder.of("stepProgress", job)) - steps_before <= 1
    cancelled = recorder.of("cancelled", job)[0][1]
    assert isinstance(cancelled, Cancelled) and cancelled.finished_chunks == (0,)
    assert [a[1].chunk for a in recorder.of("chunkFinished", job)] == [0]  # kept, nothing after the cancel
    assert not recorder.of("failed", job) and not recorder.of("finished", job)
    assert engine_worker.state == EngineState.READY


def test_cancel_from_the_gui_while_the_engine_runs_freely(qtbot, engine_worker, pausing_session_factory):
    session = pausing_session_factory()
    recorder = ready_worker(qtbot, engine_worker, session)
    job = engine_worker.generate(request(24, sampling=dataclasses.replace(tiny_bundle().sampling, window=1)))
    engine_worker.event.connect(lambda j, e: isinstance(e, ChunkFinished) and engine_worker.cancel(j))
    qtbot.waitUntil(lambda: recorder.ended(job), timeout=30_000)
    outcome = recorder.of("cancelled", job) or recorder.of("finished", job)
    assert outcome and isinstance(outcome[0][1], Cancelled), "24 chunks finished before a queued cancel arrived"
    delivered = [a[1].chunk for a in recorder.of("chunkFinished", job)]
    assert list(outcome[0][1].finished_chunks) == delivered == list(range(len(delivered)))
    assert session.after_cancel.count("StepProgress") <= 1


def test_a_newer_generation_supersedes_the_running_and_the_queued_ones(qtbot, engine_worker,
                                                                        pausing_session_factory):
    session = pausing_session_factory(pause_when=lambda e: isinstance(e, ChunkFinished))
    recorder = ready_worker(qtbot, engine_worker, session)
    first = engine_worker.generate(request(3))
    qtbot.waitUntil(lambda: session.paused.is_set(), timeout=10_000)
    second = engine_worker.generate(request(2))   # queued behind the paused run, superseded by the third
    third = engine_worker.generate(request(2))
    session.resume()
    qtbot.waitUntil(lambda: recorder.ended(third), timeout=10_000)

    assert recorder.of("cancelled", first)[0][1].finished_chunks == (0,)
    assert recorder.names(second) == ["jobStarted", "cancelled", "jobEnded"]  # never ran
    assert [a[1].chunk for a in recorder.of("chunkFinished", third)] == [0, 1]
    assert recorder.of("finished", third)
    order = recorder.names()
    first_end = [i for i, (n, a) in enumerate(recorder.events) if n == "jobEnded" and a[0] == first][0]
    third_start = [i for i, (n, a) in enumerate(recorder.events) if n == "jobStarted" and a[0] == third][0]
    assert first_end < third_start, order


def test_engine_errors_arrive_typed_through_the_one_failed_signal(qtbot, engine_worker, tiny_session, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))  # never a real cached MAGI-1
    recorder = Recorder(engine_worker)
    no_model = engine_worker.generate(request(1))
    qtbot.waitUntil(lambda: recorder.ended(no_model), timeout=5000)
    assert isinstance(recorder.of("failed", no_model)[0][1], EngineError)

    missing = engine_worker.load_model(str(tmp_path / "no-such-model"))
    qtbot.waitUntil(lambda: recorder.ended(missing), timeout=5000)
    error = recorder.of("failed", missing)[0][1]
    assert isinstance(error, CheckpointError) and error.title == "Checkpoint problem"

    offline = engine_worker.load_model("4.5B_distill")
    qtbot.waitUntil(lambda: recorder.ended(offline), timeout=20_000)
    assert isinstance(recorder.of("failed", offline)[0][1], DownloadError)

    loaded = engine_worker.use_session(tiny_session)
    qtbot.waitUntil(lambda: recorder.ended(loaded), timeout=5000)
    wrong = request(1, sampling=dataclasses.replace(tiny_session.default_sampling,
                                                     guidance=GuidanceConfig(mode="cfg3")))
    bad = engine_worker.generate(wrong)
    qtbot.waitUntil(lambda: recorder.ended(bad), timeout=5000)
    error = recorder.of("failed", bad)[0][1]
    assert isinstance(error, ConfigError) and "guidance" in str(error)
    assert recorder.names(bad) == ["jobStarted", "failed", "jobEnded"]


def test_an_unexpected_exception_becomes_an_engine_error(qtbot, engine_worker, tiny_session):
    class Broken:
        bundle, device = tiny_session.bundle, tiny_session.device

        def generate(self, request, cancel=None):
            raise RuntimeError("boom")
            yield  # a generator, like GenerationSession.generate

    recorder = ready_worker(qtbot, engine_worker, Broken())
    job = engine_worker.generate(request(1))
    qtbot.waitUntil(lambda: recorder.ended(job), timeout=5000)
    error = recorder.of("failed", job)[0][1]
    assert type(error) is EngineError and "RuntimeError: boom" in str(error)


def test_load_model_by_folder_reports_progress_and_a_superseded_load_is_cancelled(
        qtbot, engine_worker, pausing_session_factory, tmp_path):
    save_native_bundle(tiny_bundle(), tmp_path / "tiny")
    session = pausing_session_factory(pause_when=lambda e: isinstance(e, ChunkFinished))
    recorder = ready_worker(qtbot, engine_worker, session)
    blocker = engine_worker.generate(request(2))            # holds the engine thread ...
    qtbot.waitUntil(lambda: session.paused.is_set(), timeout=10_000)
    stale = engine_worker.load_model(str(tmp_path / "tiny"))  # ... so both loads are queued
    fresh = engine_worker.load_model(str(tmp_path / "tiny"), device="cpu", dtype="float32")
    session.resume()
    qtbot.waitUntil(lambda: recorder.ended(fresh), timeout=20_000)
    assert recorder.of("finished", blocker)
    assert recorder.names(stale) == ["jobStarted", "cancelled", "jobEnded"]
    assert recorder.of("loadProgress", fresh)
    info = recorder.of("modelLoaded", fresh)[0][1]
    assert (info.name, info.device, info.dtype) == ("tiny", "cpu", "float32")
    assert engine_worker.model_info == info


def test_shutdown_mid_generation_stops_the_thread_and_releases_everything(qtbot, no_leaked_windows):
    worker = EngineWorker()
    runner = worker._runner
    session = GenerationSession(tiny_bundle())
    session_ref = weakref.ref(session)
    recorder = ready_worker(qtbot, worker, session)
    del session
    job = worker.generate(request(40, sampling=dataclasses.replace(tiny_bundle().sampling, window=1)))
    # recorder bound now: the name is deleted below, to release what it holds.
    qtbot.waitUntil(lambda recorder=recorder: bool(recorder.of("chunkFinished", job)), timeout=10_000)
    worker.shutdown()

    assert not worker.is_running() and worker.state == EngineState.NO_MODEL
    assert recorder.ended(job) and (recorder.of("cancelled", job) or recorder.of("finished", job))
    qtbot.waitUntil(lambda: not shiboken6.isValid(runner), timeout=5000)  # deleted as its thread ended
    del recorder
    gc.collect()
    assert session_ref() is None, "the engine session outlived the worker"
    worker.shutdown()  # idempotent
    with pytest.raises(RuntimeError, match="shut down"):
        worker.generate(request(1))


def _niceness_of_threads(name: str) -> list[int]:
    """The niceness of this process's threads called `name` (Linux: /proc/self/task/*/stat, field 19)."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() == name:
                found.append(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
        except OSError:  # the thread ended meanwhile
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread niceness is read from /proc (Linux)")
def test_the_engine_thread_gives_way_to_the_window_when_cores_are_short(qtbot, engine_worker):
    # Its torch worker threads, started from it, inherit its niceness (benchmarks/gui_storyboard.py measures
    # what it does to the window's stalls while generating).
    from magi_studio.engine_worker import ENGINE_NICENESS

    lowered = min(19, os.getpriority(os.PRIO_PROCESS, 0) + ENGINE_NICENESS)  # the window's thread's, plus
    # The thread is named as it starts and lowers itself just after: wait for both.
    qtbot.waitUntil(lambda: set(_niceness_of_threads("magi-engine")) == {lowered}, timeout=5000)
