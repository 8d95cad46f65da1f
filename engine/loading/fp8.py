"""Dequantising MAGI-1's FP8 ("distill_quant") checkpoints to dense weights.

The official FP8 models (SandAI-org/MAGI-1, inference/model/dit/dit_module.py, classes
PerTensorQuantizedFp8Linear and PerChannelQuantizedFp8Linear) store, in layers 1..L-2, the linears
`self_attention.linear_qkv.{q,qx,k,v}` and `mlp.linear_fc1` per-tensor quantised and
`self_attention.linear_proj` and `mlp.linear_fc2` per-channel quantised, as float8_e4m3fn weights
[1, out, in] plus float32 scales. Their forward divides the input per input channel by a scale, clamps to
±448, rounds it to e4m3 and runs an FP8 GEMM whose result is multiplied by two scalars. Folding the
per-channel input divisor and the scalars into the weight gives one dense matrix W with
y ≈ x @ W.T that any GPU (or the CPU) can run:

* per-tensor:  W[j, i] = W8[j, i] · weight_scale · input_scale[0] / input_scale[i]
  (`input_scale` [in] divides the input, and the scalar-scale GEMM receives the same tensor as its
  A-scale, of which it reads the first element; with a constant `input_scale` this is W8 · weight_scale);
* per-channel: W[j, i] = W8[j, i] · weight_scale · input_scale / smooth_scale[i].

Not reproduced: the activation quantisation (clamp to ±448 and e4m3 rounding of x / scale). Outputs
therefore differ from the official FP8 path by that rounding (a few per cent per element, less on
sums), while the weights are exactly those of the checkpoint.
"""

from __future__ import annotations

import logging
from typing import Callable, Collection, Mapping

import torch

from magi_engine.errors import CheckpointError
from magi_engine.loading.module_loading import LazyTensor

log = logging.getLogger(__name__)

#: Largest finite float8_e4m3fn value.
E4M3_MAX = 448.0

#: Elements of a weight quantised at once by quantize_fp8_linear (16 MiB of float32 working copy).
QUANTIZE_BLOCK_ELEMENTS = 2**22

#: Scale tensors that accompany a quantised weight (they disappear from the dense state dict).
SCALE_SUFFIXES = ("weight_scale", "input_scale", "smooth_scale")


def _as_set(keys: Collection[str]) -> Collection[str]:
    return keys if isinstance(keys, (set, frozenset, Mapping)) else set(keys)


def is_fp8_linear(keys: Collection[str], prefix: str) -> bool:
    """True if `prefix` (e.g. "videodit_blocks.layers.3.mlp.linear_fc1") names a quantised linear."""
    keys = _as_set(keys)
    return all(f"{prefix}.{name}" in keys for name in ("weight", "weight_scale", "input_scale"))


def fp8_linear_prefixes(keys: Collection[str]) -> list[str]:
    """Every quantised linear in a key set, in key order."""
    keys = _as_set(keys)
    suffix = ".weight_scale"
    return [k[: -len(suffix)] for k in keys if k.endswith(suffix) and is_fp8_linear(keys, k[: -len(suffix)])]


def _scale(get: Callable[[str], torch.Tensor], key: str) -> torch.Tensor:
    value = get(key).to(torch.float32).flatten()
    if not bool(torch.isfinite(value).all()) or bool((value <= 0).any()):
        raise CheckpointError(f"The FP8 scale {key} holds zero, negative or non-finite values. "
                              "The checkpoint is damaged; download it again.")
    return value


