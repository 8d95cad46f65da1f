"""Tiny random components of the MAGI-1 architecture for engine tests (CPU, float32, milliseconds)."""

from __future__ import annotations

import torch

from engine.config import GuidanceConfig, SamplingConfig
from engine.dit.model import MagiDiT
from engine.sampler.loop import ChunkPlan
from engine.variants import tiny_dit_config

LATENT_H, LATENT_W = 4, 6


def randomize_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Non-trivial random weights everywhere (norm offsets too, so the "+1" convention matters)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
            elif name.endswith("bands"):
                p.mul_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return module


def tiny_dit(*, distilled: bool = False, gated: bool = False, seed: int = 0) -> MagiDiT:
    return randomize_(MagiDiT(tiny_dit_config(distilled=distilled, gated=gated)), seed).eval()


def tiny_sampling(*, window: int = 4, steps: int = 8, distilled: bool = False) -> SamplingConfig:
    return SamplingConfig(num_steps=steps, window=window,
                          guidance=GuidanceConfig(mode="distilled" if distilled else "cfg3"))


def chunk_noise(seed: int) -> torch.Tensor:
    return torch.randn(1, 16, 6, LATENT_H, LATENT_W, generator=torch.Generator().manual_seed(seed))


def chunk_text(seed: int, tokens: int = 5, channels: int = 32) -> torch.Tensor:
    return torch.randn(tokens, channels, generator=torch.Generator().manual_seed(10_000 + seed))


def plans(indices, *, text_seed_offset: int = 0) -> list[ChunkPlan]:
    return [ChunkPlan(i, chunk_noise(i), chunk_text(i + text_seed_offset, tokens=3 + i % 4)) for i in indices]
