"""The chunk loop: Euler integration of the pipelined window, yielding as it goes.

This generator is the only copy of the loop: the session (GUI worker, command line) and the tests
all iterate it. It works on latents only; decoding, timing and cancellation belong to the caller,
which may stop iterating between any two steps.

Numbered steps follow MAGI-1's `SampleTransport` (video_generate.py), with three deliberate
differences: each chunk's noise comes from its own generator (so it does not depend on the video's
length), a finished chunk's cache entry is computed in its own forward (identical keys), and the
given first frames (image-to-video) are written back into the finished chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch

from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig
from magi_engine.dit.model import MagiDiT
from magi_engine.sampler.denoiser import PassRunner, WindowDenoiser
from magi_engine.sampler.schedule import flow_schedule
from magi_engine.sampler.window import WindowStep, attention_floors, window_steps


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk to generate: its absolute index, initial noise [1, 16, 6, H, W] and text [L, C]; its
    negative text [L', C] (None: the model's null caption) replaces the null caption in guidance passes."""

    index: int
    noise: torch.Tensor
    text: torch.Tensor
    negative_text: torch.Tensor | None = None


@dataclass(frozen=True)
class ChunkEntered:
    """A chunk joins the window as pure noise; its first step comes next."""

    index: int


@dataclass(frozen=True)
class StepDone:
    step: WindowStep
    total_steps: int
    #: Each active chunk's current estimate of its clean latent, x + (1 - t)·v, [1, 16, 6, H, W].
    predicted_clean: Mapping[int, torch.Tensor]
    #: Chunks whose keys/values the KV cache holds, and its size in bytes (flat once it is full).
    cached_chunks: range
    cache_bytes: int


@dataclass(frozen=True)
class ChunkDone:
    index: int
    latent: torch.Tensor  # [1, 16, 6, H, W], float32


def sample_chunks(dit: MagiDiT, sampling: SamplingConfig, chunks: Sequence[ChunkPlan], null_text: torch.Tensor, *,
                  context: Sequence[tuple[int, torch.Tensor]] = (), first_frames: torch.Tensor | None = None,
                  passes: PassRunner | None = None) -> Iterator[ChunkEntered | StepDone | ChunkDone]:
    """Generate `chunks` (consecutive indices) after the clean `context` chunks (index, latent).

    first_frames [1, 16, f, H, W]: latent frames held fixed at the start of the first chunk
    (image-to-video: f = 1; a continuation prefix that is not a whole chunk: f < 6).
    passes: how the guidance passes of a step run (default: all on this device; magi_engine.parallel
    runs them on several ranks).
    """
    if not chunks:
        return
    first, end = chunks[0].index, chunks[-1].index + 1
    device = dit.device
    schedule = flow_schedule(sampling.num_steps, sampling.shift, sampling.shortcut_mode)
    _, _, _, height, width = chunks[0].noise.shape
    tokens = dit.config.tokens_per_chunk(height, width)
    negatives = {c.index: c.negative_text for c in chunks if c.negative_text is not None}
    denoiser = WindowDenoiser(dit, sampling, schedule, {c.index: c.text for c in chunks}, null_text, tokens,
                              negative_texts=negatives, passes=passes)

    # 1. Clean context chunks enter the KV cache (regenerate-from-N, shot continuation, video prefix).
    for index, latent in context:
        denoiser.add_clean_chunk(index, latent.to(device=device, dtype=torch.float32))

    # 2. Every chunk starts as its own noise.
    x = {c.index: c.noise.to(device=device, dtype=torch.float32) for c in chunks}
    if first_frames is not None:
        first_frames = first_frames.to(device=device, dtype=torch.float32)
    steps = list(window_steps(first, end, sampling.num_steps, sampling.window))
    floors = attention_floors(steps, denoiser.span)

    for step, floor in zip(steps, floors):
        denoiser.cache.drop_before(floor)  # no remaining step attends further back
        for c, k in zip(step.chunks, step.steps):
            if k == 0:
                yield ChunkEntered(c)
        # 3. Hold the given first frames, then one forward (or three) for the whole window.
        if first_frames is not None and first in step.chunks:
            x[first] = _with_first_frames(x[first], first_frames)
        x_in = torch.cat([x[c] for c in step.chunks], dim=2)
        velocity = denoiser.velocity(x_in, step)

        # 4. Euler step of each chunk from its own t_k to t_{k+1}.
        predicted = {}
        for j, (c, k) in enumerate(zip(step.chunks, step.steps)):
            frames = slice(j * CHUNK_LATENT_FRAMES, (j + 1) * CHUNK_LATENT_FRAMES)
            v = velocity[:, :, frames]
            x_c = x_in[:, :, frames]
            x[c] = x_c + v * (schedule[k + 1] - schedule[k])
            predicted[c] = x_c + (1 - schedule[k]) * v
        yield StepDone(step, len(steps), predicted, denoiser.cache.chunk_indices, denoiser.cache.nbytes)

        # 5. The oldest chunk is clean: deliver it, and cache it for the chunks still denoising.
        if step.finishes is not None:
            done = step.finishes
            latent = x.pop(done)
            if first_frames is not None and done == first:
                latent = _with_first_frames(latent, first_frames)
            yield ChunkDone(done, latent)
            if done + 1 < end:
                denoiser.add_clean_chunk(done, latent)


def chunk_noise(seed: int, height: int, width: int, channels: int = 16) -> torch.Tensor:
    """A chunk's initial noise [1, C, 6, height/8, width/8]: a function of its seed alone, never of the
    video's length (drawn on the CPU, so every device starts from the same noise)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(1, channels, CHUNK_LATENT_FRAMES, height // 8, width // 8, generator=generator)


def _with_first_frames(latent: torch.Tensor, first_frames: torch.Tensor) -> torch.Tensor:
    held = first_frames.shape[2]
    return torch.cat([first_frames, latent[:, :, held:]], dim=2)
