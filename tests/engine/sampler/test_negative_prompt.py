"""A chunk's negative text replaces the null caption in the guidance passes of base (cfg3) models."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.sampler.loop import ChunkDone, sample_chunks
from magi_engine.events import ChunkFinished
from magi_engine.session import GenerationSession
from tests.engine.factories import chunk_text, plans, tiny_bundle, tiny_dit, tiny_sampling


def run(dit, sampling, chunk_plans):
    with torch.no_grad():
        return {e.index: e.latent for e in sample_chunks(dit, sampling, chunk_plans, dit.null_text())
                if isinstance(e, ChunkDone)}


def with_negative(chunk_plans, index, text):
    return [dataclasses.replace(p, negative_text=text) if p.index == index else p for p in chunk_plans]


def test_a_negative_text_changes_its_chunk_and_later_ones_never_earlier_ones():
    dit, sampling = tiny_dit(), tiny_sampling(window=2, steps=4)
    base = run(dit, sampling, plans(range(3)))
    negative = run(dit, sampling, with_negative(plans(range(3)), 1, chunk_text(50, tokens=4)))
    assert torch.equal(base[0], negative[0])
    assert not torch.allclose(base[1], negative[1]) and not torch.allclose(base[2], negative[2])


def test_distilled_models_have_no_guidance_pass_and_ignore_it():
    dit, sampling = tiny_dit(distilled=True), tiny_sampling(window=2, steps=4, distilled=True)
    base = run(dit, sampling, plans(range(3)))
    negative = run(dit, sampling, with_negative(plans(range(3)), 1, chunk_text(50, tokens=4)))
    assert all(torch.equal(base[c], negative[c]) for c in base)


def test_the_guidance_passes_see_the_negative_text_with_the_text_present_flag(monkeypatch):
    """Every forward that is not the text pass (flag all True with the chunks' own texts) gets, per chunk,
    its negative text and flag True, or the null text and flag False."""
    dit, sampling = tiny_dit(), tiny_sampling(window=2, steps=4)
    null, negative = dit.null_text(), chunk_text(50, tokens=4)
    chunk_plans = with_negative(plans(range(3)), 1, negative)
    texts = {p.index: p.text for p in chunk_plans}
    seen = []
    forward = type(dit).forward

    def recording(self, latents, t, text, caption_present, layout, **kwargs):
        if not kwargs.get("collect_kv"):
            seen.append((layout, text, caption_present))
        return forward(self, latents, t, text, caption_present, layout, **kwargs)

    monkeypatch.setattr(type(dit), "forward", recording)
    run(dit, sampling, chunk_plans)
    guidance_chunks = 0
    for layout, text, present in seen:
        chunks = range(layout.first_chunk, layout.first_chunk + layout.num_chunks)
        flags = torch.full((1, len(chunks)), present) if isinstance(present, bool) else present
        if bool(flags.all()) and all(_same(text, j, texts[c]) for j, c in enumerate(chunks)):
            continue  # the text pass
        for j, c in enumerate(chunks):
            expected = negative if c == 1 else null
            assert bool(flags[0, j]) == (c == 1)
            assert _same(text, j, expected)
            guidance_chunks += c == 1
    assert guidance_chunks >= sampling.num_steps  # chunk 1 saw it in every step's guidance passes


def _same(text, j, sequence) -> bool:
    valid = text.features[0, j] if text.mask is None else text.features[0, j][text.mask[0, j]]
    return valid.shape == sequence.shape and torch.equal(valid, sequence.float())


@pytest.fixture(scope="module")
def cfg3_session() -> GenerationSession:
    return GenerationSession(tiny_bundle(distilled=False))


def latents(session, negative_prompts):
    chunks = tuple(ChunkSpec("a red ball falls", seed=7 + i, negative_prompt=n) for i, n in enumerate(negative_prompts))
    return [e.latent for e in session.generate(GenerationRequest(chunks=chunks, width=64, height=64, previews=False,
                                                              decode=False))
            if isinstance(e, ChunkFinished)]


def test_the_session_encodes_the_negative_prompt_and_an_empty_one_changes_nothing(cfg3_session):
    plain = latents(cfg3_session, ["", ""])
    assert all(torch.equal(a, b) for a, b in zip(plain, latents(cfg3_session, ["  ", ""])))
    negative = latents(cfg3_session, ["", "the blue square moves left"])
    assert torch.equal(plain[0], negative[0]) and not torch.allclose(plain[1], negative[1])


def test_a_negative_prompt_is_checked_like_the_prompt():
    from magi_engine.errors import InputError

    with pytest.raises(InputError, match="A negative prompt is 4001 characters long"):
        ChunkSpec("ok", 1, negative_prompt="x" * 4001)
    with pytest.raises(InputError, match="A negative prompt must be text"):
        ChunkSpec("ok", 1, negative_prompt=None)
