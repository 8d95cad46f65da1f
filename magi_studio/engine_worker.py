"""The studio's only door to the engine: a worker thread that owns the GenerationSession.

    worker = EngineWorker()                      # starts the "magi-engine" QThread
    worker.event.connect(on_event)               # (job id, event): dispatch on the event's type
    worker.load_model("studio-mini")             # -> job id; progress, cancel, failure like any job
    worker.load_model(spec, launch=LaunchSpec(2))   # or: on 2 GPUs, this thread driving rank 0
    worker.connect_remote("ws://gpu-box:8765", token)   # or: the engine of `magi-studio serve` elsewhere
    job = worker.generate(request)               # a frozen magi_engine.GenerationRequest -> job id
    worker.cancel(job)                           # the engine stops within one denoising step
    worker.shutdown()                            # cancel, quit, wait: call before the app exits

On several GPUs (Settings › Engine › GPUs, `magi-studio --gpus N`) the session is a magi_engine ParallelSession:
this thread drives rank 0 in-process and the other ranks are the session's own processes (forked from its
forkserver, ended by its close, which release() and a model change call), so every job, event and cancel
takes the same road as on one device, with no second server, port or token to manage; `magi-studio serve
--gpus N` on another computer stays the way to keep the ranks out of the app's process.

Two objects share the work. `_EngineRunner` lives in the QThread, holds the GenerationSession and runs one job
at a time, iterating the engine's event generator (the one chunk loop; no copy of it here). The
`EngineWorker` lives in the GUI thread: it numbers jobs, keeps their CancelTokens (thread-safe, so
cancelling never waits for the runner's queue) and re-emits every event through one signal on the GUI
thread, `event(job_id, event)`. The events are the engine's own frozen objects (GenerationStarted,
ChunkStarted, StepProgress, ChunkFinished, Finished, Cancelled, Failed) plus four of this worker's
(JobStarted, LoadProgress, ModelReleased, ModelLoaded); consumers dispatch on the type. The machine's devices (their
names and memory: magi_engine.device_facts) are read once on the engine thread, when first asked
(`ask_device_facts`), and kept; torch is only ever imported on that thread. Numpy frames and torch latents
travel by reference (the engine never touches them again).

A job's first event is JobStarted and its last (`is_final`) exactly one of: Finished (generation) /
ModelLoaded (load), Cancelled, or Failed — the single error path, its `.error` an EngineError;
unexpected exceptions are logged and reported as an EngineError too. When the final event is emitted
the job has already left `live_jobs` and `state` is up to date. A new generation supersedes (cancels)
the earlier ones still running or queued; a new load supersedes earlier loads. Jobs run in submission order,
so a generation queued after a load runs on the newly loaded model.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from magi_engine.config import SamplingConfig
from magi_engine.device_facts import DeviceFacts, read_device_facts
from magi_engine.errors import EngineError
from magi_engine.events import CancelToken, Cancelled, Failed, Finished
from magi_engine.loading.hub import DownloadCancelled
from magi_engine.requests import GenerationRequest

if TYPE_CHECKING:
    from magi_engine.session import GenerationSession

log = logging.getLogger(__name__)

#: Load progress is throttled to this interval (hub downloads report every few kilobytes).
LOAD_PROGRESS_INTERVAL_S = 0.1
#: The engine thread's niceness above the process's (Linux): where its threads and the GUI thread want more cores
#: than there are, the window gets the core first (a weight of about 3 to 1) and stays responsive; an idle window
#: costs the engine nothing. torch's CPU worker threads, started by the engine thread, inherit it.
ENGINE_NICENESS = 5


def lower_this_threads_priority(niceness: int = ENGINE_NICENESS) -> None:
    """Make the calling thread (alone, on Linux) `niceness` nicer than it is; a no-op where that cannot be done."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + niceness))
    except OSError:  # not allowed here (a sandbox): the engine runs at the window's priority, as before
        log.debug("could not lower the engine thread's priority", exc_info=True)


