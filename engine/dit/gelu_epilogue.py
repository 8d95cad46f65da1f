"""The 4.5B's MLP activation inside its first GEMM: cuBLASLt's GELU epilogue (issue 18).

After compile and the fused kernels, the largest memory-bound kernel left in a step of the 4.5B is GELU: fc1's
output ([tokens, 12,288] in bf16, 1.2 GB a layer at 720x720 with a window of four chunks) is written, read and
written again (42 ms a step on an H100, gpu_profile_compiled_fused_flash_h100.json). cuBLASLt applies GELU to the
accumulator before it stores the GEMM's result (`torch._addmm_activation(..., use_gelu=True)`), so that pass goes.
Its GELU is the tanh form, not MAGI-1's exact (erf) one: at most 4.7e-4 apart (x = 2.7), a thirtieth of a bf16
step there, which is why this is measured against eager bf16 before anything turns it on.

`linear_gelu_tanh` is a torch custom op, opaque to torch.compile (inductor would otherwise split
`_addmm_activation` back into a GEMM and a GELU). `use_gelu_epilogue(dit, True)` sets it on each layer's MLP
(FeedForward.linear_gelu) where the MLP is GELU with a plain fc1; None there is the exact GELU. The engine turns it
on with the fused kernels in bf16 (magi_engine.dit.compiled.apply_runtime; RuntimeConfig.fused_kernels): on an H100
it took the 4.5B's compiled step from 2.239 to 2.210 s (8.95 -> 8.84 s a chunk) with the same error against eager
bf16 (1.55% / 1.07% against 1.54% / 1.06%; BENCHMARKS.md, "In-place attention").
"""

from __future__ import annotations

import torch
from torch import nn


@torch.library.custom_op("magi::linear_gelu_tanh", mutates_args=())
def linear_gelu_tanh(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """gelu(x @ weight.T, approximate="tanh") for x [..., in], weight [out, in]; one cuBLASLt call on CUDA. (On a
    CPU torch's `_addmm_activation` applies the exact GELU instead, so there the two steps are written out.)"""
    if x.device.type != "cuda":
        return torch.nn.functional.gelu(torch.nn.functional.linear(x, weight), approximate="tanh")
    zero_bias = x.new_zeros(weight.shape[0])
    flat = torch._addmm_activation(zero_bias, x.reshape(-1, x.shape[-1]), weight.t(), use_gelu=True)
    return flat.view(*x.shape[:-1], weight.shape[0])


@linear_gelu_tanh.register_fake
def _(x, weight):
    return x.new_empty(*x.shape[:-1], weight.shape[0])


def use_gelu_epilogue(dit: nn.Module, on: bool) -> int:
    """Each GELU MLP whose fc1 is a plain nn.Linear computes fc1 + GELU as linear_gelu_tanh (on) or as the
    exact GELU after the GEMM (off). Before compile_layers. Returns the number of layers it applies to."""
    count = 0
    for layer in dit.layers:
        mlp = layer.mlp
        if mlp.gated or type(mlp.fc1) is not nn.Linear or mlp.fc1.bias is not None:
            continue
        mlp.linear_gelu = torch.ops.magi.linear_gelu_tanh if on else None
        count += 1
    return count
