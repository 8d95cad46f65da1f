"""Where does studio-mini lose motion? Denoise a chunk from the real video partly noised, not from noise.

    python benchmarks/motion_from_noise_level.py --storyboards 24 --out benchmarks/results/motion_from_noise_level.json

For held-out two-chunk storyboards (the evaluator's seeds), the first chunk is given clean (the real
video's latent, as a continuation would have it) and the second is made with its own prompt, starting
at schedule step k of the shipped sampler (window 1) from t_k·real + (1 - t_k)·noise instead of from
pure noise at k = 0. If motion comes right from some t_k on, the model knows how to move the object
once the video holds that much of it, and what fails is committing to it earlier; if not even a mostly
clean start moves right, the model cannot draw the motion at all. Reported per start: motion right
(the evaluator's judge), and the steady moves' travel and direction against the storyboard.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from magi_engine.config import CHUNK_LATENT_FRAMES
from magi_engine.sampler.denoiser import WindowDenoiser
from magi_engine.sampler.loop import chunk_noise
from magi_engine.sampler.schedule import flow_schedule
from magi_engine.sampler.window import window_steps
from magi_engine.session import GenerationSession
from lab.world import metrics as M
from lab.world.detect import Detector
from lab.world.evaluate import HELDOUT_SEED, heldout
from lab.world.scene import CHUNK_FRAMES


def denoise_from(session: GenerationSession, context: torch.Tensor, real: torch.Tensor, prompt: str, seed: int,
                 start: int) -> torch.Tensor:
    """Chunk 1 after the clean chunk 0 `context`, from step `start` of the schedule ([16, 6, h, w] latents)."""
    bundle = session.bundle
    sampling = dataclasses.replace(bundle.sampling, window=1)
    schedule = flow_schedule(sampling.num_steps, sampling.shift, sampling.shortcut_mode)
    height, width = real.shape[-2:]
    denoiser = WindowDenoiser(bundle.dit, sampling, schedule, {1: session.encode_prompt(prompt, 1)},
                              bundle.dit.null_text(), bundle.dit.config.tokens_per_chunk(height, width))
    denoiser.add_clean_chunk(0, context[None])
    t0 = float(schedule[start])
    x = t0 * real[None] + (1 - t0) * chunk_noise(seed, height * 8, width * 8)
    for step in window_steps(1, 2, sampling.num_steps, 1):
        k = step.steps[0]
        if k >= start:
            x = x + denoiser.velocity(x, step) * (schedule[k + 1] - schedule[k])
    return x[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="studio-mini")
    parser.add_argument("--storyboards", type=int, default=24)
    parser.add_argument("--starts", default="0,2,4,6,7", help="schedule steps to start from")
    parser.add_argument("--out", type=Path)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    session = GenerationSession.load(args.model, device="cpu")
    starts = [int(s) for s in args.starts.split(",")]
    sampling = session.bundle.sampling
    schedule = flow_schedule(sampling.num_steps, sampling.shift, sampling.shortcut_mode)
    scores: dict[int, list[M.ChunkScore]] = {k: [] for k in starts}
    for n in range(args.storyboards):
        seed = HELDOUT_SEED + n
        board, prompts = heldout(seed, 2)
        frames = board.render()
        latents = session.encode_video(frames, frames.shape[2], frames.shape[1])
        context, real = latents[:, :CHUNK_LATENT_FRAMES], latents[:, CHUNK_LATENT_FRAMES:]
        for k in starts:
            with torch.inference_mode():
                made = denoise_from(session, context, real, prompts[1], seed, k)
            video = frames.copy()
            video[CHUNK_FRAMES:] = session.decode(made)
            scores[k] += [s for s in M.score_video(board, Detector(board.background).detect_video(video))
                          if s.chunk == 1]
    results = {"command": shlex.join(["python", "benchmarks/motion_from_noise_level.py", *argv]),
               "model": args.model, "storyboards": args.storyboards, "runtime_s": round(time.perf_counter() - started, 1),
               "starts": []}
    for k in starts:
        summary = M.chunk_summary(scores[k])
        results["starts"].append({"step": k, "t": round(float(schedule[k]), 4), "motion": summary["motion"],
                                  "colour_shape": summary["colour_shape"],
                                  "travel_ratio_median": summary["steady_moves"]["travel_ratio"].get("median"),
                                  "direction_off_median_deg": summary["steady_moves"]["direction_off_deg"].get("median"),
                                  "chunks": summary["chunks"]})
        print(json.dumps(results["starts"][-1]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