class EngineState(str, Enum):
    NO_MODEL = "no-model"
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know about the loaded model (the bundle itself stays in the worker thread)."""

    spec: str
    name: str
    label: str
    device: str
    dtype: str
    width: int
    height: int
    fps: int
    sampling: SamplingConfig
    distilled: bool
    #: The address of the remote engine serving the model ("" when it runs on this computer).
    remote: str = ""
    #: Where the loader put the parts to fit the GPU's memory (ModelBundle.memory_plan).
    memory_plan: str = ""
    #: The ranks it runs on, e.g. "2 GPUs (sequence-parallel)" ("" for one device).
    parallel: str = ""
    #: What of the DiT waits in CPU memory (magi_engine.config.DIT_OFFLOAD_MODES), as the plan chose or was told.
    dit_offload: str = "none"
    #: What the memory plan was made for (magi_engine.loading.memory.MemoryTarget); None: no plan to redo (our own
    #: models, a CPU, a remote engine).
    memory_target: object = None

    @classmethod
    def of(cls, session: GenerationSession, spec: str) -> "ModelInfo":
        from magi_engine.remote.client import RemoteSession

        if isinstance(session, RemoteSession):  # the server's model; its device names where it runs
            model = session.bundle
            return cls(spec=model.spec, name=model.name, label=model.label, device=session.device,
                       dtype=str(session.info.get("dtype", "")), width=model.width, height=model.height, fps=model.fps,
                       sampling=model.sampling, distilled=model.distilled, remote=session.url)
        from magi_engine.parallel.session import ParallelSession

        bundle = session.bundle
        dtype = next(bundle.dit.parameters()).dtype
        return cls(spec=spec or bundle.name, name=bundle.name, label=bundle.label, device=str(session.device),
                   dtype=str(dtype).removeprefix("torch."), width=bundle.width, height=bundle.height,
                   fps=bundle.fps, sampling=bundle.sampling, distilled=bool(bundle.dit.config.distilled),
                   memory_plan=bundle.memory_plan, dit_offload=getattr(bundle, "dit_offload", "none"),
                   memory_target=getattr(bundle, "memory_target", None),
                   parallel=session.description if isinstance(session, ParallelSession) else "")


@dataclass(frozen=True)
class _Job:
    id: int
    kind: str  # "load" | "generate"
    token: CancelToken = field(default_factory=CancelToken)
    request: GenerationRequest | None = None
    spec: str = ""
    device: str = "auto"
    dtype: str | None = None
    text_on_cpu: bool = False
    runtime: object = None  # magi_engine.config.RuntimeConfig; None: the engine chooses
    launch: object = None  # magi_engine.parallel.plan.LaunchSpec of several ranks; None: one device
    target: object = None  # magi_engine.loading.memory.MemoryTarget the memory is fitted to; None: the model's
    session: GenerationSession | None = None  # an already built session to adopt (tests, benchmarks)
    remote: tuple[str, str | None, str | None, str | None] | None = None  # (URL, token, token file, CA file)


@dataclass(frozen=True)
class JobStarted:
    """The engine thread began the job."""

    kind: str  # "load" | "generate"


@dataclass(frozen=True)
class LoadProgress:
    """A model loads or downloads (throttled to LOAD_PROGRESS_INTERVAL_S)."""

    message: str
    fraction: float  # 0..1


@dataclass(frozen=True)
class ModelLoaded:
    """A load job ended well: the model is in use from now on."""

    info: ModelInfo


@dataclass(frozen=True)
class ModelReleased:
    """The model in use is gone before its successor loaded (a several-rank model's ranks close first: one
    process group a process); if the load then fails, no model is loaded."""


def is_final(event: object) -> bool:
    """Whether `event` is a job's last one (after it the job id is never seen again)."""
    return isinstance(event, (Finished, Cancelled, Failed, ModelLoaded))


