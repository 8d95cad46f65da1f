"""Learned-band 3-axis partial rotary position embedding of the MAGI-1 DiT.

Each token has coordinates (t, h, w): t is the absolute latent frame (so cached keys of earlier
chunks stay consistent), h and w are centred and rescaled so every resolution spans the area of a
16x16 token grid. Angles are coordinate x learned band (head_dim/8 bands per axis); they rotate the
first 3·2·bands dims of each head pairwise in "rotate-half" layout, the remaining dims pass through.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Token grid area the spatial coordinates are normalised to (16 x 16 tokens, i.e. 256 px at 8x8x2).
REFERENCE_GRID_AREA = 16 * 16


def spatial_coordinates(size: int, rescale: float, device: torch.device) -> torch.Tensor:
    """Centred positions of `size` tokens, stretched to a grid of size/rescale."""
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    if size == 1:
        return coords
    return coords / (size - 1) * (size / rescale - 1)


class RotaryEmbedding3D(nn.Module):
    def __init__(self, head_dim: int) -> None:
        super().__init__()
        num_bands = head_dim // 8
        self.bands = nn.Parameter(1.0 / 10000.0 ** (torch.arange(num_bands, dtype=torch.float32) / num_bands))

    def angles(self, first_frame: int, frames: int, height: int, width: int) -> torch.Tensor:
        """Angles [frames·height·width, 3·bands] for tokens ordered (t, h, w)."""
        device = self.bands.device
        rescale = math.sqrt(height * width / REFERENCE_GRID_AREA)
        t = torch.arange(first_frame, first_frame + frames, dtype=torch.float32, device=device)
        h = spatial_coordinates(height, rescale, device)
        w = spatial_coordinates(width, rescale, device)
        grid = torch.stack(torch.meshgrid(t, h, w, indexing="ij"), dim=-1)  # [T, H, W, 3]
        angles = grid[..., None] * self.bands.float()  # [T, H, W, 3, bands]
        return angles.reshape(frames * height * width, -1)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate x [..., tokens, heads, head_dim] by angles [tokens, A]; dims 2A.. are untouched.

    Pairs are (d, d + A) for d < A ("rotate-half", non-interleaved). Computed in float32.
    """
    a = angles.shape[-1]
    cos = torch.cos(angles)[:, None, :]  # [tokens, 1, A]
    sin = torch.sin(angles)[:, None, :]
    x = x.float()
    first, second, rest = x[..., :a], x[..., a : 2 * a], x[..., 2 * a :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos, rest], dim=-1)
