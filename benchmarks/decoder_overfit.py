"""Can the VAE's decoder learn to draw motion inside a latent frame at all? A capacity test on the CPU.

    python benchmarks/decoder_overfit.py --vae resources/models/studio-mini --depth 1 --depth 3 --steps 300
    python benchmarks/decoder_overfit.py --depth 1 --motion-weight 8 --steps 300

A fixed set of synthetic clips (one ball of one colour on a plain background, moving in a straight
line at 1–4 px a frame) is decoded by the shipped decoder and by copies of it fine-tuned on exactly
those clips, decoder only (the encoder stays, as `train_vae --decoder-only` does), one copy per
decoder depth (deeper ones grown without changing what they decode, lab/training/grow.py).
Reported per arm: the stutter on those clips (mean step of the ball's centroid across the boundary
between two latent frames over the mean step inside one; 1 for the clips themselves) and their PSNR.
If a decoder cannot lose its stutter even on clips it is fitted to, longer training on more data
will not take it away either; what depth can is the question.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.record import publish  # noqa: E402
from lab.training.train_vae import load_trained_vae, vae_loss  # noqa: E402
from magi_engine.vae import VideoVAE  # noqa: E402

FRAMES, SIZE, LATENT_FRAME = 12, 128, 4
COLOURS = [(220, 40, 40), (40, 90, 220), (40, 170, 60), (240, 200, 40)]
BACKGROUNDS = [(255, 255, 255), (30, 30, 30), (200, 220, 240)]


def ball_clips(count: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """uint8 [count, FRAMES, SIZE, SIZE, 3] and each clip's ball colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    clips, colours = np.empty((count, FRAMES, SIZE, SIZE, 3), np.uint8), []
    for n in range(count):
        colour, background = COLOURS[n % len(COLOURS)], BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
        radius = rng.uniform(8, 12)
        speed, angle = rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
        velocity = speed * np.array([np.cos(angle), np.sin(angle)])
        margin = radius + 2
        start = rng.uniform(margin, SIZE - margin, 2)
        end = np.clip(start + velocity * (FRAMES - 1), margin, SIZE - margin)
        clips[n] = background
        for f in range(FRAMES):
            cx, cy = start + (end - start) * f / (FRAMES - 1)
            clips[n, f][(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = colour
        colours.append(colour)
    return clips, colours


def centroids(frames: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """[T, 2] centroid of the pixels within 60 levels of `colour` (NaN where none)."""
    near = np.abs(frames.astype(np.int16) - np.array(colour, np.int16)).max(axis=-1) < 60
    out = np.full((len(frames), 2), np.nan)
    for f, mask in enumerate(near):
        ys, xs = np.nonzero(mask)
        if xs.size:
            out[f] = xs.mean(), ys.mean()
    return out


def stutter(videos: np.ndarray, colours: list) -> float:
    across, inside = [], []
    for video, colour in zip(videos, colours):
        steps = np.hypot(*np.diff(centroids(video, colour), axis=0).T)
        for i, step in enumerate(steps):
            if not np.isnan(step):
                (across if (i + 1) % LATENT_FRAME == 0 else inside).append(step)
    return float(np.mean(across) / np.mean(inside))


@torch.no_grad()
def round_trip(vae: VideoVAE, clips: np.ndarray) -> np.ndarray:
    return np.stack([vae.latents_to_pixels(vae.pixels_to_latents(torch.from_numpy(c))).numpy() for c in clips])


def score(vae: VideoVAE | None, clips: np.ndarray, colours: list) -> dict:
    videos = clips if vae is None else round_trip(vae.eval(), clips)
    mse = np.mean((videos.astype(np.float64) - clips) ** 2)
    return {"stutter": round(stutter(videos, colours), 3),
            "psnr_db": None if vae is None else round(float(10 * np.log10(255.0 ** 2 / mse)), 2)}


def fit(vae: VideoVAE, clips: np.ndarray, steps: int, batch: int, lr: float, seed: int, motion_weight: float
        ) -> VideoVAE:
    vae.train()
    vae.encoder.requires_grad_(False)
    trained = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    pixels = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # [N, 3, T, H, W]
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        picked = torch.randperm(len(pixels), generator=generator)[:batch]
        loss, _ = vae_loss(vae, pixels[picked], kl_weight=0.0, motion_weight=motion_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
    return vae.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", type=Path, default=Path("resources/models/studio-mini"))
    parser.add_argument("--depth", type=int, action="append", required=True, help="decoder depth of an arm (repeat)")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--motion-weight", type=float, action="append",
                        help="train_vae's --motion-weight of an arm (repeat; default one arm at 0)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    clips, colours = ball_clips(args.clips, args.seed)
    results = {"clips": score(None, clips, colours),
               "shipped": score(load_trained_vae(args.vae, torch.device("cpu")), clips, colours)}
    for depth in args.depth:
        for motion_weight in args.motion_weight or [0.0]:
            arm_started = time.perf_counter()
            vae = fit(load_trained_vae(args.vae, torch.device("cpu"), decoder_depth=depth), clips, args.steps,
                      args.batch, args.lr, args.seed, motion_weight)
            results[f"fitted, decoder depth {depth}, motion weight {motion_weight:g}"] = {
                **score(vae, clips, colours), "minutes": round((time.perf_counter() - arm_started) / 60, 1)}
            print(json.dumps(results), flush=True)
    publish(__file__, argv, {"seconds": round(time.perf_counter() - started, 1), "results": results}, args.out)


if __name__ == "__main__":
    main()
