"""What a generation run looks like: per-chunk job states, overall progress, and the running engine job.

Job states are transient (never saved, never in the document): a chunk is QUEUED while a run will
reach it, DENOISING (with its fraction of steps) while the engine works on it or its result is being
written, FAILED when the engine or the disk failed on it, and IDLE otherwise — then the document's
own derived state (empty, done, stale) is what a card shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QElapsedTimer

from magi_studio.document.planning import GenerationPlan, ResultCommitter

IDLE, QUEUED, DENOISING, FAILED = "", "queued", "denoising", "failed"


def clock_text(seconds: float) -> str:
    """Seconds → "m:ss" (or "h:mm:ss")."""
    minutes, secs = divmod(max(0, int(round(seconds))), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class GenerationProgress:
    """Overall progress of a run, for the status bar."""

    shot_name: str
    #: 1-based number of the chunk that finishes next, out of `chunks` (an estimate until all shots are planned).
    chunk: int
    chunks: int
    #: Denoising steps of the current engine job.
    step: int
    steps: int
    elapsed_s: float
    eta_s: float | None
    #: 1-based place in its shot of the chunk being made (a run may start mid-shot), when known.
    shot_chunk: int | None = None

    def text(self) -> str:
        counted = f"{self.chunk} of {self.chunks} in this run"
        parts = [self.shot_name, f"chunk {self.shot_chunk} ({counted})" if self.shot_chunk else counted]
        if self.steps:
            parts.append(f"step {self.step}/{self.steps}")
        parts.append(clock_text(self.elapsed_s))
        if self.eta_s is not None:
            parts.append(f"about {clock_text(self.eta_s)} left")
        return " · ".join(parts)


@dataclass(eq=False)
class RunningJob:
    """One engine job: one shot's plan, the committer of its results, and what the engine has said so far."""

    session: Any  # the SessionLike whose project the results go to
    project: Any  # that project (a session may be given another one: then these results are not committed)
    plan: GenerationPlan
    committer: ResultCommitter
    job_id: int
    shot_name: str
    finished: set[int] = field(default_factory=set)  # request chunk indices finished
    active: dict[int, float] = field(default_factory=dict)  # request chunk index -> denoising progress
    step: int = 0
    steps: int = 0
    broken: bool = False  # a write failed: later chunks of this job are not written (their context is gone)

    def next_shot_chunk(self) -> int | None:
        """1-based place in the shot of the oldest chunk still being made (None before the engine reports)."""
        pending = [c for c in self.active if c not in self.finished]
        if not pending:
            return None
        return self.plan.shot_index(min(pending)) + 1

    def chunk_id(self, request_chunk: int) -> str | None:
        position = self.plan.shot_index(request_chunk) - self.plan.start_index
        return self.plan.chunk_ids[position] if 0 <= position < len(self.plan.chunk_ids) else None


class RunProgress:
    """Chunks a run will make (estimated per shot, exact once planned), chunks finished, time since the first job."""

    def __init__(self) -> None:
        self.estimates: dict[str, int] = {}  # shot id -> chunks it will generate
        self.finished = 0
        self._clock = QElapsedTimer()

    def reset(self) -> None:
        self.estimates, self.finished = {}, 0
        self._clock.invalidate()

    def job_started(self) -> None:
        if not self._clock.isValid():  # model loading and planning are not generation time
            self._clock.start()

    def snapshot(self, shot_name: str, partial: float, step: int, steps: int,
                 shot_chunk: int | None = None) -> GenerationProgress:
        """`partial`: fractions of the chunks being denoised, added to the finished ones for the ETA."""
        total = max(sum(self.estimates.values()), self.finished, 1)
        done = self.finished + partial
        elapsed = self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0
        eta = elapsed / done * (total - done) if done > 0 and elapsed > 0 else None
        return GenerationProgress(shot_name, min(total, self.finished + 1), total, step, steps, elapsed, eta,
                                  shot_chunk)


class ChunkJobStates:
    """chunk id -> (shot id, state, progress); every change goes out through `emit` (a Qt signal's emit)."""

    def __init__(self, emit: Callable[[str, str, str, float], None]) -> None:
        self._emit = emit
        self._states: dict[str, tuple[str, str, float]] = {}

    def get(self, chunk_id: str) -> tuple[str, float]:
        _, state, progress = self._states.get(chunk_id, ("", IDLE, 0.0))
        return state, progress

    def set(self, shot_id: str, chunk_id: str, state: str, progress: float = 0.0) -> None:
        if state == IDLE:
            if self._states.pop(chunk_id, None) is None:
                return
        else:
            self._states[chunk_id] = (shot_id, state, progress)
        self._emit(shot_id, chunk_id, state, progress)

    def settle(self, shot_id: str | None = None, chunk_ids=None) -> None:
        """QUEUED and DENOISING chunks (of a shot, or of `chunk_ids`, or all) become IDLE; FAILED ones stay."""
        for chunk_id, (owner, state, _) in list(self._states.items()):
            if state in (QUEUED, DENOISING) and (shot_id is None or owner == shot_id) \
                    and (chunk_ids is None or chunk_id in chunk_ids):
                self.set(owner, chunk_id, IDLE)

    def clear(self) -> None:
        """Forget every state (another project was opened)."""
        for chunk_id, (owner, _, _) in list(self._states.items()):
            self.set(owner, chunk_id, IDLE)