class _EngineRunner(QObject):
    """Runs jobs in the engine thread. Only EngineWorker talks to it."""

    event = Signal(int, object)
    #: (DeviceFacts) the answer to read_facts.
    deviceFacts = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._session: GenerationSession | None = None

    @Slot()
    def read_facts(self) -> None:
        try:
            facts = read_device_facts()
        except Exception:  # a broken driver must not stop the engine: the devices stay unknown
            log.exception("could not read the device facts")
            return
        self.deviceFacts.emit(facts)

    @Slot(object)
    def run(self, job: _Job) -> None:
        started = time.perf_counter()
        self.event.emit(job.id, JobStarted(job.kind))
        if job.token.is_set():  # superseded or cancelled while queued: never start it
            self.event.emit(job.id, Cancelled((), 0.0))
            return
        try:
            if job.kind == "load":
                self._load(job, started)
            else:
                self._generate(job)
        except EngineError as error:
            self.event.emit(job.id, Failed(error))
        except DownloadCancelled:
            self.event.emit(job.id, Cancelled((), time.perf_counter() - started))
        except Exception as exc:  # a bug, not a user error: keep the trace in the log, tell the user plainly
            log.exception("engine job %d (%s) failed", job.id, job.kind)
            self.event.emit(job.id, Failed(EngineError(f"The engine stopped on an internal error "
                                                       f"({type(exc).__name__}: {exc}). Details are in the log.")))

    def _load(self, job: _Job, started: float) -> None:
        if job.session is not None:
            session = job.session
        elif job.remote is not None:
            from magi_engine.remote.client import RemoteSession

            url, token, token_file, ca_file = job.remote
            self.event.emit(job.id, LoadProgress(f"Connecting to {url}", 0.0))
            session = RemoteSession.connect(url, token=token, token_file=token_file, ca_file=ca_file)
        else:
            last = [0.0, ""]

            def progress(message: str, fraction: float) -> None:  # called from download threads too
                now = time.perf_counter()
                if message != last[1] or fraction >= 1.0 or now - last[0] >= LOAD_PROGRESS_INTERVAL_S:
                    last[:] = [now, message]
                    self.event.emit(job.id, LoadProgress(message, float(fraction)))

            self.event.emit(job.id, LoadProgress(f"Loading {job.spec}", 0.0))
            from magi_engine.session import GenerationSession  # torch and the model: on this thread only

            if job.launch is not None and job.launch.ranks > 1:
                # This thread drives rank 0; the other ranks are processes of ours, stopped by the session's close.
                from magi_engine.parallel.session import ParallelSession

                if isinstance(self._session, ParallelSession):  # one process group a process: the old ranks go first
                    self._session.close()
                    self._session = None
                    self.event.emit(job.id, ModelReleased())
                session = ParallelSession.load(job.spec, job.launch, dtype=job.dtype, text_on_cpu=job.text_on_cpu,
                                               progress=progress, cancel=job.token.is_set, runtime=job.runtime)
            else:
                target = job.target
                fit = dict(width=target.width, height=target.height, window=target.window,
                           chunks=target.chunks) if target is not None else {}
                session = GenerationSession.load(job.spec, device=job.device, dtype=job.dtype,
                                                 text_on_cpu=job.text_on_cpu, progress=progress,
                                                 cancel=job.token.is_set, runtime=job.runtime, **fit)
        if job.token.is_set():  # cancelled while a non-interruptible load ran: keep the previous model
            self.event.emit(job.id, Cancelled((), time.perf_counter() - started))
            return
        previous, self._session = self._session, session
        _close_remote(previous if previous is not session else None)
        self.event.emit(job.id, ModelLoaded(ModelInfo.of(session, job.spec)))

    def _generate(self, job: _Job) -> None:
        if self._session is None:
            raise EngineError("No model is loaded yet. Wait for the model to finish loading, or choose one "
                              "in Settings.")
        for event in self._session.generate(job.request, job.token):
            self.event.emit(job.id, event)

    def release(self) -> None:
        """Drop the session (its weights, its connection, or its other ranks) once the thread has stopped."""
        _close_remote(self._session)
        self._session = None


def _close_remote(session) -> None:
    """Close a remote session's connection or a parallel session's other ranks (a local GenerationSession
    holds neither)."""
    close = getattr(session, "close", None)
    if close is not None:
        close()


