"""Int8 storage of weight matrices (our bundle format and training transfers), dequantised on load.

A matrix W [out, in] is stored as `key` = round(W / s) in int8 and `key.int8_scale` = s [out] in float32,
s = max|W[j]| / 127 per output row, so every row keeps its own range. The rounding error is at most
s/2 per weight, about 1% of a row's standard deviation for bell-shaped weights: small beside what one
training step changes, and it halves a model's files against fp16. Only matrices of at least
`MIN_ELEMENTS` are stored this way; vectors (norms, biases) and small tables stay floating point.
"""

from __future__ import annotations

from typing import Mapping

import torch

from magi_engine.errors import CheckpointError
from magi_engine.loading.module_loading import LazyTensor

SCALE_SUFFIX = ".int8_scale"
MIN_ELEMENTS = 4096


def quantize_int8(tensors: Mapping[str, torch.Tensor], float_dtype: torch.dtype = torch.float16
                  ) -> dict[str, torch.Tensor]:
    """A state dict with its large matrices in int8 (+ row scales) and other floats in `float_dtype`."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if value.is_floating_point() and value.dim() == 2 and value.numel() >= MIN_ELEMENTS:
            rows = value.detach().float()
            scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            out[key] = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
            out[key + SCALE_SUFFIX] = scale.contiguous()
        else:
            out[key] = (value.detach().to(float_dtype) if value.is_floating_point() else value.detach()).contiguous()
    return out


def _dequantize(key: str, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    if weight.dtype != torch.int8 or weight.dim() != 2 or scale.shape != (weight.shape[0],):
        raise CheckpointError(f"The int8 weight {key} ({weight.dtype}, {list(weight.shape)}) does not match its "
                              f"scale ({list(scale.shape)}). The model files are damaged; reinstall the model.")
    scale = scale.float()
    if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
        raise CheckpointError(f"The scale of {key} holds zero, negative or non-finite values. "
                              "The model files are damaged; reinstall the model.")
    return weight.float() * scale[:, None]


def _int8_keys(keys) -> set[str]:
    """The weights stored in int8 (those with a scale beside them); a scale without its weight is damage."""
    key_set = set(keys)
    weights = {k[: -len(SCALE_SUFFIX)] for k in key_set if k.endswith(SCALE_SUFFIX)}
    orphans = sorted(w + SCALE_SUFFIX for w in weights - key_set)
    if orphans:
        raise CheckpointError(f"{orphans[0]} has no weight beside it. The model files are damaged; reinstall the model.")
    return weights


def dequantize_int8(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32/float state dict a `quantize_int8` dict stands for (other tensors unchanged)."""
    stored = _int8_keys(tensors)
    return {k: _dequantize(k, v, tensors[k + SCALE_SUFFIX]) if k in stored else v
            for k, v in tensors.items() if not k.endswith(SCALE_SUFFIX)}


def int8_dequantized_tensors(source) -> dict[str, LazyTensor]:
    """Lazy float view of a checkpoint that may hold int8 matrices, for `load_into_module`.

    `source` has keys/shape/get (a `CheckpointReader`); scale keys disappear, their weights come out float32.
    """
    keys = list(source.keys())
    stored = _int8_keys(keys)
    return {k: LazyTensor(tuple(source.shape(k)),
                          (lambda k=k: _dequantize(k, source.get(k), source.get(k + SCALE_SUFFIX))) if k in stored
                          else (lambda k=k: source.get(k)))
            for k in keys if not k.endswith(SCALE_SUFFIX)}
