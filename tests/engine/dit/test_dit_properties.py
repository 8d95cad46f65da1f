"""Properties of one DiT forward on tiny random models: block causality, spans, context = recompute."""

from __future__ import annotations

import pytest
import torch

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.model import ChunkText, KVContext
from magi_engine.errors import ConfigError, InputError
from tests.engine.factories import chunk_text, tiny_dit

TOKENS = 6 * 2 * 3  # 6 frames x (4/2) x (6/2)


def inputs(seed: int, chunks: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, 6 * chunks, 4, 6, generator=g)
    t = torch.rand(1, chunks, generator=g)
    return x, t, ChunkText.from_sequences([chunk_text(seed + j, tokens=2 + j) for j in range(chunks)])


@pytest.mark.parametrize("gated", [False, True])
@torch.no_grad()
def test_a_chunk_never_sees_later_chunks(gated):
    dit = tiny_dit(gated=gated)
    x, t, text = inputs(0)
    base = dit(x, t, text, True, ChunkLayout.causal(0, 3, TOKENS)).velocity
    x2, t2, text2 = x.clone(), t.clone(), ChunkText.from_sequences(
        [text.features[0, 0, :2], text.features[0, 1, :3], torch.randn(7, 32)])
    x2[:, :, 12:] = torch.randn_like(x2[:, :, 12:])
    t2[0, 2] = 0.9
    changed = dit(x2, t2, text2, True, ChunkLayout.causal(0, 3, TOKENS)).velocity
    assert torch.equal(base[:, :, :12], changed[:, :, :12])
    assert not torch.allclose(base[:, :, 12:], changed[:, :, 12:])


@torch.no_grad()
def test_spans_limit_what_a_chunk_attends():
    dit = tiny_dit()
    # One layer: with more, chunk 0 reaches chunk 2 through chunk 1's hidden states, as in MAGI-1.
    dit.layers = dit.layers[:1]
    x, t, text = inputs(1)
    span2 = dit(x, t, text, True, ChunkLayout.causal(0, 3, TOKENS, span=2)).velocity
    x2 = x.clone()
    x2[:, :, :6] += 1.0  # chunk 0 is outside chunk 2's span of 2
    moved = dit(x2, t, text, True, ChunkLayout.causal(0, 3, TOKENS, span=2)).velocity
    assert torch.equal(span2[:, :, 12:], moved[:, :, 12:])
    assert not torch.allclose(span2[:, :, 6:12], moved[:, :, 6:12])


@torch.no_grad()
def test_cached_context_equals_recomputing_the_clean_chunk_in_the_same_forward():
    dit = tiny_dit()
    x, t, text = inputs(2)
    clean_t = torch.tensor([[0.9999]])
    t = torch.cat([clean_t, t[:, 1:]], dim=1)
    # Chunk 0 is clean and attends only to itself; chunks 1-2 attend to it.
    layout = ChunkLayout(0, 3, TOKENS, key_starts=(0, 0, 0), context_first=0)
    together = dit(x, t, text, True, layout).velocity
    first = ChunkText(text.features[:, :1], None if text.mask is None else text.mask[:, :1])
    clean = dit(x[:, :, :6], clean_t, first, True, ChunkLayout.isolated(0, 1, TOKENS), collect_kv=True)
    rest = ChunkText(text.features[:, 1:], None if text.mask is None else text.mask[:, 1:])
    cached = dit(x[:, :, 6:], t[:, 1:], rest, True, ChunkLayout(1, 2, TOKENS, (0, 0), 0),
                 context=KVContext(0, 1, clean.kv)).velocity
    assert (together[:, :, 6:] - cached).abs().max() < 1e-5


def test_layouts_that_look_ahead_or_outside_the_context_are_refused():
    with pytest.raises(ConfigError, match="cannot attend"):
        ChunkLayout(2, 2, TOKENS, key_starts=(2, 4), context_first=2)
    with pytest.raises(ConfigError, match="cannot attend"):
        ChunkLayout(2, 1, TOKENS, key_starts=(0,), context_first=1)
    dit = tiny_dit()
    x, t, text = inputs(3, chunks=1)
    with pytest.raises(InputError, match="KV context"):
        dit(x, t, text, True, ChunkLayout(1, 1, TOKENS, (0,), 0))
    with pytest.raises(InputError, match="latents must be"):
        dit(x[:, :8], t, text, True, ChunkLayout.causal(0, 1, TOKENS))


@torch.no_grad()
def test_masked_attention_for_training_matches_the_per_chunk_path():
    dit = tiny_dit()
    g = torch.Generator().manual_seed(9)
    x, t = torch.randn(3, 16, 18, 4, 6, generator=g), torch.rand(3, 3, generator=g)
    features = torch.randn(3, 3, 5, 32, generator=g)
    mask = torch.rand(3, 3, 5, generator=g) > 0.3
    mask[..., 0] = True
    text = ChunkText(features, mask)
    layout = ChunkLayout(0, 3, TOKENS, key_starts=(0, 0, 1), context_first=0)
    exact = dit(x, t, text, True, layout).velocity
    dit.masked_attention = True
    fast = dit(x, t, text, True, layout).velocity
    assert (exact - fast).abs().max() < 1e-5
