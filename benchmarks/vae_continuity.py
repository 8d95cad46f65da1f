"""How smooth is motion after the VAE alone? The evaluator's held-out storyboards, rendered, encoded and
decoded chunk by chunk as generation decodes them, then scored for continuity like a generated video.

    python benchmarks/vae_continuity.py --vae resources/models/studio-mini --storyboards 64 --out OUT.json

No DiT is involved: this is the floor the continuity target (a boundary jump at most twice the typical
frame-to-frame step) can reach with this VAE. Also reported: the stutter, the mean step across the
boundary between two latent frames (every fourth frame) over the mean step inside one, on chunks that
translate the object (1 for the rendered video; a decoder that draws each latent frame's four frames
in one place scores high), and the reconstruction PSNR. --vae is a model folder (model.json) or a
training run's folder (vae.safetensors + vae.json).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.record import publish  # noqa: E402
from lab.training.train_vae import load_trained_vae  # noqa: E402
from magi_engine.vae import VideoVAE  # noqa: E402
from lab.world import metrics as M  # noqa: E402
from lab.world.evaluate import HELDOUT_SEED, heldout, score_board  # noqa: E402
from lab.world.scene import CHUNK_FRAMES  # noqa: E402


def round_trip(vae: VideoVAE, frames: np.ndarray) -> np.ndarray:
    """Encode and decode each 24-frame chunk on its own, as generation decodes its chunks."""
    chunks = []
    for c in range(len(frames) // CHUNK_FRAMES):
        clip = torch.from_numpy(np.ascontiguousarray(frames[c * CHUNK_FRAMES:(c + 1) * CHUNK_FRAMES]))
        chunks.append(vae.latents_to_pixels(vae.pixels_to_latents(clip.to(vae.device))).cpu().numpy())
    return np.concatenate(chunks)


def measure(vae: VideoVAE | None, storyboards: int, seed: int) -> dict:
    """Continuity, stutter and PSNR over held-out storyboards (vae None: the rendered videos themselves)."""
    items, across, inside, mse = [], [], [], []
    for i in range(storyboards):
        board, _ = heldout(HELDOUT_SEED + seed + i, 4)
        frames = board.render()
        video = frames if vae is None else round_trip(vae, frames)
        mse.append(float(np.mean((video.astype(np.float32) - frames.astype(np.float32)) ** 2)))
        scored = score_board(board, video)
        items += [(board, o, c) for o, c in enumerate(scored.continuity)]
        for o, obj in enumerate(board.objects):
            a, b = M.latent_frame_steps(M.track(scored.detections, obj.colour), [m[o] for m in board.motions])
            across, inside = across + a, inside + b
    summary = M.continuity_summary(items)
    return {"continuity_mean_ratio": summary["mean_ratio"], "continuity_median_ratio": summary["ratio"].get("median"),
            "within_2": summary["within_2"], "typical_px_median": summary["typical_px"].get("median"),
            "stutter": round(float(np.mean(across) / max(np.mean(inside), 1e-6)), 3),
            "step_across_latent_frames_px": round(float(np.mean(across)), 3),
            "step_inside_latent_frames_px": round(float(np.mean(inside)), 3),
            "psnr_db": None if vae is None else round(float(10 * np.log10(255.0 ** 2 / max(np.mean(mse), 1e-9))), 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", type=Path, action="append", required=True,
                        help="a model folder or a training run's folder (repeat to compare several)")
    parser.add_argument("--storyboards", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1000, help="the evaluator's --seed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = {"rendered": measure(None, args.storyboards, args.seed)}
    for folder in args.vae:
        results[str(folder)] = measure(load_trained_vae(folder, torch.device(args.device)), args.storyboards, args.seed)
    publish(__file__, argv, {"storyboards": args.storyboards, "seconds": round(time.perf_counter() - started, 1),
                             "results": results}, args.out)


if __name__ == "__main__":
    main()
