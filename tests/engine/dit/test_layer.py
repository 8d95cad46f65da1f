"""ParallelAttention's one buffer: self- and cross-attention written side by side where the output projection reads
(inference), or concatenated (autograd on: training)."""

from __future__ import annotations

import torch

from magi_engine.dit.attention import ChunkLayout, block_causal_attention, chunk_cross_attention
from magi_engine.dit.layer import ParallelAttention
from magi_engine.variants import tiny_dit_config


def _inputs(n: int, chunks: int, t: int, heads: int, kv_heads: int, dh: int, length: int, context: int):
    g = torch.Generator().manual_seed(n * 10 + chunks)
    s = chunks * t
    return ((torch.randn(n, s, heads, dh, generator=g), torch.randn(n, s, kv_heads, dh, generator=g),
             torch.randn(n, s, kv_heads, dh, generator=g), torch.randn(n, s, heads, dh, generator=g),
             torch.randn(n, chunks, length, kv_heads, dh, generator=g),
             torch.randn(n, chunks, length, kv_heads, dh, generator=g)),
            (torch.randn(n, context * t, kv_heads, dh, generator=g), torch.randn(n, context * t, kv_heads, dh, generator=g)))


def test_attend_lays_self_and_cross_attention_side_by_side() -> None:
    """Against the two attentions computed apart and concatenated, as the layer did before its buffer."""
    cfg = tiny_dit_config(distilled=True)
    attn = ParallelAttention(cfg)
    heads, kv_heads, dh = cfg.num_heads, cfg.num_kv_groups, cfg.head_dim
    for n in (1, 2):  # one item drops its text padding; several mask it
        inputs, context = _inputs(n, 3, 4, heads, kv_heads, dh, length=5, context=2)
        q, k, v, q_cross, k_text, v_text = inputs
        text_mask = torch.arange(5)[None, None, :] < torch.tensor([5, 2, 3])[None, :, None].expand(n, 3, 1)
        layout = ChunkLayout.causal(2, 3, 4, span=3, context_first=0)
        for masked, grad in ((False, False), (True, False), (False, True), (True, True)):
            with torch.set_grad_enabled(grad):
                got = attn.attend(inputs, text_mask, layout, context, masked)
            self_out = block_causal_attention(q, torch.cat([context[0], k], 1), torch.cat([context[1], v], 1), layout,
                                              masked)
            cross_out = chunk_cross_attention(q_cross, k_text, v_text, text_mask, 4, masked)
            assert got.shape == (n, 12, 2 * heads * dh) and got.is_contiguous()
            assert torch.equal(got, ParallelAttention.side_by_side(self_out, cross_out))


def test_training_gradients_flow_through_both_attentions() -> None:
    cfg = tiny_dit_config(distilled=True)
    attn = ParallelAttention(cfg)
    inputs, context = _inputs(1, 2, 4, cfg.num_heads, cfg.num_kv_groups, cfg.head_dim, length=3, context=0)
    inputs = tuple(a.requires_grad_() for a in inputs)
    attn.attend(inputs, None, ChunkLayout.causal(0, 2, 4), None, masked=True).square().sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in inputs)
