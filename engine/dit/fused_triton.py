"""Our Triton kernels for a layer's memory-bound float32 islands (magi_engine.dit.fused runs them; imported only there).

Each is registered twice as a torch custom op (namespace "magi"), so that a layer's compiled dense parts call it
inside their graph (fullgraph) either way:
* "opaque" (`torch.library.custom_op`, `magi::*_opaque`; the engine's default): the compiled graph calls the op as
  an extern kernel, knowing only its output's shape; the op launches the Triton kernel itself. Nothing of the
  kernel is traced, so nothing in it can break compilation (dynamic token counts included).
* "traced" (`torch.library.triton_op`): inductor traces into the op, sees the user-defined Triton kernel and
  launches it from its generated code (less launch overhead; benchmarks/gpu_fusions.py measures both).

* `magi::gated_residual`: residual + LayerNorm₁ₚ(update · gate of the token's chunk), float32 inside, one
  row of D per program: reads update and residual once (bf16), writes the sum once.
* `magi::gated_residual_norm`: the same, and the next LayerNorm of the sum (the MLP's pre-norm) from the row it
  has just written, so the sum is not read again by a norm kernel of its own.
* `magi::qk_norm_rope`: rotary(LayerNorm₁ₚ(x)) per head of x [N, S, H, dh], float32 inside, BLOCK_R rows
  of dh per program; cos and sin [S, A] come precomputed (the same torch.cos/sin as the reference).
"""

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

#: Rows of head_dim a QK-norm + RoPE program handles (BLOCK_R · dh elements; 32 · 128 = 4,096).
QK_BLOCK_ELEMENTS = 4096


@triton.jit
def gated_residual_kernel(U, G, W, B, R, Out, W2, B2, Normed, seq, tokens_per_gate, stride_gn, stride_gc, eps, eps2,
                          D: tl.constexpr, BLOCK_D: tl.constexpr, NORM: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # a token of [N·S]
    n = row // seq
    chunk = (row % seq) // tokens_per_gate
    offs = tl.arange(0, BLOCK_D)
    valid = offs < D
    u = tl.load(U + row * D + offs, mask=valid, other=0.0).to(tl.float32)
    g = tl.load(G + n * stride_gn + chunk * stride_gc + offs, mask=valid, other=0.0).to(tl.float32)
    x = u * g
    mean = tl.sum(x, axis=0) / D
    centred = tl.where(valid, x - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=0) / D + eps)
    gamma = tl.load(W + offs, mask=valid, other=0.0) + 1.0
    beta = tl.load(B + offs, mask=valid, other=0.0)
    y = centred * rstd * gamma + beta
    res = tl.load(R + row * D + offs, mask=valid, other=0.0).to(tl.float32)
    out = (y + res).to(Out.dtype.element_ty)
    tl.store(Out + row * D + offs, out, mask=valid)
    if NORM:  # the next LayerNorm (plain gamma) of the sum as stored, while its row is still in registers
        z = tl.where(valid, out.to(tl.float32), 0.0)
        mean2 = tl.sum(z, axis=0) / D
        centred2 = tl.where(valid, z - mean2, 0.0)
        rstd2 = 1.0 / tl.sqrt(tl.sum(centred2 * centred2, axis=0) / D + eps2)
        gamma2 = tl.load(W2 + offs, mask=valid, other=0.0).to(tl.float32)
        beta2 = tl.load(B2 + offs, mask=valid, other=0.0).to(tl.float32)
        tl.store(Normed + row * D + offs, (centred2 * rstd2 * gamma2 + beta2).to(Normed.dtype.element_ty), mask=valid)


