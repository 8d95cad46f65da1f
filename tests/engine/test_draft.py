"""Draft requests: fewer steps, half the size, the same prompts and seeds."""

import dataclasses

import pytest
import torch

from magi_engine.config import GuidanceConfig, SamplingConfig
from magi_engine.draft import draft_request, draft_sampling, draft_size
from magi_engine.requests import ChunkSpec, GenerationRequest


@pytest.mark.parametrize("size, expected", [((720, 720), (352, 352)), ((832, 480), (416, 240)),
                                            ((1280, 720), (640, 352)), ((256, 96), (128, 64)), ((160, 112), (80, 64))])
def test_draft_size_halves_each_side_to_a_multiple_of_16(size, expected):
    assert draft_size(*size) == expected


def test_a_small_picture_keeps_its_size_and_halves_its_steps_instead():
    assert draft_size(128, 128) == (128, 128) and draft_size(96, 64) == (96, 64)  # studio-mini's size, and less
    mini = SamplingConfig(num_steps=8, window=4)  # studio-mini: a base model that already runs 8 steps
    request = GenerationRequest(chunks=(ChunkSpec("a red ball", 1),), width=128, height=128)
    draft = draft_request(request, mini, distilled=False)
    assert (draft.width, draft.height, draft.sampling.num_steps, draft.sampling.window) == (128, 128, 4, 4)
    assert draft_sampling(SamplingConfig(num_steps=4, window=4), distilled=False, same_size=True).num_steps == 4
    assert draft_sampling(SamplingConfig(num_steps=12, window=4), distilled=True, same_size=True).num_steps == 8
    assert draft_sampling(SamplingConfig(num_steps=8, window=4), distilled=True, same_size=True).num_steps == 4


def test_draft_sampling_takes_8_steps_distilled_16_base_and_a_window_that_divides_them():
    distilled = SamplingConfig(num_steps=64, window=4, guidance=GuidanceConfig(mode="distilled"))
    assert (draft_sampling(distilled, distilled=True).num_steps, draft_sampling(distilled, distilled=True).window) == (8, 4)
    base = SamplingConfig(num_steps=64, window=8)
    assert (draft_sampling(base, distilled=False).num_steps, draft_sampling(base, distilled=False).window) == (16, 8)
    few = SamplingConfig(num_steps=4, window=4, guidance=GuidanceConfig(mode="distilled"))
    assert draft_sampling(few, distilled=True).num_steps == 4  # never more steps than asked
    odd = SamplingConfig(num_steps=12, window=3, guidance=GuidanceConfig(mode="distilled"))
    assert draft_sampling(odd, distilled=True).window == 2  # 8 steps: 3 does not divide them


def test_a_draft_keeps_prompts_and_seeds_and_a_continuation_keeps_its_size():
    chunks = (ChunkSpec("a red ball", 5), ChunkSpec("a blue cube", 6))
    sampling = SamplingConfig(num_steps=16, window=4, guidance=GuidanceConfig(mode="distilled"))
    request = GenerationRequest(chunks=chunks, width=720, height=720)
    draft = draft_request(request, sampling, distilled=True)
    assert draft.chunks == chunks and (draft.width, draft.height) == (352, 352) and draft.sampling.num_steps == 8
    final = dataclasses.replace(draft, width=request.width, height=request.height, sampling=sampling)
    assert final.chunks == request.chunks  # the take re-rendered at final quality: same prompts and seeds
    continued = GenerationRequest(chunks=chunks, width=128, height=64, start_chunk=1,
                                  context_latents=(torch.zeros(16, 6, 8, 16),))
    kept = draft_request(continued, sampling, distilled=True)
    assert (kept.width, kept.height) == (128, 64) and kept.sampling.num_steps == 8
