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

from engine.errors import CheckpointError
from engine.loading.module_loading import LazyTensor

log = logging.getLogger(__name__)

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


def dequantize_fp8_linear(prefix: str, get: Callable[[str], torch.Tensor], *,
                          keys: Collection[str] | None = None) -> torch.Tensor:
    """The dense float32 weight [out, in] equivalent to one FP8 linear (the caller casts it).

    `get(key)` returns a stored tensor; `keys` (optional) tells whether `smooth_scale` exists, which marks
    the per-channel kind; without it a KeyError from `get` means "absent".
    """
    weight = get(f"{prefix}.weight")
    if weight.dim() == 3 and weight.shape[0] == 1:
        weight = weight[0]  # [1, out, in] → [out, in]
    if weight.dim() != 2:
        raise CheckpointError(f"The FP8 weight {prefix}.weight has shape {list(weight.shape)}, expected [1, out, in]. "
                              "The checkpoint does not match MAGI-1's FP8 layout.")
    fan_in = weight.shape[1]
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
        column = weight_scale * input_scale / smooth  # [in]
    else:  # per-tensor: x / input_scale, GEMM scaled by input_scale[0] · weight_scale
        if input_scale.numel() not in (1, fan_in):
            raise CheckpointError(f"{prefix}.input_scale has {input_scale.numel()} values, expected {fan_in}. "
                                  "The checkpoint does not match MAGI-1's FP8 layout.")
        column = weight_scale * input_scale[0] / input_scale  # [in] (or [1])
    return weight.to(torch.float32) * column.unsqueeze(0)  # [out, in]


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