def fp8_linear_scales(prefix: str, get: Callable[[str], torch.Tensor], fan_in: int, *,
                      keys: Collection[str] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(weight_scale [], input_divisor [in], activation_scale []) of one FP8 linear, checked.

    The official forward is y = (e4m3(x / input_divisor) @ W8ᵀ) · activation_scale · weight_scale, with
    input_divisor = input_scale and activation_scale = input_scale[0] (per-tensor kind), resp.
    input_divisor = smooth_scale and activation_scale = input_scale (per-channel kind).
    `keys` (optional) tells whether `smooth_scale` exists, which marks the per-channel kind; without it a
    KeyError from `get` means "absent".
    """
    weight_scale = _scale(get, f"{prefix}.weight_scale")
    input_scale = _scale(get, f"{prefix}.input_scale")
    if weight_scale.numel() != 1:
        raise CheckpointError(f"{prefix}.weight_scale has {weight_scale.numel()} values, expected 1. "
                              "The checkpoint does not match MAGI-1's FP8 layout.")
    smooth_key = f"{prefix}.smooth_scale"
    if keys is not None:
        smooth = _scale(get, smooth_key) if smooth_key in _as_set(keys) else None
    else:
        try:
            smooth = _scale(get, smooth_key)
        except KeyError:
            smooth = None
    if smooth is not None:  # per-channel: x / smooth_scale, GEMM scaled by input_scale · weight_scale
        if input_scale.numel() != 1 or smooth.numel() != fan_in:
            raise CheckpointError(f"{prefix}: per-channel FP8 scales have {input_scale.numel()} / {smooth.numel()} "
                                  f"values, expected 1 / {fan_in}. The checkpoint does not match MAGI-1's FP8 layout.")
        return weight_scale[0], smooth, input_scale[0]
    # per-tensor: x / input_scale, GEMM scaled by input_scale[0] · weight_scale
    if input_scale.numel() not in (1, fan_in):
        raise CheckpointError(f"{prefix}.input_scale has {input_scale.numel()} values, expected {fan_in}. "
                              "The checkpoint does not match MAGI-1's FP8 layout.")
    return weight_scale[0], input_scale.expand(fan_in).contiguous(), input_scale[0]


def fp8_linear_weight(prefix: str, get: Callable[[str], torch.Tensor]) -> torch.Tensor:
    """The stored float8_e4m3fn weight [out, in] of one FP8 linear (official shape [1, out, in])."""
    weight = get(f"{prefix}.weight")
    if weight.dim() == 3 and weight.shape[0] == 1:
        weight = weight[0]  # [1, out, in] → [out, in]
    if weight.dim() != 2:
        raise CheckpointError(f"The FP8 weight {prefix}.weight has shape {list(weight.shape)}, expected [1, out, in]. "
                              "The checkpoint does not match MAGI-1's FP8 layout.")
    if weight.dtype != torch.float8_e4m3fn:
        raise CheckpointError(f"The FP8 weight {prefix}.weight is stored as {weight.dtype}, expected float8_e4m3fn. "
                              "The checkpoint does not match MAGI-1's FP8 layout.")
    return weight


def dequantize_fp8_linear(prefix: str, get: Callable[[str], torch.Tensor], *,
                          keys: Collection[str] | None = None) -> torch.Tensor:
    """The dense float32 weight [out, in] equivalent to one FP8 linear (the caller casts it).

    `get(key)` returns a stored tensor; `keys` as in `fp8_linear_scales`.
    """
    weight = fp8_linear_weight(prefix, get)
    weight_scale, divisor, activation_scale = fp8_linear_scales(prefix, get, weight.shape[1], keys=keys)
    column = weight_scale * activation_scale / divisor  # [in]
    return weight.to(torch.float32) * column.unsqueeze(0)  # [out, in]


def quantize_fp8_linear(weight: torch.Tensor, input_amax: float, *, per_channel: bool) -> dict[str, torch.Tensor]:
    """A dense weight [out, in] in MAGI-1's FP8 layout ({weight, weight_scale, input_scale[, smooth_scale]}).

    Per-tensor scales: weight_scale = max|W| / 448 and one activation scale input_amax / 448 for every
    input channel (stored as a constant `input_scale` vector, resp. as `smooth_scale` with input_scale 1
    for the per-channel kind). A calibrated checkpoint could give each channel its own scale. The weight
    is read in blocks of rows, so the float32 working copies stay small (QUANTIZE_BLOCK_ELEMENTS) however
    large the matrix: quantising on load (magi_engine.dit.fp8_quantize) holds one layer, not its float32 twin.
    The weight and `weight_scale` are made where `weight` is, the activation scales on the CPU.
    """
    activation = torch.tensor(max(float(input_amax), 1e-6) / E4M3_MAX)
    rows = max(1, QUANTIZE_BLOCK_ELEMENTS // max(1, weight.shape[1]))
    blocks = [(start, min(start + rows, weight.shape[0])) for start in range(0, weight.shape[0], rows)]

    def dense(start: int, stop: int) -> torch.Tensor:
        w = weight[start:stop].detach().float()
        # Per-channel: the GEMM is scaled by input_scale = 1 and x is divided by smooth_scale = a, so the
        # stored matrix holds W·a: dequantised, W8·ws·1/a is W again.
        return w * activation if per_channel else w

    largest = torch.stack([dense(start, stop).abs().max() for start, stop in blocks]).max()
    weight_scale = (largest / E4M3_MAX).clamp_min(1e-30)
    quantised = torch.empty(weight.shape, dtype=torch.uint8, device=weight.device)
    for start, stop in blocks:  # float8 copies are not implemented everywhere: the bytes are copied
        quantised[start:stop] = to_e4m3(dense(start, stop) / weight_scale).view(torch.uint8)
    stored = {"weight": quantised.view(torch.float8_e4m3fn)[None], "weight_scale": weight_scale.reshape(1)}
    if per_channel:
        stored["input_scale"] = torch.ones(1)
        stored["smooth_scale"] = activation.expand(1, weight.shape[1]).contiguous()
    else:
        stored["input_scale"] = activation.expand(weight.shape[1]).contiguous()
    return stored


def to_e4m3(x: torch.Tensor) -> torch.Tensor:
    """Round to float8_e4m3fn as MAGI-1 does: clamp to ±448, through bfloat16."""
    return x.clamp(-E4M3_MAX, E4M3_MAX).to(torch.bfloat16).to(torch.float8_e4m3fn)


def dequantized_tensors(source) -> dict[str, LazyTensor]:
    """Lazy dense view of an FP8 checkpoint for `load_into_module`.

    `source` is a `CheckpointReader` (or anything with keys/shape/get). Each quantised linear appears
    as one float32 `<prefix>.weight` [out, in] computed when read; its scale tensors are dropped; every
    other key passes through unchanged. A checkpoint without FP8 linears comes out as it went in.
    """
    keys = source.keys()
    key_set = set(keys)
    prefixes = set(fp8_linear_prefixes(key_set))
    hidden = {f"{p}.{s}" for p in prefixes for s in SCALE_SUFFIXES}
    out: dict[str, LazyTensor] = {}
    for key in keys:
        if key in hidden:
            continue
        prefix = key[: -len(".weight")] if key.endswith(".weight") else None
        if prefix in prefixes:
            shape = tuple(source.shape(key))[-2:]
            out[key] = LazyTensor(shape, lambda p=prefix: dequantize_fp8_linear(p, source.get, keys=key_set))
        else:
            out[key] = LazyTensor(tuple(source.shape(key)), lambda k=key: source.get(k))
    if prefixes:
        log.info("dequantising %d FP8 linears to dense weights on load", len(prefixes))
    return out
