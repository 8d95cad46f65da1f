"""studio-mini's draft against its final quality on this CPU: seconds per 24-frame chunk, interleaved in one process.

    python benchmarks/draft_cpu.py [--reps 2] [--chunks 2] [--frames drafts.npz]

The same prompts and seeds made as the app makes them: at the project's settings (128x128, the model's 8 steps),
as the app's Draft mode makes them (magi_engine.draft.draft_request: the one definition of a draft, also
`magi-studio generate --draft`; for studio-mini, which already runs 8 steps, that is half the size, 64x64), and
at 4 steps and full size (the other way a draft could have gone). The three alternate within each repetition,
so a machine whose load changes slows them alike; the ratio is the figure to read. `--frames` keeps the last
frames of each, to look at.
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    session = GenerationSession.load("studio-mini", device="cpu")
    final = session.default_sampling
    width, height = session.bundle.width, session.bundle.height

    def request(steps: int) -> GenerationRequest:
        sampling = dataclasses.replace(final, num_steps=steps, window=min(final.window, steps))
        return GenerationRequest(chunks=tuple(ChunkSpec(PROMPTS[i % 4], i) for i in range(args.chunks)),
                                 width=width, height=height, sampling=sampling, previews=False)

    variants = {"final": request(final.num_steps),
                "draft": draft_request(request(final.num_steps), final, distilled=final.guidance.mode == "distilled"),
                "final size, 4 steps": request(4)}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    frames = {}
    for rep in range(args.reps):
        for name, variant in variants.items():
            started, made = time.perf_counter(), []
            for event in session.generate(variant):
                if isinstance(event, ChunkFinished):
                    made.append(event.frames)
            seconds[name].append(round((time.perf_counter() - started) / args.chunks, 2))
            frames[name] = np.concatenate(made)
            print(json.dumps({"rep": rep, "variant": name, "seconds_per_chunk": seconds[name][-1]}), flush=True)
    summary = {name: {"size": f"{v.width}x{v.height}", "steps": v.sampling.num_steps, "seconds_per_chunk": seconds[name],
                      "vs_final": round(sum(seconds[name]) / sum(seconds["final"]), 2)} for name, v in variants.items()}
    print(json.dumps({"threads": args.threads, "chunks": args.chunks, "load": os.getloadavg()[0], **summary}))
    if args.frames is not None:
        np.savez_compressed(args.frames, **{name.replace(" ", "_").replace(",", ""): f for name, f in frames.items()})


if __name__ == "__main__":
    main()
