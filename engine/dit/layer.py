"""One MAGI-1 transformer layer: parallel self-/cross-attention, softcapped gates, sandwich norms.

From one pre-norm the layer computes self-attention queries/keys/values (QK-norm, partial RoPE,
GQA, block-causal spans) and cross-attention queries in parallel; both outputs go through a single
output projection. The chunk's condition enters only as tanh-softcapped gates applied before the
post-norms ("sandwich" norm); there is no adaLN shift or scale. Mixed precision follows the
reference: QK-norm, RoPE, gating, post-norms and residual adds in float32, the rest in the model dtype.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from magi_engine.config import DiTConfig
from magi_engine.dit.attention import ChunkLayout, block_causal_attention, chunk_cross_attention
from magi_engine.dit.norms import OnePlusLayerNorm
from magi_engine.dit.rope import apply_rotary

LayerKV = tuple[torch.Tensor, torch.Tensor]
#: (q, k, v, cross-attention q, text keys, text values) of one layer's attention.
AttentionInputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


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
        #: A kernel for unmasked block-causal self-attention in place of SDPA's per-chunk loop, called as
        #: (q, k, v, layout, out) and writing into out: FP8 attention (magi_engine.dit.fp8_attention.
        #: Fp8BlockCausalAttention) on the FP8 layers of a native FP8 model, or FlashAttention 4
        #: (magi_engine.dit.flash_attention) in bf16; set by magi_engine.dit.compiled. None: SDPA. A kernel with a
        #: `cross_attention` of chunk_cross_attention's arguments runs the unmasked cross-attention too.
        self.self_attention: Callable | None = None
        #: The fused QK-norm + RoPE kernel (magi_engine.dit.fused.FusedKernels, set by use_fused_kernels on CUDA);
        #: None: the torch expression below.
        self.fused_kernels = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, self.head_dim))

    def project(self, a: torch.Tensor, angles: torch.Tensor, text: torch.Tensor) -> AttentionInputs:
        """Normed input a [N, S, D] -> self-attention q [N, S, H, dh], k, v [N, S, G, dh] (QK-normed and
        rotated), cross-attention queries [N, S, H, dh] and the text's keys/values [N, chunks, L, G, dh]."""
        fused = self.fused_kernels
        if fused is None:
            q = apply_rotary(self.q_norm(self._heads(self.to_q(a)).float()), angles).to(a.dtype)
            k = apply_rotary(self.k_norm(self._heads(self.to_k(a)).float()), angles).to(a.dtype)
        else:  # the same, one kernel each (magi_engine.dit.fused)
            cos, sin = fused.rotation(angles)
            q = fused.qk_norm_rope(self._heads(self.to_q(a)), self.q_norm, cos, sin)
            k = fused.qk_norm_rope(self._heads(self.to_k(a)), self.k_norm, cos, sin)
        v = self._heads(self.to_v(a))
        q_cross = self.q_norm_cross(self._heads(self.to_q_cross(a)))
        k_text = self.k_norm_cross(self._heads(self.to_k_cross(text)))
        v_text = self._heads(self.to_v_cross(text))
        return q, k, v, q_cross, k_text, v_text

    def attend(self, inputs: AttentionInputs, text_mask: torch.Tensor | None, layout: ChunkLayout,
               context: LayerKV | None, masked: bool = False) -> torch.Tensor:
        """Block-causal self-attention over [context] ++ this forward, and per-chunk cross-attention, side by side
        in one buffer [N, S, 2·H·dh] (self | cross), the output projection's input."""
        attended, offset = self.attend_parts(inputs, text_mask, layout, context, masked)
        return attended if offset is None else attended.add_(offset[:, None].to(attended.dtype))

    def attend_parts(self, inputs: AttentionInputs, text_mask: torch.Tensor | None, layout: ChunkLayout,
                     context: LayerKV | None, masked: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`attend` as (buffer, offset): each attention writes its part of the buffer in place, so nothing is copied
        into a concatenation afterwards; a kernel that leaves v's mean out of its output (FP8 attention:
        `without_v_mean`) hands it back as offset [N, 2·H·dh] (float32, zero on the cross half), which the output
        projection's input quantisation adds in the pass it makes anyway (TransformerLayer.dense_out) instead of a
        pass of its own over the self-attention output. None: nothing to add."""
        q, k, v, q_cross, k_text, v_text = inputs
        k_all, v_all = (k, v) if context is None else (torch.cat([context[0], k], 1), torch.cat([context[1], v], 1))
        # Training (autograd on) concatenates instead: autograd refuses writes into views of one buffer.
        attended = None if torch.is_grad_enabled() else q.new_empty(*q.shape[:2], 2, *q.shape[2:])
        self_out, cross_out = (None, None) if attended is None else (attended[:, :, 0], attended[:, :, 1])
        kernel = self.self_attention
        v_mean = None
        if kernel is not None and not masked:
            deferring = getattr(kernel, "without_v_mean", None)
            if deferring is not None and attended is not None:
                self_out, v_mean = deferring(q, k_all, v_all, layout, self_out)
            else:
                self_out = kernel(q, k_all, v_all, layout, self_out)
        else:
            self_out = block_causal_attention(q, k_all, v_all, layout, masked, out=self_out)
        cross = getattr(kernel, "cross_attention", None)
        if cross is not None and not masked:
            cross_out = cross(q_cross, k_text, v_text, text_mask, layout.tokens_per_chunk, cross_out)
        else:
            cross_out = chunk_cross_attention(q_cross, k_text, v_text, text_mask, layout.tokens_per_chunk, masked,
                                              out=cross_out)
        if attended is None:
            return self.side_by_side(self_out, cross_out), None
        offset = None if v_mean is None else F.pad(v_mean.flatten(1), (0, v_mean[0].numel()))
        return attended.flatten(2), offset

    @staticmethod
    def side_by_side(self_out: torch.Tensor, cross_out: torch.Tensor) -> torch.Tensor:
        """[N, S, H, dh] each -> the output projection's input [N, S, 2·H·dh], as `attend` lays it out."""
        return torch.cat([self_out.flatten(2), cross_out.flatten(2)], dim=-1)

    def forward(self, x: torch.Tensor, angles: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor | None,
                layout: ChunkLayout, context: LayerKV | None, masked: bool = False) -> tuple[torch.Tensor, LayerKV]:
        """x [N, S, D] -> projected attention output [N, S, D] and this forward's (k, v)."""
        inputs = self.project(self.norm(x), angles, text)
        return self.out_proj(self.attend(inputs, text_mask, layout, context, masked)), (inputs[1], inputs[2])


