"""Sequence-parallel DiT forward: each chunk's tokens split across ranks, attention by all-to-all over heads.

Every rank holds the same slice of every chunk of the forward: tokens [r·m, (r+1)·m) of each chunk,
m = ceil(tokens_per_chunk / R), the last slice padded. Keeping whole chunk groups on every rank means
the per-chunk parts of a layer (gates, text cross-attention, the chunk's own text) run unchanged on the
local slice, and nothing but self-attention needs the other ranks' tokens.

Self-attention (Ulysses, as MAGI-1's `cp_ulysses`): an all-to-all turns [my tokens, all heads] into
[all tokens, my heads]; the padding is dropped, so block-causal attention runs over exactly the
single-device sequence and layout, for H/R query heads and their key/value heads; a second all-to-all
turns the output back. GQA: when the key/value heads do not split evenly over the ranks (fewer kv
heads than ranks, or a count R does not divide), each is repeated just enough (plan.kv_head_repeats)
that every rank gets the kv heads its query heads read. The keys/values a forward collects for the
KV cache are this rank's heads of every token, so the cache is sharded with the heads.
"""

from __future__ import annotations

import math

import torch

from magi_engine.dit.attention import (
    ChunkLayout,
    block_causal_attention,
    chunk_cross_attention,
)
from magi_engine.dit.layer import LayerKV
from magi_engine.dit.model import ChunkText, DiTOutput, KVContext, MagiDiT
from magi_engine.parallel.plan import kv_head_repeats
from magi_engine.parallel.runtime import ParallelRuntime


class SequenceParallelDiT:
    """A MagiDiT called as the sampler calls one, with each forward split over the sequence group."""

    def __init__(self, dit: MagiDiT, runtime: ParallelRuntime) -> None:
        self.dit = dit
        self.runtime = runtime
        self.ranks = runtime.sequence_ranks
        self.position = runtime.position
        config = dit.config
        self.kv_repeats = kv_head_repeats(config.num_heads, config.num_kv_groups, self.ranks)

    # What the sampler reads of a model --------------------------------------------------------
    @property
    def config(self):
        return self.dit.config

    @property
    def device(self) -> torch.device:
        return self.dit.device

    @property
    def dtype(self) -> torch.dtype:
        return self.dit.dtype

    def null_text(self) -> torch.Tensor:
        return self.dit.null_text()

    # Token slices -------------------------------------------------------------------------------
    def _slice_length(self, tokens_per_chunk: int) -> int:
        return math.ceil(tokens_per_chunk / self.ranks)

    def _slice_tokens(self, x: torch.Tensor, chunks: int, t: int, m: int) -> torch.Tensor:
        """Tokens on dim -2 of x [..., chunks·t, F] -> this rank's slice [..., chunks·m, F] (zero padded)."""
        *lead, _, features = x.shape
        grouped = x.reshape(*lead, chunks, t, features)
        pad = m * self.ranks - t
        if pad:
            grouped = torch.cat([grouped, grouped.new_zeros(*lead, chunks, pad, features)], dim=-2)
        mine = grouped[..., self.position * m : (self.position + 1) * m, :]
        return mine.reshape(*lead, chunks * m, features)

    # Head <-> token exchanges -------------------------------------------------------------------
    def _to_heads(self, local: torch.Tensor, chunks: int, t: int) -> torch.Tensor:
        """[N, chunks·m, heads, D] (my tokens, all heads) -> [N, chunks·t, heads/R, D] (all tokens, my heads)."""
        r = self.ranks
        n, _, heads, d = local.shape
        m = local.shape[1] // chunks
        send = local.reshape(n, chunks * m, r, heads // r, d).permute(2, 0, 1, 3, 4)
        got = self.runtime.all_to_all(send)  # [R (source position), N, chunks·m, heads/R, D]
        got = got.reshape(r, n, chunks, m, heads // r, d).permute(1, 2, 0, 3, 4, 5)
        return got.reshape(n, chunks, r * m, heads // r, d)[:, :, :t].reshape(n, chunks * t, heads // r, d)

    def _to_tokens(self, full: torch.Tensor, chunks: int, t: int) -> torch.Tensor:
        """The inverse of _to_heads: [N, chunks·t, heads/R, D] -> [N, chunks·m, heads, D]."""
        r = self.ranks
        n, _, h, d = full.shape
        m = self._slice_length(t)
        grouped = full.reshape(n, chunks, t, h, d)
        if m * r > t:
            grouped = torch.cat([grouped, grouped.new_zeros(n, chunks, m * r - t, h, d)], dim=2)
        send = grouped.reshape(n, chunks, r, m, h, d).permute(2, 0, 1, 3, 4, 5)
        got = self.runtime.all_to_all(send)  # [R (source position = head block), N, chunks, m, h, D]
        return got.permute(1, 2, 3, 0, 4, 5).reshape(n, chunks * m, r * h, d)

    # Forward ------------------------------------------------------------------------------------
    def __call__(self, latents: torch.Tensor, t: torch.Tensor, text: ChunkText, caption_present, layout: ChunkLayout,
                 *, context: KVContext | None = None, step_size: torch.Tensor | None = None,
                 collect_kv: bool = False) -> DiTOutput:
        dit = self.dit
        dit._check_inputs(latents, t, text, layout, context, step_size)
        x, condition, text_tokens, text_mask, angles = dit.embed(latents, t, text, caption_present, layout, step_size)
        chunks, tpc = layout.num_chunks, layout.tokens_per_chunk
        m = self._slice_length(tpc)
        x = self._slice_tokens(x, chunks, tpc, m)
        angles = self._slice_tokens(angles, chunks, tpc, m)

        collected: list[LayerKV] = []
        for index, layer in enumerate(dit.layers):
            dense_in, dense_out = layer._compiled or (layer.dense_in, layer.dense_out)
            gate_attn, gate_mlp, (q, k, v, q_cross, k_text, v_text) = dense_in(x, condition, angles, text_tokens)
            if self.kv_repeats > 1:
                k, v = (a.repeat_interleave(self.kv_repeats, dim=2) for a in (k, v))
            q, k, v = (self._to_heads(a, chunks, tpc) for a in (q, k, v))
            if context is not None:
                cached_k, cached_v = context.layers[index]
                k_all, v_all = torch.cat([cached_k, k], 1), torch.cat([cached_v, v], 1)
            else:
                k_all, v_all = k, v
            self_out = self._to_tokens(block_causal_attention(q, k_all, v_all, layout), chunks, tpc)
            cross_out = chunk_cross_attention(q_cross, k_text, v_text, text_mask, m)
            x = dense_out(x, layer.attn.side_by_side(self_out, cross_out), gate_attn, gate_mlp)
            if collect_kv:
                collected.append((k, v))

        features = dit.final_proj(dit.final_norm(x.float()))  # [N, chunks·m, p·p·C], per token
        gathered = self.runtime.all_gather(features)  # [R, N, chunks·m, F]
        r, n, _, f = gathered.shape
        tokens = gathered.reshape(r, n, chunks, m, f).permute(1, 2, 0, 3, 4).reshape(n, chunks, r * m, f)
        features = tokens[:, :, :tpc].reshape(n, chunks * tpc, f)
        return DiTOutput(dit.unpatchify(features, latents.shape), collected if collect_kv else None)
