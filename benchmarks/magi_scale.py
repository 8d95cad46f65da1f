"""Benchmark the engine at MAGI-1 scale on a GPU: DiT forward, sampler steps, chunks, memory.

The released weights cannot be fetched on our machines, so the DiT of the chosen variant is built on
the meta device and materialised directly on the GPU with random bfloat16 weights: speed and memory
do not depend on the values. Text features are random (T5-XXL width 4096, 120 tokens per chunk).

    python benchmarks/magi_scale.py --variant 4.5B_distill --size 720x720 --chunks 6 --json out.json

Results are recorded in BENCHMARKS.md with the command that produced them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from magi_engine.config import SamplingConfig  # noqa: E402
from magi_engine.dit.model import MagiDiT  # noqa: E402
from magi_engine.loading import estimate_memory  # noqa: E402
from magi_engine.sampler.loop import ChunkDone, ChunkPlan, StepDone, chunk_noise, sample_chunks  # noqa: E402
from magi_engine.variants import T5_XXL_ENCODER_PARAMS, magi_variant, tiny_dit_config  # noqa: E402


def random_dit(variant, device: torch.device, dtype: torch.dtype) -> MagiDiT:
    with torch.device("meta"):
        dit = MagiDiT(variant.dit).set_dtype(dtype)  # cast on meta: the GPU never holds float32 weights
    dit = dit.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if p.ndim >= 2:
                p.normal_(0, p[0].numel() ** -0.5, generator=generator)
            elif name.endswith("bands"):
                p.copy_(1.0 / 10000.0 ** (torch.arange(p.numel(), device=device) / p.numel()))
            else:
                p.normal_(0, 0.02, generator=generator)
    return dit.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--text-tokens", type=int, default=120)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if args.variant == "tiny":  # a smoke test of this script on a CPU
        variant = dataclasses.replace(magi_variant("4.5B_distill"), name="tiny", dit=tiny_dit_config(distilled=True))
    else:
        variant = magi_variant(args.variant)
    width, height = (int(v) for v in args.size.split("x"))
    sampling = dataclasses.replace(variant.sampling, window=args.window,
                                   num_steps=args.steps or variant.sampling.num_steps)
    sampling = SamplingConfig.from_dict(sampling.to_dict())  # re-validate

    started = time.perf_counter()
    dit = random_dit(variant, device, dtype)
    sync(device)
    build_s = time.perf_counter() - started
    weights_gib = torch.cuda.memory_allocated() / 2**30 if device.type == "cuda" else float("nan")

    g = torch.Generator().manual_seed(1)
    plans = [ChunkPlan(i, chunk_noise(i, height, width), torch.randn(args.text_tokens, variant.dit.caption_channels, generator=g))
             for i in range(args.chunks)]
    null_text = dit.null_text()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_times, chunk_times, peak_after_chunk, cache_bytes = [], [], [], []
    t0 = last = time.perf_counter()
    with torch.inference_mode():
        for event in sample_chunks(dit, sampling, plans, null_text):
            if isinstance(event, StepDone):
                sync(device)
                now = time.perf_counter()
                step_times.append(now - last)
                last = now
                cache_bytes.append(event.cache_bytes)
            elif isinstance(event, ChunkDone):
                chunk_times.append(time.perf_counter() - t0)
                if device.type == "cuda":
                    peak_after_chunk.append(torch.cuda.max_memory_allocated() / 2**30)
    total_s = time.perf_counter() - t0
    per_stage = sampling.num_steps // sampling.window
    steady = step_times[per_stage * (sampling.window - 1): per_stage * args.chunks] or step_times
    estimate = estimate_memory(variant.dit, width=width, height=height, window=sampling.window,
                               cache_chunks=sampling.cache_chunks, text_encoder_params=T5_XXL_ENCODER_PARAMS,
                               text_encoder_on_device=False, include_vae=False)
    result = {
        "variant": variant.name, "guidance": sampling.guidance.mode, "size": [width, height],
        "chunks": args.chunks, "steps": sampling.num_steps, "window": sampling.window,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "dtype": str(dtype),
        "tokens_per_chunk": variant.dit.tokens_per_chunk(height // 8, width // 8),
        "build_s": round(build_s, 2), "weights_gib": round(weights_gib, 2),
        "first_chunk_s": round(chunk_times[0], 2), "total_s": round(total_s, 2),
        "steady_step_s": round(sum(steady) / len(steady), 4),
        "steady_chunk_s": round(sum(steady) / len(steady) * per_stage, 2),
        "chunk_done_at_s": [round(t, 2) for t in chunk_times],
        "peak_gib_after_each_chunk": [round(p, 2) for p in peak_after_chunk],
        "kv_cache_gib_final": round(cache_bytes[-1] / 2**30, 2),
        "estimate_without_t5_vae_gib": round((estimate.total_bytes) / 2**30, 2),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
