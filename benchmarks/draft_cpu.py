"""studio-mini's draft against its final quality on this CPU: seconds per 24-frame chunk, interleaved in one process.

    python benchmarks/draft_cpu.py [--reps 2] [--chunks 2] [--frames drafts.npz]

The same prompts and seeds at the project's settings (128x128, the model's 8 steps), at half the size (64x64,
8 steps: a draft as MAGI-1's are made) and at the full size in 4 steps (studio-mini's draft, by
magi_engine.draft's rule for small pictures: the one definition of a draft, for the app's Draft mode and
`magi-studio generate --draft`). The three alternate within each repetition, so a machine whose load changes
slows them alike; the ratio is the figure to read. Each is timed twice: wall-clock seconds, and the CPU seconds
the process used (all its threads), which other processes on a shared machine disturb far less. `--frames` keeps
the last frames of each, to look at; `--compare FILE.npz [--figure strip.png]` reads them back and prints how far
each is from the final render (mean absolute difference per pixel and channel, 0-255, the smaller pictures
scaled up), and draws frames 1, 13 and 24 of each chunk in a row per variant.

    python benchmarks/draft_cpu.py --compare drafts.npz --figure benchmarks/results/draft_cpu_frames.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from magi_engine.draft import draft_request  # noqa: E402
from magi_engine.events import ChunkFinished  # noqa: E402
from magi_engine.requests import ChunkSpec, GenerationRequest  # noqa: E402
from magi_engine.session import GenerationSession  # noqa: E402

PROMPTS = ("a red ball falls and bounces on white", "the red ball rolls to the right", "the red ball stays still",
           "the red ball grows")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--frames", type=Path, help="an .npz to keep each variant's frames in")
    parser.add_argument("--compare", type=Path, help="an .npz written by --frames: compare, generate nothing")
    parser.add_argument("--figure", type=Path, help="with --compare: a PNG of the variants' frames, a row each")
    args = parser.parse_args()
    if args.compare is not None:
        return compare(args.compare, args.figure)
    torch.set_num_threads(args.threads)
    session = GenerationSession.load("studio-mini", device="cpu")
    final = session.default_sampling
    width, height = session.bundle.width, session.bundle.height

    def request(steps: int) -> GenerationRequest:
        sampling = dataclasses.replace(final, num_steps=steps, window=min(final.window, steps))
        return GenerationRequest(chunks=tuple(ChunkSpec(PROMPTS[i % 4], i) for i in range(args.chunks)),
                                 width=width, height=height, sampling=sampling, previews=False)

    half = dataclasses.replace(request(final.num_steps), width=width // 2, height=height // 2)
    variants = {"final": request(final.num_steps), "half size": half, "4 steps": request(4)}
    draft = draft_request(request(final.num_steps), final, distilled=final.guidance.mode == "distilled")
    print(json.dumps({"draft_request": f"{draft.width}x{draft.height}, {draft.sampling.num_steps} steps"}), flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    frames = {}
    for rep in range(args.reps):
        for name, variant in variants.items():
            started, started_cpu, made = time.perf_counter(), time.process_time(), []
            for event in session.generate(variant):
                if isinstance(event, ChunkFinished):
                    made.append(event.frames)
            seconds[name].append(round((time.perf_counter() - started) / args.chunks, 2))
            cpu[name].append(round((time.process_time() - started_cpu) / args.chunks, 2))
            frames[name] = np.concatenate(made)
            print(json.dumps({"rep": rep, "variant": name, "seconds_per_chunk": seconds[name][-1],
                              "cpu_seconds_per_chunk": cpu[name][-1], "load": os.getloadavg()[0]}), flush=True)
    summary = {name: {"size": f"{v.width}x{v.height}", "steps": v.sampling.num_steps, "seconds_per_chunk": seconds[name],
                      "cpu_seconds_per_chunk": cpu[name],
                      "cpu_vs_final": round(sum(cpu[name]) / sum(cpu["final"]), 2),
                      "vs_final": round(sum(seconds[name]) / sum(seconds["final"]), 2)} for name, v in variants.items()}
    print(json.dumps({"threads": args.threads, "chunks": args.chunks, "load": os.getloadavg()[0], **summary}))
    if args.frames is not None:
        np.savez_compressed(args.frames, **{name.replace(" ", "_").replace(",", ""): f for name, f in frames.items()})


def compare(path: Path, figure: Path | None) -> None:
    import cv2

    variants = np.load(path)
    final = variants["final"]
    height, width = final.shape[1:3]

    def scaled(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])

    print(json.dumps({name: round(float(np.abs(scaled(variants[name], (width, height)).astype(np.float32)
                                               - final.astype(np.float32)).mean()), 1) for name in variants.files}))
    if figure is not None:
        picked = [i for start in range(0, len(final), 24) for i in (start, start + 12, start + 23)]
        rows = [np.concatenate(list(scaled(variants[name][picked], (width, height))), 1) for name in variants.files]
        cv2.imwrite(str(figure), np.concatenate(rows, 0)[..., ::-1])


if __name__ == "__main__":
    main()
