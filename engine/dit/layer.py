"""One MAGI-1 transformer layer: parallel self-/cross-attention, softcapped gates, sandwich norms.

From one pre-norm the layer computes self-attention queries/keys/values (QK-norm, partial RoPE,
GQA, block-causal spans) and cross-attention queries in parallel; both outputs go through a single
output projection. The chunk's condition enters only as tanh-softcapped gates applied before the
post-norms ("sandwich" norm); there is no adaLN shift or scale. Mixed precision follows the
reference: QK-norm, RoPE, gating, post-norms and residual adds in float32, the rest in the model dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import DiTConfig
from engine.dit.attention import ChunkLayout, block_causal_attention, chunk_cross_attention
from engine.dit.norms import OnePlusLayerNorm
from engine.dit.rope import apply_rotary

LayerKV = tuple[torch.Tensor, torch.Tensor]


class ParallelAttention(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        d, dh = config.hidden_size, config.head_dim
        self.head_dim = dh
        self.norm = nn.LayerNorm(d, eps=config.layernorm_eps)
        self.to_q = nn.Linear(d, config.query_size, bias=False)
        self.to_k = nn.Linear(d, config.kv_size, bias=False)
        self.to_v = nn.Linear(d, config.kv_size, bias=False)
        self.to_q_cross = nn.Linear(d, config.query_size, bias=False)
        self.to_k_cross = nn.Linear(config.xattn_size, config.kv_size, bias=False)
        self.to_v_cross = nn.Linear(config.xattn_size, config.kv_size, bias=False)
        self.q_norm = OnePlusLayerNorm(dh, config.layernorm_eps)
        self.k_norm = OnePlusLayerNorm(dh, config.layernorm_eps)
        self.q_norm_cross = OnePlusLayerNorm(dh, config.layernorm_eps)
        self.k_norm_cross = OnePlusLayerNorm(dh, config.layernorm_eps)
        self.out_proj = nn.Linear(2 * config.query_size, d, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, self.head_dim))

    def keys_values(self, a: torch.Tensor, angles: torch.Tensor) -> LayerKV:
        """Self-attention keys (QK-normed, rotated) and values of the normed input a [N, S, D]."""
        k = apply_rotary(self.k_norm(self._heads(self.to_k(a)).float()), angles).to(a.dtype)
        v = self._heads(self.to_v(a))
        return k, v

    def forward(self, x: torch.Tensor, angles: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor | None,
                layout: ChunkLayout, context: LayerKV | None, masked: bool = False) -> tuple[torch.Tensor, LayerKV]:
        """x [N, S, D] -> projected attention output [N, S, D] and this forward's (k, v)."""
        a = self.norm(x)
        q = apply_rotary(self.q_norm(self._heads(self.to_q(a)).float()), angles).to(a.dtype)  # [N, S, H, dh]
        k, v = self.keys_values(a, angles)  # [N, S, G, dh]
        k_all, v_all = (k, v) if context is None else (torch.cat([context[0], k], 1), torch.cat([context[1], v], 1))
        self_out = block_causal_attention(q, k_all, v_all, layout, masked)

        q_cross = self.q_norm_cross(self._heads(self.to_q_cross(a)))
        k_text = self.k_norm_cross(self._heads(self.to_k_cross(text)))  # [N, chunks, L, G, dh]
        v_text = self._heads(self.to_v_cross(text))
        cross_out = chunk_cross_attention(q_cross, k_text, v_text, text_mask, layout.tokens_per_chunk, masked)

        out = self.out_proj(torch.cat([self_out.flatten(2), cross_out.flatten(2)], dim=-1))
        return out, (k, v)


class FeedForward(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.gated = config.gated_mlp
        width = config.ffn_hidden_size * (2 if self.gated else 1)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layernorm_eps)
        self.fc1 = nn.Linear(config.hidden_size, width, bias=False)
        self.fc2 = nn.Linear(config.ffn_hidden_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(self.norm(x))
        if self.gated:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        return self.fc2(h)


class TransformerLayer(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.cond_size, 2 * config.gate_size)
        self.attn = ParallelAttention(config)
        self.attn_post_norm = OnePlusLayerNorm(config.hidden_size, config.layernorm_eps)
        self.mlp = FeedForward(config)
        self.mlp_post_norm = OnePlusLayerNorm(config.hidden_size, config.layernorm_eps)

    def gates(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """condition [N, chunks, C] -> (attention gate, mlp gate), each [N, chunks, D], tanh-softcapped."""
        raw = self.gate_proj(F.silu(condition))
        capped = torch.tanh(raw.float()).to(raw.dtype)
        return capped.chunk(2, dim=-1)

    @staticmethod
    def _gated_residual(update: torch.Tensor, gate: torch.Tensor, norm: nn.Module, residual: torch.Tensor,
                        num_chunks: int) -> torch.Tensor:
        n, s, d = update.shape
        gated = update.float().view(n, num_chunks, s // num_chunks, d) * gate.float()[:, :, None, :]
        return (norm(gated.view(n, s, d)) + residual.float()).to(residual.dtype)

    def forward(self, x: torch.Tensor, condition: torch.Tensor, angles: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor | None, layout: ChunkLayout, context: LayerKV | None,
                masked: bool = False) -> tuple[torch.Tensor, LayerKV]:
        gate_attn, gate_mlp = self.gates(condition)
        attn_out, kv = self.attn(x, angles, text, text_mask, layout, context, masked)
        x = self._gated_residual(attn_out, gate_attn, self.attn_post_norm, x, layout.num_chunks)
        x = self._gated_residual(self.mlp(x), gate_mlp, self.mlp_post_norm, x, layout.num_chunks)
        return x, kv
