"""What a generation run looks like: its phase (the state machine), per-chunk job states, overall progress and
its ETA, and the running engine job.

A run's phase is a RunPhase; `phase.advance(target)` is the one place a phase changes, and it raises
IllegalTransition for any move the table TRANSITIONS does not list.

Job states are transient (never saved, never in the document): a chunk is QUEUED while a run will
reach it, DENOISING (with its fraction of steps) while the engine works on it or its result is being
written, FAILED when the engine or the disk failed on it, and IDLE otherwise — then the document's
own derived state (empty, done, stale) is what a card shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from PySide6.QtCore import QElapsedTimer

from magi_studio.document.planning import GenerationPlan, ResultCommitter



class ChunkJobState(str, Enum):
    """What a run is doing with one chunk: transient, never saved (the document's ChunkState is what lasts)."""

    IDLE = ""  # no run touches it
    QUEUED = "queued"
    DENOISING = "denoising"
    FAILED = "failed"


class RunPhase(str, Enum):
    """Where a GenerationController's run is. Only `RunPhase.advance` moves it (the table TRANSITIONS)."""

    IDLE = "idle"          # no run
    LOADING = "loading"    # waiting for the project's model to load (ours, or a load already under way)
    PLANNING = "planning"  # the next shot's plan is being made off the GUI thread (latents, reference image)
    RUNNING = "running"    # an engine job generates the shot
    DRAINING = "draining"  # the job ended: its finished chunks are still being written and committed
    PAUSED = "paused"      # held by the user between jobs; the shot that was under way waits first in the queue

    def advance(self, target: "RunPhase") -> "RunPhase":
        """`target`, if a run may go there from here; IllegalTransition otherwise."""
        if target not in TRANSITIONS[self]:
            raise IllegalTransition(f"a generation run cannot go from {self.value} to {target.value}")
        return target


class IllegalTransition(RuntimeError):
    """A bug: the controller tried a move its state machine does not have."""


#: Every move a run can make. A run starts from IDLE and always ends there; LOADING and PLANNING may repeat
#: (another load ended first; a shot turned out to have nothing to generate, so the next one is planned).
#: A pause takes effect between jobs (a running job first stops within one step and drains).
TRANSITIONS: dict[RunPhase, frozenset[RunPhase]] = {
    RunPhase.IDLE: frozenset({RunPhase.LOADING, RunPhase.PLANNING}),
    RunPhase.LOADING: frozenset({RunPhase.LOADING, RunPhase.PLANNING, RunPhase.PAUSED, RunPhase.IDLE}),
    RunPhase.PLANNING: frozenset({RunPhase.PLANNING, RunPhase.RUNNING, RunPhase.PAUSED, RunPhase.IDLE}),
    RunPhase.RUNNING: frozenset({RunPhase.DRAINING}),
    RunPhase.DRAINING: frozenset({RunPhase.LOADING, RunPhase.PLANNING, RunPhase.PAUSED, RunPhase.IDLE}),
    RunPhase.PAUSED: frozenset({RunPhase.LOADING, RunPhase.PLANNING, RunPhase.IDLE}),
}


@dataclass(frozen=True)
class QueuedShot:
    """One request in a run's queue: a shot from a chunk on, and how its plan is made (planning.plan_generation)."""

    #: Unique in its controller: the queue's handle on it (move, remove), however often its shot is queued.
    id: int
    shot_id: str
    #: The chunk it starts from (0-based; None: its first chunk that is not done).
    from_index: int | None
    #: A variation's seeds, one per chunk from `from_index` on (None: the chunks' own seeds).
    seeds: tuple[int, ...] | None = None
    #: Always make a new take (never fill the active one); and whether that take becomes the active one.
    new_take: bool = False
    activate: bool = True
    #: What it is, beside its shot's name ("variation 2 of 4"; "" for a plain request).
    label: str = ""
    #: The chunk it stops before (0-based; None: the shot's end): an in/out range ends inside a shot.
    stop_index: int | None = None
    #: Made as a draft (the project's Draft mode when it was asked for: planning.plan_generation's `draft`).
    draft: bool = False
    #: Render at Final Quality: the draft take whose draft chunks it makes again (planning.plan_final_quality).
    final_of: str | None = None


class RequestState(str, Enum):
    """Where one request of the queue is (its row in the queue view); `QueueItem.state`."""

    QUEUED = "queued"        # waiting for its turn
    RUNNING = "running"      # being planned or generated now
    PAUSED = "paused"        # the request a paused run holds: it goes on first when the run is resumed
    FAILED = "failed"        # it could not be generated (`QueueItem.failed` says why); Retry asks for it again
    CANCELLED = "cancelled"  # stopped by the user before it was done; Retry asks for it again


#: The states of a request that is over without being done: listed until retried or removed.
ENDED_STATES = (RequestState.FAILED, RequestState.CANCELLED)


@dataclass(frozen=True)
class QueueItem:
    """One request of a run, as the queue view shows it."""

    id: int
    shot_id: str
    shot_name: str
    #: The chunk it starts from (0-based; None: its first chunk that is not done).
    from_index: int | None
    #: True for the request being planned or generated now (it cannot be moved or removed; Stop or Pause it).
    current: bool = False
    label: str = ""
    stop_index: int | None = None
    #: Why it could not be generated (one sentence), for a request that failed in the run; "" otherwise.
    failed: str = ""
    state: RequestState = RequestState.QUEUED
    #: The running request's own progress: chunk `chunk` of `chunks` is being made (1-based; 0 of 0 before it is
    #: planned), `fraction` of its chunks are done, about `eta_s` seconds left (None until steps were timed).
    chunk: int = 0
    chunks: int = 0
    fraction: float = 0.0
    eta_s: float | None = None
    #: The running request was cancelled alone ("cancelling"), or the run asked to stop ("stopping") or to pause
    #: ("pausing"): it ends within one step.
    stopping: str = ""

    def text(self) -> str:
        start = f"from chunk {self.from_index + 1}" if self.from_index is not None else "the chunks not done"
        if self.stop_index is not None:
            start = (f"chunks {self.from_index + 1} to {self.stop_index}" if self.from_index is not None else
                     f"the chunks not done up to chunk {self.stop_index}")
        state = f"failed: {self.failed}" if self.failed else "generating" if self.current else \
            "cancelled" if self.state is RequestState.CANCELLED else start
        return " · ".join([self.shot_name] + ([self.label] if self.label else []) + [state])

    def progress_text(self) -> str:
        """The running request's line under its bar: "chunk 2 of 4 · about 0:40 left" ("planning" before)."""
        if self.stopping:
            return f"{self.stopping.capitalize()} after this step…"
        if not self.chunks:
            return "planning"
        parts = [f"chunk {self.chunk} of {self.chunks}"]
        if self.eta_s is not None:
            parts.append(f"about {clock_text(self.eta_s)} left")
        return " · ".join(parts)


@dataclass(frozen=True)
class CompletedRequest:
    """A request that was done: what it made, for the queue view's Completed list (Show goes to its take)."""

    id: int
    shot_id: str
    shot_name: str
    #: The take its chunks went to, and that take's name when it was done.
    take_id: str
    take_name: str
    #: The chunks it made, 1-based positions in the shot when it was done (first, last), and how many.
    first_chunk: int
    last_chunk: int
    chunks: int
    #: Seconds from its planning to its last chunk committed (a paused request: its working time only).
    seconds: float
    label: str = ""

    def text(self) -> str:
        made = f"chunk {self.first_chunk}" if self.first_chunk == self.last_chunk else \
            f"chunks {self.first_chunk}–{self.last_chunk}"
        return " · ".join([self.shot_name] + ([self.label] if self.label else [])
                          + [self.take_name, made, clock_text(self.seconds)])


def clock_text(seconds: float) -> str:
    """Seconds → "m:ss" (or "h:mm:ss")."""
    minutes, secs = divmod(max(0, int(round(seconds))), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class GenerationProgress:
    """Overall progress of a run, for the status bar: true from its first second (loading, planning, steps)."""

    shot_name: str
    #: 1-based number of the chunk that finishes next, out of `chunks` (an estimate until all shots are planned).
    chunk: int
    chunks: int
    #: Denoising steps of the current engine job.
    step: int
    steps: int
    #: Since the run was asked for (model loading and planning included).
    elapsed_s: float
    #: None until two steps have been timed.
    eta_s: float | None
    #: 1-based place in its shot of the chunk being made (a run may start mid-shot), when known.
    shot_chunk: int | None = None
    phase: RunPhase = RunPhase.RUNNING
    #: Steps the chunk that finishes next has taken, out of `chunk_steps` (0 of 0 before the engine says).
    chunk_step: int = 0
    chunk_steps: int = 0
    #: The model being loaded (LOADING).
    model: str = ""
    #: A stop was asked for: the engine ends within one step, then the finished chunks are committed.
    stopping: bool = False
    #: A pause was asked for: as a stop, then the run waits with its queue.
    pausing: bool = False
    #: The share of `eta_s` that the request under way still needs (its row's ETA in the queue view).
    request_eta_s: float | None = None
    #: The engine job makes drafts (Draft mode): said after the shot's name.
    draft: bool = False

    @property
    def fraction(self) -> float:
        """Of the whole run: finished chunks plus the fraction of the one finishing next."""
        partial = self.chunk_step / self.chunk_steps if self.chunk_steps else 0.0
        return min(1.0, (self.chunk - 1 + partial) / max(1, self.chunks))

    def text(self) -> str:
        elapsed = clock_text(self.elapsed_s)
        if self.phase is RunPhase.LOADING:
            return f"Loading model {self.model}… · {elapsed}" if self.model else f"Loading model… · {elapsed}"
        if self.phase is RunPhase.PLANNING:
            return f"Planning {self.shot_name} · {elapsed}"
        if self.phase is RunPhase.PAUSED:
            return f"Paused · {self.chunks - self.chunk + 1} chunks to go · {elapsed}"
        if (self.stopping or self.pausing) and self.phase is RunPhase.RUNNING:
            return f"{'Stopping' if self.stopping else 'Pausing'} after this step… · {elapsed}"
        counted = f"{self.chunk} of {self.chunks} in this run"
        parts = [self.shot_name] + (["draft"] if self.draft else []) + [
            f"chunk {self.shot_chunk} ({counted})" if self.shot_chunk else counted]
        if self.phase is RunPhase.DRAINING:
            parts.append("saving finished chunks")
        elif self.chunk_steps:
            parts.append(f"step {self.chunk_step}/{self.chunk_steps}")
        else:
            parts.append("starting")
        parts.append(elapsed)
        if self.eta_s is not None:
            parts.append(f"about {clock_text(self.eta_s)} left")
        return " · ".join(parts)


class StepTimer:
    """An ETA that settles: an exponential average of the seconds per denoising step, shown once two steps
    were timed, and never raised by less than a sixth (small wobbles only ever bring it down)."""

    SMOOTHING = 0.3
    #: A new estimate above the running one replaces it only beyond this factor.
    RAISE_BEYOND = 1.15

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seconds_per_step: float | None = None
        self.samples = 0
        self._last: tuple[int, float] | None = None  # (step, engine seconds) of the job's previous step
        self._eta: tuple[float, float] | None = None  # (eta, run seconds when it was given)

    def new_job(self) -> None:
        self._last = None

    def step(self, step: int, engine_elapsed_s: float) -> None:
        if self._last is not None and step > self._last[0]:
            sample = max(0.0, engine_elapsed_s - self._last[1]) / (step - self._last[0])
            average = self.seconds_per_step
            self.seconds_per_step = sample if average is None else average + self.SMOOTHING * (sample - average)
            self.samples += 1
        self._last = (step, engine_elapsed_s)

    def eta(self, steps_left: float, now_s: float) -> float | None:
        if self.samples < 2 or self.seconds_per_step is None:
            return None
        estimate = steps_left * self.seconds_per_step
        if self._eta is not None:
            counted_down = max(0.0, self._eta[0] - (now_s - self._eta[1]))
            if counted_down <= estimate <= counted_down * self.RAISE_BEYOND:
                estimate = counted_down
        self._eta = (estimate, now_s)
        return estimate


@dataclass(eq=False)
class RunningJob:
    """One engine job: one shot's plan, the committer of its results, and what the engine has said so far."""

    session: Any  # the DocumentSession whose project the results go to
    project: Any  # that project (a session may be given another one: then these results are not committed)
    plan: GenerationPlan
    committer: ResultCommitter
    job_id: int
    shot_name: str
    finished: set[int] = field(default_factory=set)  # request chunk indices finished
    active: dict[int, float] = field(default_factory=dict)  # request chunk index -> denoising progress
    step: int = 0
    steps: int = 0
    steps_per_chunk: int = 0
    chunk_steps: dict[int, int] = field(default_factory=dict)  # request chunk index -> steps taken
    broken: bool = False  # a write failed: later chunks of this job are not written (their context is gone)
    shot_deleted: bool = False  # its shot was deleted during the run (said once)
    item_id: int = 0  # the QueuedShot it generates
    outcome: str = ""  # "finished" | "cancelled" | "failed" once the engine said it ended
    failure: str = ""  # the engine's sentence when it failed

    def next_shot_chunk(self) -> int | None:
        """1-based place in the shot of the oldest chunk still being made (None before the engine reports)."""
        pending = [c for c in self.active if c not in self.finished]
        if not pending:
            return None
        return self.plan.shot_index(min(pending)) + 1

    def next_chunk_steps(self) -> tuple[int, int]:
        """(steps taken, steps it needs) of the oldest chunk still being made; (0, 0) before the engine says."""
        pending = [c for c in self.chunk_steps if c not in self.finished]
        if not pending or not self.steps_per_chunk:
            return 0, 0
        return self.chunk_steps[min(pending)], self.steps_per_chunk

    def chunk_id(self, request_chunk: int) -> str | None:
        position = self.plan.shot_index(request_chunk) - self.plan.start_index
        return self.plan.chunk_ids[position] if 0 <= position < len(self.plan.chunk_ids) else None


class RunProgress:
    """Chunks a run will make (estimated per shot, exact once planned), chunks finished, time since it was asked for."""

    def __init__(self) -> None:
        self.estimates: dict[int, int] = {}  # queue item id -> chunks it will generate
        self.finished = 0
        self.finished_in: dict[int, int] = {}  # queue item id -> chunks it generated so far (a paused one resumes)
        self.timer = StepTimer()
        self._clock = QElapsedTimer()

    def reset(self) -> None:
        self.estimates, self.finished, self.finished_in = {}, 0, {}
        self.timer.reset()
        self._clock.start()

    @property
    def elapsed_s(self) -> float:
        return self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0

    def snapshot(self, phase: RunPhase, shot_name: str = "", job: "RunningJob | None" = None,
                 model: str = "", stopping: bool = False, pausing: bool = False) -> GenerationProgress:
        total = max(sum(self.estimates.values()), self.finished, 1)
        chunk = min(total, self.finished + 1)
        if job is None:
            return GenerationProgress(shot_name, chunk, total, 0, 0, self.elapsed_s, None, phase=phase, model=model,
                                      stopping=stopping, pausing=pausing)
        chunk_step, chunk_steps = job.next_chunk_steps()
        job_left = float(job.steps - job.step) if job.steps else 0.0
        per_chunk = job.steps / max(1, len(job.plan.chunk_ids)) if job.steps else 0.0
        steps_left = job_left + per_chunk * max(0, total - self.finished - len(job.plan.chunk_ids) + len(job.finished))
        eta = self.timer.eta(steps_left, self.elapsed_s) if job.steps else None
        # The run's settled ETA shared out by steps, so the request's ETA settles with it and is never above it.
        request_eta = eta * job_left / steps_left if eta is not None and steps_left > 0 else eta
        return GenerationProgress(job.shot_name, chunk, total, job.step, job.steps, self.elapsed_s, eta,
                                  job.next_shot_chunk(), phase, chunk_step, chunk_steps, model, stopping, pausing,
                                  request_eta, draft=any(spec.draft for spec in job.plan.specs))


class ChunkJobStates:
    """chunk id -> (shot id, state, progress); every change goes out through `emit` (a Qt signal's emit)."""

    def __init__(self, emit: Callable[[str, str, str, float], None]) -> None:
        self._emit = emit
        self._states: dict[str, tuple[str, str, float]] = {}

    def get(self, chunk_id: str) -> tuple[str, float]:
        _, state, progress = self._states.get(chunk_id, ("", ChunkJobState.IDLE, 0.0))
        return state, progress

    def set(self, shot_id: str, chunk_id: str, state: str, progress: float = 0.0) -> None:
        if state == ChunkJobState.IDLE:
            if self._states.pop(chunk_id, None) is None:
                return
        else:
            if self._states.get(chunk_id) == (shot_id, state, progress):
                return  # unchanged: each change redraws a card
            self._states[chunk_id] = (shot_id, state, progress)
        self._emit(shot_id, chunk_id, state, progress)

    def settle(self, shot_id: str | None = None, chunk_ids=None) -> None:
        """QUEUED and DENOISING chunks (of a shot, or of `chunk_ids`, or all) become IDLE; FAILED ones stay."""
        for chunk_id, (owner, state, _) in list(self._states.items()):
            if state in (ChunkJobState.QUEUED, ChunkJobState.DENOISING) and (shot_id is None or owner == shot_id) \
                    and (chunk_ids is None or chunk_id in chunk_ids):
                self.set(owner, chunk_id, ChunkJobState.IDLE)

    def clear(self) -> None:
        """Forget every state (another project was opened)."""
        for chunk_id, (owner, _, _) in list(self._states.items()):
            self.set(owner, chunk_id, ChunkJobState.IDLE)
