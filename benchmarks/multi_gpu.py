"""Measure multi-GPU generation (engine/parallel) against one GPU, in one process tree per setting.

For each number of GPUs and each split (guidance, sequence) it runs the chunk sampler of the chosen
MAGI-1 variant with random weights (benchmarks/magi_scale.random_dit: the same values on every rank
and in the baseline) and random T5-width text, and reports seconds per chunk in steady state, time to
the first chunk, bytes rank 0 sent per step, the share of step time rank 0 spent in collectives
(each timed between CUDA synchronisations), peak GPU memory of rank 0, and the largest relative
error of the chunk latents against the one-GPU run of the same script.

    python3 benchmarks/multi_gpu.py --variant 4.5B_distill --size 720x720 --steps 16 --chunks 6 \
        --gpus 1,2,4,8 --splits guidance,sequence --json out.json

On a CPU (tests, or a look at the mechanics): --backend gloo --variant tiny-distill --size 64x64.
A setting that fails (out of memory, a split the model cannot take) is reported and skipped.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from magi_engine.config import GuidanceConfig, SamplingConfig  # noqa: E402
from magi_engine.errors import EngineError  # noqa: E402
from magi_engine.parallel.jobs import Job  # noqa: E402
from magi_engine.parallel.launch import LaunchSpec, launch  # noqa: E402
from magi_engine.sampler.loop import ChunkDone, ChunkPlan, StepDone, chunk_noise, sample_chunks  # noqa: E402
from magi_engine.variants import magi_variant, tiny_dit_config  # noqa: E402
from magi_scale import random_dit  # noqa: E402

COMM_KINDS = ("all_to_all", "all_gather", "guidance_broadcast")
TEXT_TOKENS = 120


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    dit: object
    guidance: GuidanceConfig


def find_variant(name: str) -> Variant:
    if name.startswith("tiny-"):
        distilled = name == "tiny-distill"
        return Variant(name, tiny_dit_config(distilled=distilled), GuidanceConfig(mode="distilled" if distilled else "cfg3"))
    variant = magi_variant(name)
    if variant.fp8:
        raise SystemExit(f"{name}: random FP8 weights are not built by this script; measure its bf16 twin.")
    return Variant(variant.name, variant.dit, variant.sampling.guidance)


@dataclasses.dataclass(frozen=True)
class RandomDiT:
    """Picklable: every rank builds the same random DiT on its own device."""

    variant: str
    dtype: str

    def __call__(self, device: torch.device):
        return random_dit(find_variant(self.variant), device, getattr(torch, self.dtype))


def make_job(variant: Variant, args) -> Job:
    width, height = args.size
    sampling = SamplingConfig(num_steps=args.steps, window=args.window, guidance=variant.guidance)
    g = torch.Generator().manual_seed(1)
    plans = [ChunkPlan(i, chunk_noise(100 + i, height, width),
                       torch.randn(TEXT_TOKENS, variant.dit.caption_channels, generator=g)) for i in range(args.chunks)]
    return Job(sampling, plans, [], None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(events, device: torch.device, window: int, chunks: int) -> dict:
    start = time.perf_counter()
    done_at, latents, steps = [], {}, 0
    for event in events:
        if isinstance(event, StepDone):
            steps += 1
        elif isinstance(event, ChunkDone):
            latents[event.index] = event.latent.float().cpu()  # synchronises
            done_at.append(time.perf_counter() - start)
    sync(device)
    total = time.perf_counter() - start
    steady = [done_at[i] - done_at[i - 1] for i in range(1, max(2, chunks - window + 1)) if i < len(done_at)]
    return {"first_chunk_s": done_at[0], "per_chunk_s": sum(steady) / len(steady) if steady else None,
            "total_s": total, "steps_run": steps, "latents": latents}


def run_setting(args, variant: Variant, ranks: int, split: str) -> dict:
    device_type = "cuda" if args.backend == "nccl" else "cpu"
    factory = RandomDiT(variant.name, args.dtype)
    job = make_job(variant, args)
    if device_type == "cuda":
        torch.cuda.reset_peak_memory_stats(0)
    if ranks == 1:
        device = torch.device(device_type, 0) if device_type == "cuda" else torch.device("cpu")
        dit = factory(device)
        with torch.inference_mode():
            result = measure(sample_chunks(dit, job.sampling, job.plans, dit.null_text()), device, args.window,
                             args.chunks)
        result.update(bytes_per_step=0, comm_share=0.0, plan="one device")
        del dit
    else:
        spec = LaunchSpec(ranks, args.backend, split, timed=True)
        workers, model = launch(spec, variant.dit, factory, factory)
        try:
            with torch.inference_mode():
                result = measure(workers.lockstep(model, job), workers.device, args.window, args.chunks)
        finally:
            workers.stop()
        meter = model.runtime.meter
        sent = sum(meter.bytes_sent.get(k, 0) for k in COMM_KINDS)
        waited = sum(meter.seconds.get(k, 0.0) for k in COMM_KINDS)
        result.update(bytes_per_step=sent / result["steps_run"], comm_share=waited / result["total_s"],
                      plan=model.runtime.plan.describe())
        del model
    if device_type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(0) / 2**30
        torch.cuda.empty_cache()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--size", default="720x720", type=lambda s: tuple(int(v) for v in s.split("x")))
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--gpus", default="1,2,4,8", help="comma-separated rank counts; 1 is the baseline")
    parser.add_argument("--splits", default="guidance,sequence")
    parser.add_argument("--backend", choices=("nccl", "gloo"), default="nccl")
    parser.add_argument("--dtype", default=None, help="bfloat16 on GPUs, float32 on CPUs by default")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("bfloat16" if args.backend == "nccl" else "float32")
    variant = find_variant(args.variant)
    counts = [int(c) for c in args.gpus.split(",")]
    if args.backend == "nccl":
        counts = [c for c in counts if c <= torch.cuda.device_count()]
    threads = torch.get_num_threads()
    if args.backend == "gloo":
        torch.set_num_threads(1)  # as each spawned CPU rank on a small machine: settings stay comparable
    try:
        rows = run_settings(args, variant, counts)
    finally:
        torch.set_num_threads(threads)
    print_table(rows)
    return 0


def run_settings(args, variant: Variant, counts: list[int]) -> list[dict]:
    rows, baseline = [], None
    settings = [(1, "none")] + [(n, s) for n in counts if n > 1 for s in args.splits.split(",")]
    for ranks, split in settings:
        label = f"{args.variant} {args.size[0]}x{args.size[1]} {ranks} x {split}"
        try:
            result = run_setting(args, variant, ranks, split)
        except (EngineError, torch.OutOfMemoryError, RuntimeError) as exc:
            print(f"{label}: skipped ({type(exc).__name__}: {exc})", flush=True)
            rows.append({"gpus": ranks, "split": split, "error": f"{type(exc).__name__}: {exc}"})
            continue
        latents = result.pop("latents")
        if ranks == 1:
            baseline = latents
        if baseline is not None and sorted(baseline) == sorted(latents):
            result["max_rel_error"] = max(float((latents[i] - baseline[i]).abs().max() / baseline[i].abs().max())
                                          for i in baseline)
        row = {"variant": args.variant, "size": f"{args.size[0]}x{args.size[1]}", "steps": args.steps,
               "window": args.window, "chunks": args.chunks, "gpus": ranks, "split": split, **result}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n| GPUs | split | plan | per chunk (steady) | first chunk | bytes sent / step (rank 0) | comm share "
          "| peak memory (rank 0) | max rel. error vs 1 GPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['gpus']} | {row['split']} | failed: {row['error'][:80]} | | | | | | |")
            continue
        per_chunk = f"{row['per_chunk_s']:.3f} s" if row["per_chunk_s"] is not None else "—"
        memory = f"{row['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in row else "—"
        error = f"{row['max_rel_error']:.2e}" if "max_rel_error" in row else "—"
        print(f"| {row['gpus']} | {row['split']} | {row['plan']} | {per_chunk} | {row['first_chunk_s']:.3f} s | "
              f"{row['bytes_per_step'] / 2**20:.1f} MiB | {100 * row['comm_share']:.1f}% | {memory} | {error} |")


if __name__ == "__main__":
    sys.exit(main())
