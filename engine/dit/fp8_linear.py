"""Native FP8 linears: MAGI-1's quantised linears kept in float8_e4m3fn and run as FP8 GEMMs.

Where the GPU multiplies FP8 matrices (compute capability 8.9 and later: Ada, Hopper, Blackwell) the
linears an FP8 checkpoint stores quantised stay quantised in memory (half the bytes of bf16) and run
as `torch._scaled_mm` with the checkpoint's own tensor-wise scales, exactly the official forward:

    y = (e4m3(x / input_divisor) @ W8ᵀ) · activation_scale · weight_scale

(see magi_engine.loading.fp8 for where each scale comes from). The activation rounding is a separate
elementwise op here; compiled with the layer (magi_engine.dit.compiled) it fuses into the op that produces
x (a LayerNorm, GELU, or the attention outputs' concatenation), which is what makes FP8 pay: run on its
own it costs about what the FP8 GEMM saves. Everywhere else the checkpoint is dequantised on load and
runs as dense nn.Linear, as before.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from magi_engine.dit.official_keys import FP8_PER_CHANNEL, FP8_PER_TENSOR
from magi_engine.loading.fp8 import E4M3_MAX, fp8_linear_scales, fp8_linear_weight

#: Lowest CUDA compute capability with FP8 tensor-core matmuls.
FP8_MIN_CAPABILITY = (8, 9)

#: Buffers of an Fp8Linear that hold float32 scales (the weight itself is float8_e4m3fn).
FP8_SCALE_BUFFERS = ("weight_scale", "input_divisor", "activation_scale")


def native_fp8_supported(device: torch.device | str) -> bool:
    """True when `device` is a CUDA GPU with FP8 matmuls and this torch has `_scaled_mm`."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available() or not hasattr(torch, "_scaled_mm"):
        return False
    return torch.cuda.get_device_capability(device) >= FP8_MIN_CAPABILITY


def quantize_activation(x: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
    """x [M, in] -> e4m3(clamp(x / divisor, ±448)) through bfloat16, as the official forward rounds it."""
    return (x.float() / divisor).clamp(-E4M3_MAX, E4M3_MAX).to(torch.bfloat16).to(torch.float8_e4m3fn)


class Fp8Linear(nn.Module):
    """A bias-free linear with float8_e4m3fn weight [out, in] and tensor-wise float32 scales (buffers, so
    casting the model's parameters never touches them)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.float8_e4m3fn))
        self.register_buffer("weight_scale", torch.ones((), dtype=torch.float32))
        self.register_buffer("input_divisor", torch.ones(in_features, dtype=torch.float32))
        self.register_buffer("activation_scale", torch.ones((), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:-1]
        x8 = quantize_activation(x.reshape(-1, self.in_features), self.input_divisor)
        out_dtype = x.dtype if x.dtype in (torch.bfloat16, torch.float16) else torch.float32
        y = torch._scaled_mm(x8, self.weight.t(), scale_a=self.activation_scale, scale_b=self.weight_scale,
                             out_dtype=out_dtype)
        return y.view(*leading, self.out_features)

    @classmethod
    def from_stored(cls, stored: Mapping[str, torch.Tensor], *, device: torch.device | str | None = None
                    ) -> "Fp8Linear":
        """One linear in MAGI-1's stored FP8 layout ({weight [1, out, in], weight_scale, input_scale[,
        smooth_scale]}, as magi_engine.loading.fp8.quantize_fp8_linear writes it) as an Fp8Linear on `device`
        (default: the weight's)."""
        get = lambda key: stored[key[len("p."):]]  # noqa: E731
        weight = fp8_linear_weight("p", get)
        device = weight.device if device is None else torch.device(device)
        with torch.device("meta"):  # placeholders only: every buffer is assigned below
            layer = cls(weight.shape[1], weight.shape[0])
        scales = fp8_linear_scales("p", get, weight.shape[1], keys=[f"p.{key}" for key in stored])
        layer.weight = weight.to(device)
        layer.weight_scale, layer.input_divisor, layer.activation_scale = (s.to(device) for s in scales)
        return layer

    def dequantized_weight(self) -> torch.Tensor:
        """The dense float32 weight the dequantising loader would make (magi_engine.loading.fp8)."""
        column = self.weight_scale * self.activation_scale / self.input_divisor
        return self.weight.float() * column[None, :]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, float8_e4m3fn"


def fp8_module_names(layers) -> list[str]:
    """Module names (e.g. "layers.3.mlp.fc1") of the linears MAGI-1 quantises in `layers`."""
    return [f"layers.{i}.{name}" for i in layers for name in FP8_PER_TENSOR + FP8_PER_CHANNEL]


def is_per_channel(name: str) -> bool:
    """True for the linears MAGI-1 stores per-channel (output projection, fc2), by module name."""
    return name.endswith(FP8_PER_CHANNEL)


def use_fp8_linears(dit: nn.Module, layers) -> nn.Module:
    """Replace the quantised linears of `layers` by Fp8Linear (on the meta device, before loading)."""
    for name in fp8_module_names(layers):
        owner_name, _, attr = name.rpartition(".")
        owner = dit.get_submodule(owner_name)
        linear = getattr(owner, attr)
        if linear.bias is not None:
            raise ValueError(f"{name} has a bias; MAGI-1's FP8 linears have none")
        with torch.device(linear.weight.device):  # meta stays meta: no host memory for the placeholder
            setattr(owner, attr, Fp8Linear(linear.in_features, linear.out_features))
    return dit
