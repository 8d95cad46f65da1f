"""Conditioning embeddings of the MAGI-1 DiT: timestep, caption and the learned null caption.

Follows MAGI-1 (arXiv 2505.13211; official `TimestepEmbedder` and `CaptionEmbedder`): the timestep
goes through a cos-first sinusoid of t·1000 and a two-layer MLP; the caption reaches the blocks only
through cross-attention (`text_proj`), while the adaLN path sees a two-valued "caption present /
dropped" flag taken from the last two rows of the learned null caption.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from magi_engine.config import DiTConfig


def timestep_sinusoid(t: torch.Tensor, size: int, scale: float, max_period: float = 10000.0) -> torch.Tensor:
    """[n] timesteps -> [n, size] features, cosines first then sines (MAGI-1 layout)."""
    half = size // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    # Same association order as the reference ((t·f)·scale) so float32 results agree bit for bit.
    angles = t.float()[:, None] * freqs[None] * scale
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepEmbedding(nn.Module):
    """t in [0, 1] (0 = noise, 1 = clean) -> condition vector of width `cond_size`."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.frequencies = config.timestep_frequencies
        self.scale = config.timestep_scale
        self.mlp = nn.Sequential(
            nn.Linear(config.timestep_frequencies, config.cond_size),
            nn.SiLU(),
            nn.Linear(config.cond_size, config.cond_size),
        )

    def forward(self, t: torch.Tensor, round_to: torch.dtype) -> torch.Tensor:
        # The reference rounds the sinusoid to the model's storage dtype before its float32 MLP.
        features = timestep_sinusoid(t, self.frequencies, self.scale).to(round_to).float()
        return self.mlp(features)


class CaptionEmbedding(nn.Module):
    """Projects text features for cross-attention and yields the adaLN caption flag vectors."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.text_proj = nn.Linear(config.caption_channels, config.xattn_size)
        self.flag_proj = nn.Linear(config.caption_channels, config.cond_size)
        self.null_caption = nn.Parameter(torch.zeros(config.caption_max_length, config.caption_channels))
        self.null_caption_tokens = config.null_caption_tokens

    def project_text(self, features: torch.Tensor) -> torch.Tensor:
        """[..., caption_channels] -> [..., xattn_size], SiLU-activated, float32."""
        return torch.nn.functional.silu(self.text_proj(features.float()))

    def flag_vectors(self, caption_present: torch.Tensor) -> torch.Tensor:
        """bool [...] -> [..., cond_size]: row -2 of the null caption when present, row -1 when dropped."""
        present = self.flag_proj(self.null_caption[-2].float())
        dropped = self.flag_proj(self.null_caption[-1].float())
        return torch.where(caption_present[..., None], present, dropped)

    def null_text(self) -> torch.Tensor:
        """The unconditional text: the first `null_caption_tokens` rows of the learned null caption."""
        return self.null_caption[: self.null_caption_tokens].detach().float()
