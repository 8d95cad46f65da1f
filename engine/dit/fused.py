"""Fused Triton kernels for a layer's float32 islands: norm + gate + residual, and QK-norm + RoPE (issue 18).

A layer runs two kinds of memory-bound float32 math between its matmuls (magi_engine.dit.layer):

* after attention and after the MLP, `TransformerLayer._gated_residual`:
  residual + LayerNorm₁ₚ(update · gate of the token's chunk), widened to float32 and rounded back once; after
  attention, the MLP's pre-norm of that sum comes from the same kernel (the row is in registers already);
* before attention, q and k of each head: `apply_rotary(q_norm(q.float()), angles).to(dtype)`.

Eager torch runs each as several passes over float32 copies; torch.compile fuses most of it. The kernels in
magi_engine.dit.fused_triton do each in one pass (bf16 in, bf16 out, float32 inside), with those torch
expressions as their reference (tests/engine/dit/test_fused.py; benchmarks/gpu_fusions.py on the GPU). They
are torch custom ops: a compiled layer calls them inside its graph, so they compose with compile_layers
(fullgraph) rather than leaving the compiled region; opaque ops by default, triton_op ones on request
(FusedKernels). Leaving the compiled region instead would split each dense part into three graphs and lose
the fusions compile makes around them (the casts and adds next to the norms).

`use_fused_kernels(dit, True)` sets them on every layer (`fused_kernels` of each TransformerLayer and its
ParallelAttention); None there is today's torch path, bit for bit. They run on CUDA only, with Triton
installed and a torch that has triton_op (2.6+); `fused_kernels_supported(device)` says so.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


# The torch expressions the kernels replace (bit for bit the layer's own: tests/engine/dit/test_fused.py) -------
def gated_residual_reference(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                             eps: float, residual: torch.Tensor) -> torch.Tensor:
    """TransformerLayer._gated_residual with its norm's parameters: residual + LayerNorm₁ₚ(update · gate), float32."""
    n, s, d = update.shape
    gated = update.float().view(n, gate.shape[1], -1, d) * gate.float()[:, :, None, :]
    return (F.layer_norm(gated.view(n, s, d), (d,), weight + 1, bias, eps) + residual.float()).to(residual.dtype)


def gated_residual_norm_reference(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                                  eps: float, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                                  norm_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The gated residual and the MLP's pre-norm of it, as TransformerLayer.dense_out computes them."""
    x = gated_residual_reference(update, gate, weight, bias, eps, residual)
    return x, F.layer_norm(x, (x.shape[-1],), norm_weight, norm_bias, norm_eps)


def qk_norm_rope_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, cos: torch.Tensor,
                           sin: torch.Tensor) -> torch.Tensor:
    """apply_rotary(norm(x.float()), angles).to(x.dtype) with cos, sin of the angles [S, A] given."""
    y = F.layer_norm(x.float(), (x.shape[-1],), weight + 1, bias, eps)
    a = cos.shape[-1]
    cos, sin = cos[:, None, :], sin[:, None, :]
    first, second, rest = y[..., :a], y[..., a : 2 * a], y[..., 2 * a :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos, rest], dim=-1).to(x.dtype)


def triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def fused_kernels_supported(device: torch.device | str) -> bool:
    """True on a CUDA device with Triton installed and torch.library.triton_op (torch 2.6+); False on CPU, MPS."""
    device = torch.device(device)
    return (device.type == "cuda" and torch.cuda.is_available() and hasattr(torch.library, "triton_op")
            and triton_importable())


class FusedKernels:
    """The layer's fused ops (the Triton custom ops of magi_engine.dit.fused_triton, registered on creation).
    `traced`: the triton_op versions, which torch.compile traces into; else the opaque custom ops (the default:
    a compiled graph calls them as extern kernels, the most robust way through compile)."""

    def __init__(self, traced: bool = False) -> None:
        import magi_engine.dit.fused_triton  # noqa: F401  (registers torch.ops.magi.*)

        ops = torch.ops.magi
        self.traced = traced
        self._gated_residual = ops.gated_residual if traced else ops.gated_residual_opaque
        self._gated_residual_norm = ops.gated_residual_norm if traced else ops.gated_residual_norm_opaque
        self._qk_norm_rope = ops.qk_norm_rope if traced else ops.qk_norm_rope_opaque

    def gated_residual(self, update: torch.Tensor, gate: torch.Tensor, norm: torch.nn.Module,
                       residual: torch.Tensor) -> torch.Tensor:
        """TransformerLayer._gated_residual(update, gate, norm, residual) in one kernel."""
        return self._gated_residual(update, gate, norm.weight, norm.bias, norm.eps, residual)

    def gated_residual_norm(self, update: torch.Tensor, gate: torch.Tensor, norm: torch.nn.Module,
                            residual: torch.Tensor, next_norm: torch.nn.LayerNorm) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, next_norm(x)) for x = TransformerLayer._gated_residual(update, gate, norm, residual), in one kernel."""
        return self._gated_residual_norm(update, gate, norm.weight, norm.bias, norm.eps, residual, next_norm.weight,
                                         next_norm.bias, next_norm.eps)

    @staticmethod
    def rotation(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of the RoPE angles [S, A], computed once for q and k (as apply_rotary computes them)."""
        return torch.cos(angles), torch.sin(angles)

    def qk_norm_rope(self, x: torch.Tensor, norm: torch.nn.Module, cos: torch.Tensor, sin: torch.Tensor
                     ) -> torch.Tensor:
        """apply_rotary(norm(x.float()), angles).to(x.dtype) for x [N, S, H, dh] in one kernel."""
        return self._qk_norm_rope(x, norm.weight, norm.bias, norm.eps, cos, sin)


def use_fused_kernels(dit: torch.nn.Module, on: bool, *, traced: bool = False) -> torch.nn.Module:
    """Run every layer of `dit` with the fused kernels (on) or with today's torch expressions (off). Before
    compile_layers: a compiled layer's graph is traced with what its layers hold then. `traced`: FusedKernels."""
    kernels = FusedKernels(traced) if on else None
    for layer in dit.layers:
        layer.fused_kernels = kernels
        layer.attn.fused_kernels = kernels
    if on:
        log.info("fused Triton kernels (norm + gate + residual, QK-norm + RoPE) in %d layers", len(dit.layers))
    return dit
