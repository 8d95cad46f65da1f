"""Draft renders: fewer steps and a smaller picture, for iterating on prompts before the final render.

A draft is the same request (same prompts, same seeds) with fewer denoising steps — 8 for distilled
models, whose shortcut schedule is trained for it, 16 for base models — and half the width and height.
Rendering the take again at final quality is the request without these changes. A request that
continues earlier chunks (context latents) keeps its size: those latents are at the final size.
"""

from __future__ import annotations

import dataclasses

from magi_engine.config import SamplingConfig
from magi_engine.requests import MIN_SIZE, GenerationRequest

DRAFT_STEPS_DISTILLED = 8
DRAFT_STEPS_BASE = 16
#: Each side of a draft, as a fraction of the final size (rounded down to a multiple of 16).
DRAFT_SCALE = 0.5


def draft_size(width: int, height: int) -> tuple[int, int]:
    """Half of each side, a multiple of 16, never below the smallest size a request takes."""
    def side(value: int) -> int:
        return max(MIN_SIZE, int(value * DRAFT_SCALE) // 16 * 16)
    return side(width), side(height)


def draft_sampling(sampling: SamplingConfig, *, distilled: bool) -> SamplingConfig:
    """`sampling` with the draft's steps (never more than it had); the window shrinks to divide them."""
    steps = min(sampling.num_steps, DRAFT_STEPS_DISTILLED if distilled else DRAFT_STEPS_BASE)
    window = max(w for w in range(1, sampling.window + 1) if steps % w == 0)
    return dataclasses.replace(sampling, num_steps=steps, window=window)


def draft_request(request: GenerationRequest, sampling: SamplingConfig, *, distilled: bool) -> GenerationRequest:
    """The draft of `request`, whose settings are `sampling` (the request's or the model's)."""
    width, height = (request.width, request.height) if request.context_latents else draft_size(request.width,
                                                                                               request.height)
    return dataclasses.replace(request, width=width, height=height,
                               sampling=draft_sampling(sampling, distilled=distilled))
