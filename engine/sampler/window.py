"""The pipelined window of MAGI-1's chunk sampler, as a plan of steps (pure bookkeeping).

Each chunk takes S Euler steps, split into W stages of q = S/W steps. Stage s holds the chunks
[max(first, s-W+1), min(end, s+1)): a chunk of age a = s - c is at schedule index k = a·q + d in
sub-step d, so the oldest chunk in the window is the least noisy. Every q steps a new chunk enters
as pure noise and the oldest leaves clean — it is delivered at once (streaming). With W = 1 the
chunks are made strictly one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True)
class WindowStep:
    """One global denoising step of the window."""

    index: int
    stage: int
    substep: int
    #: Active chunks, oldest first, and each one's schedule index k (it moves from t_k to t_{k+1}).
    chunks: tuple[int, ...]
    steps: tuple[int, ...]
    #: Chunk that is clean after this step (the oldest, when it takes its last step), else None.
    finishes: int | None

    @property
    def oldest(self) -> int:
        return self.chunks[0]

    @property
    def stage_start(self) -> bool:
        return self.substep == 0


def window_steps(first: int, end: int, num_steps: int, window: int) -> Iterator[WindowStep]:
    """Every step needed to generate chunks [first, end) with a window of `window` chunks."""
    per_stage = num_steps // window
    index = 0
    for stage in range(first, end + window - 1):
        chunks = tuple(range(max(first, stage - window + 1), min(end, stage + 1)))
        for substep in range(per_stage):
            steps = tuple((stage - c) * per_stage + substep for c in chunks)
            done = chunks[0] if steps[0] + 1 == num_steps else None
            yield WindowStep(index, stage, substep, chunks, steps, done)
            index += 1


def attention_floors(steps: list[WindowStep], span_of: Callable[[int], int]) -> list[int]:
    """For each step, the oldest chunk that it or any later step attends (`span_of(k)` chunks back).

    Not monotonic step by step — with W = 1 a chunk in its last quarter attends one chunk back, the
    next chunk starts by attending four — hence the minimum over every remaining step.
    """
    floors = []
    lowest = None
    for step in reversed(steps):
        here = min(c - span_of(k) + 1 for c, k in zip(step.chunks, step.steps))
        lowest = here if lowest is None else min(lowest, here)
        floors.append(lowest)
    return floors[::-1]


def total_steps(num_chunks: int, num_steps: int, window: int) -> int:
    return num_steps // window * (num_chunks + window - 1)
