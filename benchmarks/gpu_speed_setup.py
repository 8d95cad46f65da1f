"""What benchmarks/gpu_speed.py's modes share, and benchmarks/gpu_memory.py, gpu_fusions.py and fp8_sensitivity.py
use: the DiT of a variant with random weights (benchmarks/magi_scale.py) built as --path asks (eager bf16, compiled
bf16, native FP8 by the engine's own quantiser) with its sampler plans; a forward's inputs, velocity and errors against
a reference; FLOP counts; the sampler's steps timed, and the steady ones summed up.

"Steady" steps are those of stages 4..chunks-1: the window is full and the KV cache holds every chunk
a step attends (four chunks back at most), so window 1 is measured with four chunks cached.
FLOPs are counted from each forward's layout (linears: 2·rows·in·out; attention: 4·queries·keys·heads·dh
for self- and cross-attention); TFLOP/s is set against a bf16 matmul measured in the same run.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.magi_scale import random_dit  # noqa: E402
from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig  # noqa: E402
from magi_engine.dit.attention import ChunkLayout  # noqa: E402
from magi_engine.dit.compiled import compile_counts, compile_layers, use_flash_attention, use_fp8_attention  # noqa: E402
from magi_engine.dit.fp8_linear import Fp8Linear  # noqa: E402
from magi_engine.dit.fp8_quantize import quantize_layer_by_layer  # noqa: E402
from magi_engine.dit.fused import use_fused_kernels  # noqa: E402
from magi_engine.dit.gelu_epilogue import use_gelu_epilogue  # noqa: E402
from magi_engine.dit.model import ChunkText, MagiDiT  # noqa: E402
from magi_engine.magi_checkpoint import fp8_calibration  # noqa: E402
from magi_engine.sampler.loop import ChunkPlan, StepDone, chunk_noise, sample_chunks  # noqa: E402
from magi_engine.variants import magi_variant, tiny_dit_config  # noqa: E402

#: Stages before this one have a cache or window not yet full (the longest attention span is 5 chunks).
FIRST_STEADY_STAGE = 4
GIB = 2**30


def variant_for(name: str):
    if name == "tiny":  # a smoke test of gpu_speed.py on a CPU
        dit = dataclasses.replace(tiny_dit_config(distilled=True), num_layers=4)
        return dataclasses.replace(magi_variant("4.5B_distill"), name="tiny", dit=dit)
    return magi_variant(name)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int = 10) -> float:
    """Mean seconds of fn() after two warm-up calls."""
    for _ in range(2):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def bf16_peak_tflops(device: torch.device) -> float:
    n = 8192 if device.type == "cuda" else 512
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    return 2 * n**3 / timed(lambda: a @ b) / 1e12


# FLOPs ------------------------------------------------------------------------------------------
def forward_flops(cfg, layout: ChunkLayout, text_tokens: list[int]) -> tuple[float, float]:
    """(matmul FLOPs, attention FLOPs) of one DiT forward with this layout and these text lengths."""
    t, d, q, kv = layout.tokens_per_chunk, cfg.hidden_size, cfg.query_size, cfg.kv_size
    rows = layout.num_chunks * t
    ffn_in = cfg.ffn_hidden_size * (2 if cfg.gated_mlp else 1)
    per_row = d * (2 * q + 2 * kv) + 2 * q * d + d * ffn_in + cfg.ffn_hidden_size * d
    matmul = 2 * rows * per_row + 2 * sum(text_tokens) * cfg.xattn_size * 2 * kv
    attention = 0
    for j in range(layout.num_chunks):
        lo, hi = layout.key_token_range(j)
        attention += 4 * t * ((hi - lo) + text_tokens[j]) * cfg.num_heads * cfg.head_dim
    return matmul * cfg.num_layers, attention * cfg.num_layers


class FlopRecorder:
    """Wraps dit.forward to add up the FLOPs of every forward (cheap: layouts only)."""

    def __init__(self, dit: MagiDiT) -> None:
        self.matmul = self.attention = 0.0
        inner = dit.forward

        def forward(latents, t, text: ChunkText, caption_present, layout, **kwargs):
            mask = text.mask
            lengths = [int(mask[0, j].sum()) if mask is not None else text.features.shape[2]
                       for j in range(layout.num_chunks)]
            m, a = forward_flops(dit.config, layout, lengths)
            self.matmul += m
            self.attention += a
            return inner(latents, t, text, caption_present, layout, **kwargs)

        dit.forward = forward

    def take(self) -> tuple[float, float]:
        out = (self.matmul, self.attention)
        self.matmul = self.attention = 0.0
        return out


# FP8 conversion ------------------------------------------------------------------------------------
def quantize_to_fp8(dit: MagiDiT, variant, size: tuple[int, int], **calibration) -> MagiDiT:
    """Quantise the linears MAGI-1 stores in FP8 (layers 1..L-2) in place, as RuntimeConfig.quantize_fp8 does on
    load (the same calibration, at `size`; `calibration` overrides its fields, e.g. headroom)."""
    quantize_layer_by_layer(dit, dataclasses.replace(fp8_calibration(variant, size), **calibration))
    if dit.device.type == "cuda":
        torch.cuda.empty_cache()
    return dit


def dequantized_copy_weights(dit: MagiDiT, fp8_dit: MagiDiT) -> None:
    """Give `dit`'s dense linears the dequantised FP8 weights (today's loading path for FP8 checkpoints)."""
    with torch.no_grad():
        for name, module in fp8_dit.named_modules():
            if isinstance(module, Fp8Linear):
                dense = dit.get_submodule(name)
                dense.weight.copy_(module.dequantized_weight().to(dense.weight.dtype))


# Inputs -------------------------------------------------------------------------------------------
def forward_inputs(dit: MagiDiT, device: torch.device, size: tuple[int, int], *, chunks: int, seed: int,
                   text_tokens: int = 120):
    """A forward like a steady window-4 step: `chunks` chunks at staggered t, each seeing up to 4 back."""
    cfg = dit.config
    width, height = size
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, cfg.latent_channels, chunks * CHUNK_LATENT_FRAMES, height // 8, width // 8, generator=g)
    tokens = cfg.tokens_per_chunk(height // 8, width // 8)
    text = ChunkText.from_sequences([torch.randn(text_tokens, cfg.caption_channels, generator=g)
                                     for _ in range(chunks)], device=device)
    t = torch.linspace(0.9, 0.1, chunks)[None]
    layout = ChunkLayout.causal(0, chunks, tokens, span=4)
    return x.to(device), t.to(device), text, True, layout, torch.full((1, chunks), 8.0, device=device)


def velocity(dit: MagiDiT, inputs) -> torch.Tensor:
    with torch.inference_mode():
        return dit(*inputs[:5], step_size=inputs[5]).velocity.float()


def relative_errors(got: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    diff = (got - ref).abs()
    return {"max_abs_over_max_abs": float(diff.max() / ref.abs().max()),
            "rel_l2": float((got - ref).norm() / ref.norm()),
            "max_abs": float(diff.max())}


# The sampler ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SamplerRun:
    """A built model and the plans of one `run` (or `profile`), ready to step through."""

    variant: object
    size: tuple[int, int]
    sampling: SamplingConfig
    dit: MagiDiT
    plans: list
    flops: FlopRecorder
    peak_tflops: float
    build_s: float
    weights_gib: float


def sampler_run(args, device: torch.device) -> SamplerRun:
    """The model of --path (random weights; FP8 and compiled as asked) and --chunks plans for the sampler."""
    variant = variant_for(args.variant)
    width, height = (int(v) for v in args.size.split("x"))
    sampling = SamplingConfig.from_dict({**variant.sampling.to_dict(), "window": args.window,
                                         "num_steps": args.steps})
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = bf16_peak_tflops(device)
    started = time.perf_counter()
    dit = random_dit(variant, device, dtype)
    if args.path == "fp8":
        quantize_to_fp8(dit, variant, (width, height))
    if args.fp8_attention != "off":  # the FP8 layers of the fp8 path; every layer of the bf16 paths
        use_fp8_attention(dit, args.fp8_attention, compiled=args.path != "eager",
                          layers=None if args.path == "fp8" else range(len(dit.layers)))
    if args.flash_attention:  # the layers FP8 attention left to SDPA
        use_flash_attention(dit, True)
        if args.flash_attention == "self":  # cross-attention through SDPA, as before issue 18's in-place buffer
            for layer in dit.layers:
                if layer.attn.self_attention is not None:
                    layer.attn.self_attention.cross_attention = None
    if args.fused_kernels:  # before compiling: the compiled graphs call them
        use_fused_kernels(dit, True, traced=args.fused_kernels == "traced")
    if args.gelu_epilogue:
        use_gelu_epilogue(dit, True)
    if args.path in ("compiled", "fp8"):
        compile_layers(dit, mode=args.compile_mode, backend=args.compile_backend)
    sync()
    build_s = time.perf_counter() - started
    weights_gib = torch.cuda.memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    flops = FlopRecorder(dit)
    plans = random_plans(variant, (width, height), args.chunks)
    return SamplerRun(variant, (width, height), sampling, dit, plans, flops, peak, build_s, weights_gib)


def timed_steps(run: SamplerRun):
    """Step the sampler through the run's plans; yields one record a step (stage, seconds, FLOPs, graphs)."""
    flops = run.flops
    last = time.perf_counter()
    with torch.inference_mode():
        for event in sample_chunks(run.dit, run.sampling, run.plans, run.dit.null_text()):
            if isinstance(event, StepDone):
                sync()
                now = time.perf_counter()
                matmul, attention = flops.take()
                yield {"stage": event.step.stage, "s": now - last, "matmul_flop": matmul,
                       "attention_flop": attention, **compile_counts()}
                last = time.perf_counter()