class EngineWorker(QObject):
    """GUI-thread handle on the engine thread. All signals are emitted on the GUI thread."""

    #: EngineState value, whenever it changes.
    stateChanged = Signal(str)
    #: (DeviceFacts) once, when the engine thread has read them (ask_device_facts).
    deviceFactsChanged = Signal(object)
    #: (job_id, event): every event of every job, in order — JobStarted, LoadProgress, ModelLoaded, and the
    #: engine's GenerationStarted, ChunkStarted, StepProgress (with previews), ChunkFinished (frames uint8
    #: [24, H, W, 3], latent [16, 6, h, w]), Finished, Cancelled (finished chunks are kept) and Failed (the
    #: one error path, for loads and generations alike).
    event = Signal(int, object)

    _submit = Signal(object)
    _ask_facts = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._jobs: dict[int, _Job] = {}
        self._running: _Job | None = None
        self._model: ModelInfo | None = None
        self._device_facts: DeviceFacts | None = None
        #: shutdown left a model load running (abandon_load_after_ms): the process must end with os._exit.
        self.abandoned = False
        self._facts_asked = False
        self._state = EngineState.NO_MODEL
        self._thread = QThread(self)
        self._thread.setObjectName("magi-engine")
        self._runner = _EngineRunner()
        self._runner.moveToThread(self._thread)
        # Without an event loop left to run it, deleteLater still destroys the runner as the thread ends.
        self._thread.finished.connect(self._runner.deleteLater)
        # Run by the engine thread itself as it starts, before torch makes its worker threads there.
        self._thread.started.connect(lower_this_threads_priority, Qt.ConnectionType.DirectConnection)
        self._submit.connect(self._runner.run)
        self._runner.event.connect(self._on_event)
        self._ask_facts.connect(self._runner.read_facts)
        self._runner.deviceFacts.connect(self._on_device_facts)
        self._thread.start()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # Requests ---------------------------------------------------------------------------------
    def ask_device_facts(self) -> DeviceFacts | None:
        """The machine's devices, their names and memory, read once on the engine thread: None until they
        are known (deviceFactsChanged then brings them; the first call asks, later calls never ask again)."""
        if self._device_facts is None and not self._facts_asked:
            self._facts_asked = True
            self._ask_facts.emit()
        return self._device_facts

    def _on_device_facts(self, facts: DeviceFacts) -> None:
        self._device_facts = facts
        self.deviceFactsChanged.emit(facts)

    def load_model(self, spec: str = "studio-mini", device: str = "auto", dtype: str | None = None, *,
                   text_on_cpu: bool = False, runtime=None, launch=None, target=None) -> int:
        """Queue loading `spec` (studio-mini, a folder, a MAGI-1 hub variant); supersedes earlier loads.
        `runtime`: an magi_engine.config.RuntimeConfig (Settings.runtime_config), as the command line passes.
        `target`: the magi_engine.loading.memory.MemoryTarget (the project's size, window and chunks) the loader fits
        the memory to, as `generate` fits it to its request (planning.memory_target); None: the model's defaults.
        `launch`: a magi_engine.parallel.plan.LaunchSpec of several ranks (Settings.parallel_launch): the model
        runs on them, this thread being rank 0 (`device` is then the launch's)."""
        return self._queue(_Job(next(self._ids), "load", spec=spec, device=device,
                                dtype=None if dtype in (None, "auto") else dtype, text_on_cpu=text_on_cpu,
                                runtime=runtime, launch=launch, target=target))

    def connect_remote(self, url: str, token: str | None = None, *, token_file: str | None = None,
                       ca_file: str | None = None) -> int:
        """Queue connecting to the engine of `magi-studio serve` at `url` with the token (or the one in
        `token_file`, read on the engine thread); it then serves every generation, as a load would (a failure
        is a Failed event with a RemoteError or ConfigError, and the previous model stays)."""
        return self._queue(_Job(next(self._ids), "load", spec=url, remote=(url, token, token_file, ca_file)))

    def use_session(self, session: GenerationSession, spec: str = "") -> int:
        """Queue adopting an already built GenerationSession (tests, benchmarks); behaves like a load."""
        return self._queue(_Job(next(self._ids), "load", spec=spec or session.bundle.name, session=session))

    def generate(self, request: GenerationRequest, job_id: int | None = None) -> int:
        """Queue a generation; earlier generations are cancelled. Returns the job id (`job_id` if given)."""
        if not isinstance(request, GenerationRequest):
            raise TypeError(f"generate() takes an engine GenerationRequest, got {type(request).__name__}")
        if job_id is None:
            job_id = next(self._ids)
        elif job_id in self._jobs:
            raise ValueError(f"job id {job_id} is still in use")
        return self._queue(_Job(job_id, "generate", request=request))

    def cancel(self, job_id: int | None = None) -> None:
        """Ask job `job_id` (every job when None) to stop; its end arrives as `cancelled` (or `finished`)."""
        jobs = self._jobs.values() if job_id is None else [self._jobs[job_id]] if job_id in self._jobs else []
        for job in jobs:
            job.token.cancel()

    def _queue(self, job: _Job) -> int:
        if self._thread is None or not self._thread.isRunning():
            raise RuntimeError("the engine worker has been shut down")
        for other in self._jobs.values():
            if other.kind == job.kind:
                other.token.cancel()  # supersede: the newest request of a kind wins
        self._jobs[job.id] = job
        self._submit.emit(job)
        return job.id

    # State ------------------------------------------------------------------------------------
    @property
    def state(self) -> EngineState:
        return self._state

    @property
    def model_info(self) -> ModelInfo | None:
        return self._model

    @property
    def live_jobs(self) -> tuple[int, ...]:
        """Jobs queued or running, oldest first."""
        return tuple(self._jobs)

    def is_loading(self) -> bool:
        """Whether a load (or a connection) is queued or running: the model in use may change when it ends."""
        return any(job.kind == "load" for job in self._jobs.values())

    def is_running(self) -> bool:
        """Whether the engine thread is alive (False after shutdown)."""
        return self._thread is not None and self._thread.isRunning()

    def _update_state(self) -> None:
        running = self._running.kind if self._running else None
        if running == "load":
            state = EngineState.LOADING
        elif running == "generate":
            state = EngineState.GENERATING
        else:
            state = EngineState.READY if self._model else EngineState.NO_MODEL
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state.value)

    # Shutdown ---------------------------------------------------------------------------------
    @Slot()
    def shutdown(self, *, abandon_load_after_ms: int | None = None) -> None:
        """Cancel every job, stop the thread and wait for it (a running step finishes first). Idempotent.

        `abandon_load_after_ms`: when a model load is what runs (it cannot stop while torch imports), stop
        waiting after that long and leave the thread running, `abandoned` True: the app's process then
        ends at once (app.run_app), holding nothing of the user's in that thread."""
        if self._thread is None or self.abandoned:  # stopped, or left to the process's end
            return
        thread, runner = self._thread, self._runner
        for job in self._jobs.values():
            job.token.cancel()
        thread.quit()
        loading = self._running is not None and self._running.kind == "load"
        if abandon_load_after_ms is not None and loading and not thread.wait(abandon_load_after_ms):
            self.abandoned = True  # kept referenced, never destroyed while running (that aborts the process)
            return
        thread.wait()  # never destroy a running QThread: that aborts the process
        runner.release()
        self._thread, self._runner = None, None
        # Deliver what the runner sent before stopping, then end jobs it never reached.
        QCoreApplication.sendPostedEvents(self)
        for job_id in list(self._jobs):
            self._on_event(job_id, Cancelled((), 0.0))
        self._running = None
        self._model = None
        self._update_state()

    # Runner → GUI thread ----------------------------------------------------------------------
    @Slot(int, object)
    def _on_event(self, job_id: int, event: object) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return  # ended already (shutdown delivered its end)
        if isinstance(event, JobStarted):
            self._running = job
        elif isinstance(event, ModelLoaded):
            self._model = event.info
        elif isinstance(event, ModelReleased):
            self._model = None
        if is_final(event):
            del self._jobs[job_id]
            if self._running is job:
                self._running = None
        if isinstance(event, JobStarted) or is_final(event):
            self._update_state()
        self.event.emit(job_id, event)
