"""Typed events of a generation, and the cancellation token.

`GenerationSession.generate` yields these; the GUI worker, the command line and the tests all consume the same
stream. Every run ends with exactly one of Finished, Cancelled or Failed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Union

from magi_engine.errors import EngineError

if TYPE_CHECKING:  # annotations only: importing the engine's types must not load torch (nor numpy)
    import numpy as np
    import torch


class CancelToken:
    """Cooperative cancellation: set from any thread, checked by the engine between denoising steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    __bool__ = is_set


@dataclass(frozen=True)
class GenerationStarted:
    #: Chunk indices of the request, in order, and the number of denoising steps the run will take.
    chunks: tuple[int, ...]
    total_steps: int


@dataclass(frozen=True)
class ChunkStarted:
    chunk: int


@dataclass(frozen=True)
class StepProgress:
    step: int  # 1-based count of finished steps
    total_steps: int
    #: Steps each active chunk has taken so far, out of `steps_per_chunk`.
    chunk_steps: Mapping[int, int]
    steps_per_chunk: int
    elapsed_s: float
    #: Cheap previews of the active chunks' predicted clean frames, uint8 [6, h, w, 3] at latent resolution.
    previews: Mapping[int, np.ndarray] | None = None


@dataclass(frozen=True)
class ChunkFinished:
    chunk: int
    #: Decoded frames, uint8 [24, H, W, 3] (None when the request asked for latents only).
    frames: np.ndarray | None
    #: The chunk's clean latents [16, 6, H/8, W/8], float32 on the CPU — what regenerate-from-N reuses.
    latent: torch.Tensor
    #: Leading frames that reproduce the given prefix video rather than new content.
    prefix_frames: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Finished:
    chunks: tuple[int, ...]
    elapsed_s: float


@dataclass(frozen=True)
class Cancelled:
    #: Chunks finished (and already delivered) before the cancellation.
    finished_chunks: tuple[int, ...]
    elapsed_s: float


@dataclass(frozen=True)
class Failed:
    error: EngineError
    finished_chunks: tuple[int, ...] = field(default_factory=tuple)


Event = Union[GenerationStarted, ChunkStarted, StepProgress, ChunkFinished, Finished, Cancelled, Failed]