@triton.jit
def qk_norm_rope_kernel(X, W, B, Cos, Sin, Out, rows, heads, seq, eps,
                        HEAD_DIM: tl.constexpr, ROT: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr):
    r = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)  # rows of [N·S·H]
    d = tl.arange(0, BLOCK_D)
    row_ok = r < rows
    dim_ok = d < HEAD_DIM
    ok = row_ok[:, None] & dim_ok[None, :]
    x = tl.load(X + r[:, None] * HEAD_DIM + d[None, :], mask=ok, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=1) / HEAD_DIM
    centred = tl.where(ok, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / HEAD_DIM + eps)
    y = centred * rstd[:, None] * (tl.load(W + d, mask=dim_ok, other=0.0) + 1.0)[None, :] \
        + tl.load(B + d, mask=dim_ok, other=0.0)[None, :]
    # Rotate-half pairs (d, d + ROT) for d < ROT: the partner's normed value, from the same row statistics.
    first = d < ROT
    rotated = d < 2 * ROT
    partner = tl.where(first, d + ROT, tl.where(rotated, d - ROT, d))
    xp = tl.load(X + r[:, None] * HEAD_DIM + partner[None, :], mask=ok, other=0.0).to(tl.float32)
    yp = (xp - mean[:, None]) * rstd[:, None] * (tl.load(W + partner, mask=dim_ok, other=0.0) + 1.0)[None, :] \
        + tl.load(B + partner, mask=dim_ok, other=0.0)[None, :]
    token = (r // heads) % seq
    band = tl.where(first, d, d - ROT)
    angle_ok = row_ok[:, None] & rotated[None, :]
    cos = tl.load(Cos + token[:, None] * ROT + band[None, :], mask=angle_ok, other=1.0)
    sin = tl.load(Sin + token[:, None] * ROT + band[None, :], mask=angle_ok, other=0.0)
    sign = tl.where(first, -1.0, 1.0)
    # first·cos − second·sin for the first half, second·cos + first·sin for the second; the rest untouched.
    out = tl.where(rotated[None, :], y * cos + sign[None, :] * yp * sin, y)
    tl.store(Out + r[:, None] * HEAD_DIM + d[None, :], out.to(Out.dtype.element_ty), mask=ok)


def _gated_residual(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                    residual: torch.Tensor, wrap=wrap_triton, next_norm=None) -> torch.Tensor | tuple:
    """The sum, or with `next_norm` (weight, bias, eps of a plain LayerNorm) the sum and that norm of it."""
    n, s, d = update.shape
    update, residual = update.contiguous(), residual.contiguous()
    if gate.stride(2) != 1:
        gate = gate.contiguous()
    out = torch.empty_like(residual)
    normed = torch.empty_like(residual) if next_norm is not None else out
    weight2, bias2, eps2 = next_norm if next_norm is not None else (weight, bias, eps)
    block = triton.next_power_of_2(d)
    wrap(gated_residual_kernel)[(n * s,)](
        update, gate, weight, bias, residual, out, weight2, bias2, normed, s, s // gate.shape[1], gate.stride(0),
        gate.stride(1), eps, eps2, D=d, BLOCK_D=block, NORM=next_norm is not None,
        num_warps=min(16, max(4, block // 256)))
    return out if next_norm is None else (out, normed)


def _qk_norm_rope(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, cos: torch.Tensor,
                  sin: torch.Tensor, wrap=wrap_triton) -> torch.Tensor:
    n, s, heads, dh = x.shape
    x = x.contiguous()
    cos, sin = cos.contiguous(), sin.contiguous()
    out = torch.empty_like(x)
    rows = n * s * heads
    block_d = triton.next_power_of_2(dh)
    block_r = max(1, QK_BLOCK_ELEMENTS // block_d)
    wrap(qk_norm_rope_kernel)[(triton.cdiv(rows, block_r),)](
        x, weight, bias, cos, sin, out, rows, heads, s, eps,
        HEAD_DIM=dh, ROT=cos.shape[1], BLOCK_D=block_d, BLOCK_R=block_r, num_warps=8)
    return out


def _direct(kernel):
    return kernel


# "Traced" ops (torch.library.triton_op): torch.compile traces into them and launches the kernel from its own code.
@triton_op("magi::gated_residual", mutates_args={})
def gated_residual(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                   residual: torch.Tensor) -> torch.Tensor:
    """update, residual [N, S, D]; gate [N, chunks, D] (S a multiple of chunks); weight, bias [D] float32
    (the norm's gamma is 1 + weight) -> [N, S, D] in residual's dtype."""
    return _gated_residual(update, gate, weight, bias, eps, residual)


@triton_op("magi::gated_residual_norm", mutates_args={})
def gated_residual_norm(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                        residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor, norm_eps: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """gated_residual's sum, and LayerNorm(sum) with norm_weight, norm_bias [D] (a plain gamma), both [N, S, D]."""
    return _gated_residual(update, gate, weight, bias, eps, residual, next_norm=(norm_weight, norm_bias, norm_eps))


@triton_op("magi::qk_norm_rope", mutates_args={})
def qk_norm_rope(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, cos: torch.Tensor,
                 sin: torch.Tensor) -> torch.Tensor:
    """x [N, S, H, dh]; weight, bias [dh] float32 (gamma 1 + weight); cos, sin [S, A] float32 (2A ≤ dh)
    -> [N, S, H, dh] in x's dtype."""
    return _qk_norm_rope(x, weight, bias, eps, cos, sin)


# "Opaque" ops (torch.library.custom_op): the same kernels; a compiled graph calls them as it calls an extern
# kernel, knowing only their output's shape (the fake implementations below).
@torch.library.custom_op("magi::gated_residual_opaque", mutates_args=())
def gated_residual_opaque(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                          eps: float, residual: torch.Tensor) -> torch.Tensor:
    return _gated_residual(update, gate, weight, bias, eps, residual, wrap=_direct)


@gated_residual_opaque.register_fake
def _(update, gate, weight, bias, eps, residual):
    return torch.empty_like(residual, memory_format=torch.contiguous_format)


@torch.library.custom_op("magi::gated_residual_norm_opaque", mutates_args=())
def gated_residual_norm_opaque(update: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                               eps: float, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                               norm_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    return _gated_residual(update, gate, weight, bias, eps, residual, wrap=_direct,
                           next_norm=(norm_weight, norm_bias, norm_eps))


@gated_residual_norm_opaque.register_fake
def _(update, gate, weight, bias, eps, residual, norm_weight, norm_bias, norm_eps):
    return (torch.empty_like(residual, memory_format=torch.contiguous_format),
            torch.empty_like(residual, memory_format=torch.contiguous_format))


@torch.library.custom_op("magi::qk_norm_rope_opaque", mutates_args=())
def qk_norm_rope_opaque(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, cos: torch.Tensor,
                        sin: torch.Tensor) -> torch.Tensor:
    return _qk_norm_rope(x, weight, bias, eps, cos, sin, wrap=_direct)


@qk_norm_rope_opaque.register_fake
def _(x, weight, bias, eps, cos, sin):
    return torch.empty_like(x, memory_format=torch.contiguous_format)
