"""Training data from the procedural world: VAE clips and latent storyboards for the DiT.

Workers render storyboards from seeds (training uses seeds below 1_000_000; the evaluator draws its
held-out storyboards above 10_000_000). The DiT trains on latents: a fixed set of 8-chunk storyboards
is rendered and encoded once with the trained VAE, kept on the CPU, and sampled with fresh caption
wordings every time.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lab.world.captions import storyboard_captions
from lab.world.scene import BACKGROUNDS, CHUNK_FRAMES
from lab.world.storyboard import random_storyboard

log = logging.getLogger(__name__)

TRAIN_SEED_LIMIT = 1_000_000
CAPTION_VARIANTS = 6


def _worker_seed(base: int) -> tuple[int, int]:
    info = get_worker_info()
    return (base + (info.id if info else 0)) % TRAIN_SEED_LIMIT, (info.num_workers if info else 1)


class VAEClips(IterableDataset):
    """Endless 12-frame clips [12, 128, 128, 3] uint8; some are one image repeated (how images are encoded)."""

    def __init__(self, seed: int, frames: int = 12, still_fraction: float = 0.15) -> None:
        self.seed, self.frames, self.still_fraction = seed, frames, still_fraction

    def __iter__(self):
        seed, stride = _worker_seed(self.seed)
        while True:
            rng = np.random.default_rng(seed)
            board = random_storyboard(rng, 1)
            video = board.render()
            start = int(rng.integers(0, CHUNK_FRAMES - self.frames + 1))
            clip = video[start:start + self.frames]
            if rng.random() < self.still_fraction:
                clip = np.repeat(clip[:1], self.frames, axis=0)
            yield torch.from_numpy(np.ascontiguousarray(clip))
            seed = (seed + stride) % TRAIN_SEED_LIMIT


def caption_variants(board, seed: int, tracks: list) -> list[list[str]]:
    """The CAPTION_VARIANTS wordings of a training storyboard's chunks ([variant][chunk]), seeded by its seed."""
    return [storyboard_captions(board, seed * CAPTION_VARIANTS + v, tracks=tracks) for v in range(CAPTION_VARIANTS)]


def object_cells(frames: np.ndarray, background: np.ndarray, cell: int = 8) -> np.ndarray:
    """Where any object is during each chunk, at the latent's resolution: bool [chunks, H/cell, W/cell].

    A cell is marked when an object covers any of its pixels in any frame of the chunk, so the mark
    holds the whole path the chunk's motion sweeps (what the DiT's loss weights more: see make_batch).
    """
    drawn = np.any(frames != background[None], axis=-1)  # [T, H, W]
    t, h, w = drawn.shape
    return drawn.reshape(t // CHUNK_FRAMES, CHUNK_FRAMES, h // cell, cell, w // cell, cell).any(axis=(1, 3, 5))


class RenderedStoryboards(IterableDataset):
    """Storyboards seeds [first, first + count): frames [chunks·24, 128, 128, 3] uint8, caption variants and
    each chunk's object cells (object_cells).

    `two_objects` is the share of storyboards with two objects (the world's own default when None).
    """

    def __init__(self, first: int, count: int, chunks: int, two_objects: float | None = None) -> None:
        self.first, self.count, self.chunks = first, count, chunks
        self.world_options = {} if two_objects is None else {"two_objects": two_objects}

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for seed in range(self.first + worker, self.first + self.count, workers):
            board = random_storyboard(np.random.default_rng(seed), self.chunks, **self.world_options)
            tracks = board.tracks()
            frames = board.render()
            captions = caption_variants(board, seed, tracks)
            cells = object_cells(frames, BACKGROUNDS[board.background].render())
            yield seed, torch.from_numpy(frames), captions, torch.from_numpy(cells)


def encode_storyboards(vae, *, first: int, count: int, chunks: int, device, workers: int = 8,
                       batch: int = 8, two_objects: float | None = None) -> dict:
    """Render and encode `count` storyboards. Returns latents [count, 16, chunks·6, 16, 16] (bf16, CPU),
    image latents of each first frame [count, 16, 1, 16, 16], object cells [count, chunks, 16, 16] (uint8),
    captions [count][variant][chunk], seeds."""
    loader = DataLoader(RenderedStoryboards(first, count, chunks, two_objects), batch_size=batch, num_workers=workers,
                        collate_fn=lambda items: items)
    latents, images, cells, captions, seeds = [], [], [], [], []
    vae_dtype = next(vae.parameters()).dtype
    with torch.inference_mode():
        for items in loader:
            frames = torch.stack([f for _, f, _, _ in items]).to(device)  # [B, T, H, W, 3]
            pixels = frames.permute(0, 4, 1, 2, 3).to(vae_dtype) / 127.5 - 1  # [B, 3, T, H, W]
            latents.append((vae.encode(pixels) * vae.config.scale_factor).to(torch.bfloat16).cpu())
            stills = pixels[:, :, :1].repeat(1, 1, 4, 1, 1)
            images.append((vae.encode(stills)[:, :, :1] * vae.config.scale_factor).to(torch.bfloat16).cpu())
            cells.append(torch.stack([m for _, _, _, m in items]).to(torch.uint8))
            captions += [c for _, _, c, _ in items]
            seeds += [s for s, _, _, _ in items]
            if len(seeds) % (batch * 50) == 0:
                log.info("encoded %d / %d storyboards", len(seeds), count)
    return {"latents": torch.cat(latents), "images": torch.cat(images), "object_cells": torch.cat(cells),
            "captions": captions, "seeds": seeds}


def latent_std(vae, device, batches: int = 4, batch: int = 16, seed: int = 777_000) -> float:
    """Standard deviation of the VAE's posterior means over world clips (sets its scale factor)."""
    loader = DataLoader(VAEClips(seed), batch_size=batch, num_workers=2)
    values = []
    with torch.inference_mode():
        for i, clips in enumerate(loader):
            pixels = clips.to(device).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
            values.append(vae.encode(pixels.to(next(vae.parameters()).dtype)).float().flatten())
            if i + 1 == batches:
                break
    return float(torch.cat(values).std())


def cosine_lr(step: int, total: int, warmup: int, base: float, floor: float = 0.1) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
