"""studio-mini on this CPU: load time, and seconds per 24-frame chunk end to end (text, denoising, decode).

    python benchmarks/studio_mini_cpu.py --chunks 4 [--steps 8] [--window 4] [--model FOLDER]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from magi_engine.events import ChunkFinished, Finished  # noqa: E402
from magi_engine.requests import ChunkSpec, GenerationRequest  # noqa: E402
from magi_engine.session import GenerationSession  # noqa: E402

PROMPTS = ("a red ball falls and bounces on white", "the red ball rolls to the right", "the red ball stays still",
           "the red ball grows")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="studio-mini", help="studio-mini or a model folder (e.g. an older version)")
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--window", type=int)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    session = GenerationSession.load(args.model, device="cpu")
    load_s = time.perf_counter() - started
    sampling = session.default_sampling
    if args.steps:
        sampling = dataclasses.replace(sampling, num_steps=args.steps)
    if args.window:
        sampling = dataclasses.replace(sampling, window=args.window)
    request = GenerationRequest(chunks=tuple(ChunkSpec(PROMPTS[i % 4], i) for i in range(args.chunks)),
                                width=session.bundle.width, height=session.bundle.height, sampling=sampling)
    times = []
    for event in session.generate(request):
        if isinstance(event, ChunkFinished):
            times.append(event.elapsed_s)
        elif isinstance(event, Finished):
            total = event.elapsed_s
    result = {"threads": args.threads, "load_s": round(load_s, 2), "steps": sampling.num_steps,
              "window": sampling.window, "chunks": args.chunks, "first_chunk_s": round(times[0], 2),
              "total_s": round(total, 2), "seconds_per_chunk": round(total / args.chunks, 2),
              "chunk_done_at_s": [round(t, 2) for t in times]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