def is_steady(step: dict, chunks: int) -> bool:
    return FIRST_STEADY_STAGE <= step["stage"] <= chunks - 1


def steady_steps(run: SamplerRun, chunks: int) -> dict:
    """Every step of the run timed; the steady steps' mean, FLOPs and TFLOP/s, and the run's peak memory."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    steps = list(timed_steps(run))
    total_s = time.perf_counter() - t0
    steady = [s for s in steps if is_steady(s, chunks)]
    if not steady:
        raise SystemExit(f"{chunks} chunks give no steady stage; use at least {FIRST_STEADY_STAGE + 1}")
    step_s = sum(s["s"] for s in steady) / len(steady)
    flop = sum(s["matmul_flop"] + s["attention_flop"] for s in steady) / len(steady)
    tflops = flop / step_s / 1e12
    return {
        "total_s": round(total_s, 2), "first_steps_s": [round(s["s"], 3) for s in steps[:4]],
        "steady_steps": len(steady), "steady_step_s": round(step_s, 4),
        "steady_chunk_s": round(step_s * run.sampling.steps_per_stage, 3),
        "steady_step_tflop": round(flop / 1e12, 1),
        "steady_step_matmul_tflop": round(sum(s["matmul_flop"] for s in steady) / len(steady) / 1e12, 1),
        "tflops": round(tflops, 1), "percent_of_bf16_peak": round(100 * tflops / run.peak_tflops, 1),
        "peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 2) if cuda else None,
        "unique_graphs_at_first_steady_step": steady[0]["unique_graphs"],
        "unique_graphs_at_end": steps[-1]["unique_graphs"],
        "step_seconds": [round(s["s"], 3) for s in steps],
    }


def random_plans(variant, size: tuple[int, int], chunks: int) -> list[ChunkPlan]:
    """`chunks` chunk plans of seeded noise and random text (120 tokens each)."""
    width, height = size
    g = torch.Generator().manual_seed(1)
    return [ChunkPlan(i, chunk_noise(i, height, width), torch.randn(120, variant.dit.caption_channels, generator=g))
            for i in range(chunks)]

