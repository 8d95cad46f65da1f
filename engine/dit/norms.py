"""Normalisation layers of the MAGI-1 DiT.

MAGI-1 stores the gamma of most of its LayerNorms "zero-centred": the tensor in the checkpoint is
gamma - 1, and the layer adds the 1 back at run time, in the parameter's own dtype. Keeping that
convention (rather than folding the 1 in at load time) reproduces the official rounding exactly for
the norms that run in bfloat16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OnePlusLayerNorm(nn.Module):
    """LayerNorm whose effective gamma is `1 + weight` (MAGI-1's `apply_layernorm_1p`)."""

    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.size = size
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.size,), self.weight + 1, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.size}, eps={self.eps}"