class FeedForward(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.gated = config.gated_mlp
        width = config.ffn_hidden_size * (2 if self.gated else 1)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layernorm_eps)
        self.fc1 = nn.Linear(config.hidden_size, width, bias=False)
        self.fc2 = nn.Linear(config.ffn_hidden_size, config.hidden_size, bias=False)
        #: fc1 and GELU as one op, (x, fc1.weight) -> activation (magi_engine.dit.gelu_epilogue: with the fused
        #: kernels in bf16); None: fc1, then the exact GELU.
        self.linear_gelu: Callable | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_normed(self.norm(x))

    def from_normed(self, normed: torch.Tensor) -> torch.Tensor:
        """The MLP after its pre-norm (the fused kernels compute the norm with the residual before it)."""
        if self.linear_gelu is not None:
            return self.fc2(self.linear_gelu(normed, self.fc1.weight))
        h = self.fc1(normed)
        if self.gated:
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h)
        return self.fc2(h)


class TransformerLayer(nn.Module):
    """The layer runs as three parts: the dense math before attention (`dense_in`), attention itself
    (per-chunk spans, so its Python loop depends on the layout) and the dense math after it (`dense_out`).
    `compile_dense` compiles the two dense parts only: their shapes vary with the window's token count
    but not with the layout, so one compiled graph serves every step and every layer."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.cond_size, 2 * config.gate_size)
        self.attn = ParallelAttention(config)
        self.attn_post_norm = OnePlusLayerNorm(config.hidden_size, config.layernorm_eps)
        self.mlp = FeedForward(config)
        self.mlp_post_norm = OnePlusLayerNorm(config.hidden_size, config.layernorm_eps)
        #: The fused norm + gate + residual kernel (magi_engine.dit.fused.FusedKernels, set by use_fused_kernels
        #: on CUDA); None: `_gated_residual`.
        self.fused_kernels = None
        self._compiled: tuple[Callable, Callable] | None = None

    def gates(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """condition [N, chunks, C] -> (attention gate, mlp gate), each [N, chunks, D], tanh-softcapped."""
        raw = self.gate_proj(F.silu(condition))
        capped = torch.tanh(raw.float()).to(raw.dtype)
        return capped.chunk(2, dim=-1)

    @staticmethod
    def _gated_residual(update: torch.Tensor, gate: torch.Tensor, norm: nn.Module, residual: torch.Tensor
                        ) -> torch.Tensor:
        """residual + norm(update · gate of each token's chunk), in float32; gate [N, chunks, D]."""
        n, s, d = update.shape
        gated = update.float().view(n, gate.shape[1], -1, d) * gate.float()[:, :, None, :]
        return (norm(gated.view(n, s, d)) + residual.float()).to(residual.dtype)

    def dense_in(self, x: torch.Tensor, condition: torch.Tensor, angles: torch.Tensor, text: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, AttentionInputs]:
        gate_attn, gate_mlp = self.gates(condition)
        return gate_attn, gate_mlp, self.attn.project(self.attn.norm(x), angles, text)

    def dense_out(self, x: torch.Tensor, attended: torch.Tensor, gate_attn: torch.Tensor, gate_mlp: torch.Tensor,
                  attended_offset: torch.Tensor | None = None) -> torch.Tensor:
        """attended [N, S, 2·H·dh]: ParallelAttention.attend's self- and cross-attention outputs side by side;
        attended_offset [N, 2·H·dh]: what attend_parts left to add to them (compiled, it fuses into the output
        projection's first pass)."""
        if attended_offset is not None:  # rounded to the model's dtype first, as the kernel's own add would
            attended = attended + attended_offset[:, None].to(attended.dtype)
        fused = self.fused_kernels
        if fused is None:
            x = self._gated_residual(self.attn.out_proj(attended), gate_attn, self.attn_post_norm, x)
            return self._gated_residual(self.mlp(x), gate_mlp, self.mlp_post_norm, x)
        x, normed = fused.gated_residual_norm(self.attn.out_proj(attended), gate_attn, self.attn_post_norm, x,
                                              self.mlp.norm)
        return fused.gated_residual(self.mlp.from_normed(normed), gate_mlp, self.mlp_post_norm, x)

    def compile_dense(self, compile_fn: Callable[[Callable], Callable] | None) -> None:
        """Run `dense_in`/`dense_out` through `compile_fn` (e.g. a configured torch.compile); None undoes it."""
        self._compiled = None if compile_fn is None else (compile_fn(self.dense_in), compile_fn(self.dense_out))

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def forward(self, x: torch.Tensor, condition: torch.Tensor, angles: torch.Tensor, text: torch.Tensor,
                text_mask: torch.Tensor | None, layout: ChunkLayout, context: LayerKV | None,
                masked: bool = False) -> tuple[torch.Tensor, LayerKV]:
        dense_in, dense_out = self._compiled or (self.dense_in, self.dense_out)
        gate_attn, gate_mlp, inputs = dense_in(x, condition, angles, text)
        attended, offset = self.attn.attend_parts(inputs, text_mask, layout, context, masked)
        x = dense_out(x, attended, gate_attn, gate_mlp, offset)
        return x, (inputs[1], inputs[2])
