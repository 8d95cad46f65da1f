"""Communication of multi-GPU generation at MAGI-1 scale, computed from the shapes (no GPU needed).

For the sequence-parallel DiT (engine/parallel/sequence.py) every layer of every forward does four
all-to-alls per rank: the queries, keys and values (tokens -> heads; keys/values after repeating kv
heads where they do not split evenly) and the attention output (heads -> tokens), each sending
(R-1)/R of its tensor; a forward ends with one all-gather of the output features (float32). For
guidance-parallel the velocity of every pass is broadcast from its owner (float32).

The steps are walked as the sampler walks them (window, guidance bins, near-clean copy, clean
re-encodes of finished chunks) and averaged over the steady state (window full). The expected step
time is compute / R + communication at the assumed all-to-all bandwidth, with no overlap (the
all-to-alls sit between a layer's matmuls and its attention): an upper bound on the time.

    python3 benchmarks/comm_volume.py [--size 720x720] [--steps 16] [--bandwidth-gbs 300]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig  # noqa: E402
from magi_engine.parallel.plan import kv_head_repeats  # noqa: E402
from magi_engine.sampler.schedule import flow_schedule, guidance_scales  # noqa: E402
from magi_engine.sampler.window import window_steps  # noqa: E402
from magi_engine.variants import magi_variant  # noqa: E402

BF16 = 2
FLOAT32 = 4
#: One steady step on one H100 (BENCHMARKS.md, eager bf16, 720x720, 16 steps, window 4). The 24B
#: figures are estimates: the 4.5B's 1,462 TFLOP a step (519 matmul, 943 attention) scaled by the
#: 24B's matmul parameters (x5.36) and attention heads x layers (x2.82), at the 4.5B's 485 TFLOP/s.
ONE_GPU_STEP_S = {"4.5B_distill": 3.015, "4.5B_base": 5.48, "24B_distill": 11.2, "24B_base": None}


def passes_per_step(sampling: SamplingConfig, chunks: int = 12) -> tuple[list[list[int]], float]:
    """Chunks in each pass of each steady step, and clean one-chunk forwards per step."""
    schedule = flow_schedule(sampling.num_steps, sampling.shift, sampling.shortcut_mode)
    distilled = sampling.guidance.mode == "distilled"
    steps = []
    for step in window_steps(0, chunks, sampling.num_steps, sampling.window):
        if len(step.chunks) < sampling.window:
            continue
        t = [float(schedule[k]) for k in step.steps]
        if distilled:
            near = t[0] > sampling.guidance.near_clean_threshold
            steps.append([len(t)] + ([1] if near else []))
            continue
        scales = [guidance_scales(x, sampling.guidance) for x in t]
        passes = [len(t)]  # history + null text
        if any(s != 0 for _, s in scales):
            passes.append(len(t))  # history + text
        young = [j for j, (h, _) in enumerate(scales) if 1 - h != 0]
        if young:
            passes.append(len(t) - young[0])  # each young chunk alone
        steps.append(passes)
    clean_per_step = (1 if distilled else 2) / sampling.steps_per_stage
    return steps, clean_per_step


def forward_bytes(config, chunk_tokens: int, chunks: int, ranks: int) -> dict[str, float]:
    """Bytes one rank sends in one forward of `chunks` chunks, by tensor."""
    if ranks == 1:
        return {"q": 0, "kv": 0, "out": 0, "gather": 0}
    m = math.ceil(chunk_tokens / ranks)
    local = chunks * m
    share = (ranks - 1) / ranks
    kv_heads = config.num_kv_groups * kv_head_repeats(config.num_heads, config.num_kv_groups, ranks)
    per_layer_q = local * config.num_heads * config.head_dim * BF16 * share
    per_layer_kv = 2 * local * kv_heads * config.head_dim * BF16 * share
    features = config.patch_size**2 * config.in_channels
    return {"q": per_layer_q * config.num_layers, "kv": per_layer_kv * config.num_layers,
            "out": per_layer_q * config.num_layers, "gather": local * features * FLOAT32}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--bandwidth-gbs", type=float, default=300.0,
                        help="all-to-all bandwidth a GPU sends at (GB/s); H100 SXM NVLink 4: 450 GB/s a direction, "
                             "NCCL's all-reduce measured 329 GB/s bus bandwidth on 2 H100s here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    bandwidth = args.bandwidth_gbs * 1e9
    print(f"# Communication per step, {args.size}, {args.steps} steps, window 4, assumed all-to-all "
          f"bandwidth {args.bandwidth_gbs:.0f} GB/s per GPU, no overlap\n")
    print("| model | GPUs | split | one all-to-all (q / k+v / out, one layer, 4-chunk forward) | bytes sent per GPU "
          "per step | comm per step | step: 1 GPU -> N GPUs (expected) | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("4.5B_distill", "4.5B_base", "24B_distill"):
        variant = magi_variant(name)
        config = variant.dit
        sampling = SamplingConfig(num_steps=args.steps, window=4, guidance=variant.sampling.guidance)
        tokens = config.tokens_per_chunk(height // 8, width // 8)
        steps, clean = passes_per_step(sampling)
        chunks_per_step = sum(sum(p) for p in steps) / len(steps)
        one = ONE_GPU_STEP_S[name]
        for ranks in (2, 4, 8):
            try:
                kv_head_repeats(config.num_heads, config.num_kv_groups, ranks)
            except Exception:
                continue
            layer = forward_bytes(config, tokens, 4, ranks)
            one_q = layer["q"] / config.num_layers / 2**20
            one_kv = layer["kv"] / config.num_layers / 2 / 2**20
            per_chunk = {k: v / 4 for k, v in forward_bytes(config, tokens, 4, ranks).items()}
            step_bytes = sum(per_chunk.values()) * (chunks_per_step + clean)
            comm_s = step_bytes / bandwidth
            expected = one / ranks + comm_s
            print(f"| {name} | {ranks} | sequence | {one_q:.1f} / {2 * one_kv:.1f} / {one_q:.1f} MiB | "
                  f"{step_bytes / 2**30:.2f} GiB | {comm_s * 1000:.0f} ms | {one:.2f} s -> {expected:.3f} s | "
                  f"{one / expected:.2f}x |")
        # Guidance-parallel: the largest group's share of each step, plus the velocity broadcasts.
        groups = 2 if config.distilled else 3
        share, sent = 0.0, 0.0
        for passes in steps:
            load = [0] * groups
            for size in sorted(passes, reverse=True):
                load[load.index(min(load))] += size
            share += max(load) / sum(passes)
            sent += sum(passes) * 16 * CHUNK_LATENT_FRAMES * (height // 8) * (width // 8) * FLOAT32
        share, sent = share / len(steps), sent / len(steps)
        expected = one * share + sent / bandwidth
        window_pass = 4 * 16 * CHUNK_LATENT_FRAMES * (height // 8) * (width // 8) * FLOAT32
        print(f"| {name} | {groups} | guidance | velocity broadcast: {window_pass / 2**20:.1f} MiB a 4-chunk pass "
              f"| {sent / 2**30:.3f} GiB (all owners) | {sent / bandwidth * 1000:.1f} ms | {one:.2f} s -> {expected:.3f} s "
              f"| {one / expected:.2f}x |")
    print("\nOne-GPU step times: measured (BENCHMARKS.md, eager bf16, H100) for the 4.5B; the 24B's is an estimate "
          "from FLOPs. Not counted: rank 0's VAE decode (0.41 s a 720x720 chunk on an H100) and text encoding, "
          "which a run overlaps with nothing yet.")


if __name__ == "__main__":
    main()
