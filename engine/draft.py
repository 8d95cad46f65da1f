"""Draft renders: fewer steps and a smaller picture, for iterating on prompts before the final render.

A draft is the same request (same prompts, same seeds) with fewer denoising steps — 8 for distilled
models, whose shortcut schedule is trained for it, 16 for base models — and half the width and height.
Rendering the take again at final quality is the request without these changes. A request that
continues earlier chunks (context latents) keeps its size: those latents fix it.

A small picture keeps its size too (at most SMALL_PICTURE pixels: studio-mini's 128x128). At another size
the same seed is another noise, and a small picture has few latent pixels to lose: studio-mini's 64x64
draft was another video (a square where the final render has a ball; 14.3 a pixel from the final frames,
against 2.8 for 4 steps at 128x128), and it was no quicker than 4 steps at full size, in wall-clock or in
CPU seconds (benchmarks/draft_cpu.py, BENCHMARKS.md). A draft that keeps its size and would keep its steps
too (a model that already runs the draft's steps, as studio-mini's 8) halves its steps instead, so that
every draft is quicker than its final render.
"""

from __future__ import annotations

import dataclasses

from magi_engine.config import SUPPORTED_STEPS, SamplingConfig
from magi_engine.requests import MIN_SIZE, GenerationRequest

DRAFT_STEPS_DISTILLED = 8
DRAFT_STEPS_BASE = 16
#: Each side of a draft, as a fraction of the final size (rounded down to a multiple of 16).
DRAFT_SCALE = 0.5
#: Pictures of at most this many pixels keep their size in a draft (see the module's docstring).
SMALL_PICTURE = 128 * 128


def draft_size(width: int, height: int) -> tuple[int, int]:
    """Half of each side, a multiple of 16, never below the smallest size a request takes; a small picture
    (at most SMALL_PICTURE pixels) as it is."""
    if width * height <= SMALL_PICTURE:
        return width, height

    def side(value: int) -> int:
        return max(MIN_SIZE, int(value * DRAFT_SCALE) // 16 * 16)
    return side(width), side(height)


def draft_sampling(sampling: SamplingConfig, *, distilled: bool, same_size: bool = False) -> SamplingConfig:
    """`sampling` with the draft's steps (never more than it had); the window shrinks to divide them. A draft at
    the final size (`same_size`) whose steps would not drop gets half of them (never fewer than 4)."""
    steps = min(sampling.num_steps, DRAFT_STEPS_DISTILLED if distilled else DRAFT_STEPS_BASE)
    if same_size and steps == sampling.num_steps:
        steps = max(s for s in SUPPORTED_STEPS if s <= max(SUPPORTED_STEPS[0], steps // 2))
    window = max(w for w in range(1, sampling.window + 1) if steps % w == 0)
    return dataclasses.replace(sampling, num_steps=steps, window=window)


def draft_request(request: GenerationRequest, sampling: SamplingConfig, *, distilled: bool) -> GenerationRequest:
    """The draft of `request`, whose settings are `sampling` (the request's or the model's)."""
    width, height = (request.width, request.height) if request.context_latents else draft_size(request.width,
                                                                                               request.height)
    same_size = (width, height) == (request.width, request.height)
    return dataclasses.replace(request, width=width, height=height,
                               sampling=draft_sampling(sampling, distilled=distilled, same_size=same_size))
