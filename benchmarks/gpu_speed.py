"""Speed and accuracy of the DiT's GPU paths at MAGI-1 scale: eager bf16, compiled bf16, native FP8.

Random weights (as benchmarks/magi_scale.py: speed does not depend on the values). The FP8 model is
the same bf16 model quantised in memory to MAGI-1's FP8 layout in layers 1..L-2, as the official checkpoints
are, by the engine's own quantiser (magi_engine.dit.fp8_quantize: RuntimeConfig.quantize_fp8's calibration).

    python benchmarks/gpu_speed.py run --path compiled --window 4 --chunks 6 --json out.json
    python benchmarks/gpu_speed.py accuracy --json acc.json     # max relative errors vs eager bf16
    python benchmarks/gpu_speed.py gemm --json gemm.json        # one FP8 / bf16 GEMM of the 4.5B, alone
    python benchmarks/gpu_speed.py profile --path compiled --chunks 5 --json prof.json  # kernel time by kind
    python benchmarks/gpu_speed.py onload --chunks 5 --json onload.json  # a bf16 checkpoint quantised to FP8 on load

`onload` goes through the setting itself (RuntimeConfig.quantize_fp8, the loader's load_magi_dit) on a bf16
DiT folder in the official layout written first (`accuracy`'s very weights: synthetic_checkpoint.write_whole_dit;
`--checkpoint` reuses one): the load's time and peak memory against the bf16 load and the estimate, the errors
against eager bf16 loaded from the same folder on `accuracy`'s inputs (eager and compiled, and of other
calibrations), then the steady step of the compiled sampler, as `run`. Same weights, same inputs, same
quantiser: its eager error is `accuracy`'s fp8_native_eager, unless the setting's path differs.

"Steady" steps are those of stages 4..chunks-1: the window is full and the KV cache holds every chunk
a step attends (four chunks back at most), so window 1 is measured with four chunks cached.
FLOPs are counted from each forward's layout (linears: 2·rows·in·out; attention: 4·queries·keys·heads·dh
for self- and cross-attention); TFLOP/s is set against a bf16 matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.magi_scale import random_dit  # noqa: E402
from benchmarks.record import publish  # noqa: E402
from magi_engine.config import CHUNK_LATENT_FRAMES, SamplingConfig  # noqa: E402
from magi_engine.dit.attention import ChunkLayout  # noqa: E402
from magi_engine.dit.compiled import (compile_counts, compile_layers, uncompile_layers,  # noqa: E402
                                      use_flash_attention, use_fp8_attention)
from magi_engine.dit.fp8_linear import Fp8Linear, quantize_activation  # noqa: E402
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
#: onload: calibrations set against the engine's (magi_engine.dit.fp8_quantize.Fp8Calibration fields changed).
#: (A headroom of 4 rounds as 2 does but for e4m3's subnormals: magi_engine.dit.fp8_quantize.)
CALIBRATION_VARIANTS = {"headroom_1": dict(headroom=1.0), "null_text_only": dict(texts=("null",)),
                        "one_noise_level": dict(t=(0.5,))}


def variant_for(name: str):
    if name == "tiny":  # a smoke test of this script on a CPU
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


# Modes ----------------------------------------------------------------------------------------------
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


def run_sampler(args, device: torch.device) -> dict:
    run = sampler_run(args, device)
    width, height = run.size
    sampling = run.sampling
    return {
        "path": args.path, "fp8_attention": args.fp8_attention, "fused_kernels": args.fused_kernels,
        "flash_attention": getattr(args, "flash_attention", False), "gelu_epilogue": args.gelu_epilogue,
        "variant": run.variant.name, "size": [width, height],
        "steps": sampling.num_steps,
        "window": sampling.window, "chunks": args.chunks, "compile_mode": args.compile_mode,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "bf16_matmul_peak_tflops": round(run.peak_tflops, 1), "build_s": round(run.build_s, 2),
        "weights_gib": round(run.weights_gib, 2), **steady_steps(run, args.chunks),
        # True if an FP8 attention kernel refused and its layers fell back to bf16 SDPA (the log says why).
        "fp8_attention_fell_back": any(getattr(layer.attn.self_attention, "failed", False) for layer in run.dit.layers),
    }


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


# Profile: where a steady step's kernel time goes ---------------------------------------------------------
#: Substrings of CUDA kernel names (lower case) by kind. Attention first: cuDNN's flash kernels say "sdpa" or
#: "fmha", FA2 "flash", ours "attention"; GEMMs: cuBLAS ("gemm", Hopper's "nvjet", split-K reductions), CUTLASS,
#: FP8 scaled matmuls, inductor's matmul templates. The rest (norms, pointwise, casts, copies) is "other".
ATTENTION_KERNELS = ("flash", "fmha", "sdpa", "attention", "attn_fwd")
GEMM_KERNELS = ("gemm", "nvjet", "cutlass", "xmma", "scaled_mm", "gemv", "matmul", "splitk", "triton_tem_")
#: The same for CPU op names (the smoke test on a CPU has no kernels: its ops' self time stands in).
ATTENTION_OPS = ("scaled_dot_product", "flash_attention", "efficient_attention", "_fused_sdp")
GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_scaled_mm", "aten::matmul")


def kernel_kind(name: str, *, cuda: bool = True) -> str:
    """'attention', 'gemm' or 'other' for a CUDA kernel's name (or, cuda=False, an aten op's name)."""
    lowered = name.lower()
    if cuda:
        if any(key in lowered for key in ATTENTION_KERNELS):
            return "attention"
        return "gemm" if any(key in lowered for key in GEMM_KERNELS) else "other"
    if any(key in lowered for key in ATTENTION_OPS):
        return "attention"
    return "gemm" if lowered in GEMM_OPS else "other"


def kernel_times(profiler, cuda: bool) -> dict[str, float]:
    """Seconds of each CUDA kernel name (cuda) or each op's self CPU time (not cuda) in a profile."""
    from torch.autograd import DeviceType

    times: dict[str, float] = {}
    for event in profiler.key_averages():
        if cuda:
            # Kernels (and memcpy/memset) only: not the GPU-side spans of record_function ranges ("Torch-Compiled
            # Region", "## Call CompiledFxGraph ##"), which cover kernels already counted.
            if event.device_type != DeviceType.CUDA or getattr(event, "is_user_annotation", False):
                continue
            us = getattr(event, "self_device_time_total", None)
            us = event.self_cuda_time_total if us is None else us  # the name before torch 2.4
        else:
            us = event.self_cpu_time_total
        if us > 0:
            times[event.key] = times.get(event.key, 0.0) + us / 1e6
    return times


def kernel_breakdown(times: dict[str, float], wall_s: float, steps: int, *, cuda: bool, top: int = 25) -> dict:
    """Kernel seconds a step by kind (attention, GEMM, other), each as a share of the step's wall time,
    and the `top` largest 'other' kernels by name."""
    kinds = {"attention": {}, "gemm": {}, "other": {}}
    for name, seconds in times.items():
        kinds[kernel_kind(name, cuda=cuda)][name] = seconds / steps
    step_s = wall_s / steps
    busy = sum(sum(group.values()) for group in kinds.values())

    def rows(group: dict[str, float], n: int) -> list[dict]:
        ranked = sorted(group.items(), key=lambda item: -item[1])[:n]
        return [{"name": name, "ms_per_step": round(1e3 * s, 3), "share_of_step": round(s / step_s, 4)}
                for name, s in ranked]

    out = {"step_s": round(step_s, 4), "kernel_s_per_step": round(busy, 4),
           "idle_share": round(1 - busy / step_s, 4) if step_s else None}
    for kind, group in kinds.items():
        total = sum(group.values())
        out[kind] = {"s_per_step": round(total, 4), "share_of_step": round(total / step_s, 4) if step_s else None,
                     "kernels": len(group)}
    out["top_other"] = rows(kinds["other"], top)
    out["top_attention"] = rows(kinds["attention"], 5)
    out["top_gemm"] = rows(kinds["gemm"], 5)
    return out


def profile(args, device: torch.device) -> dict:
    """torch.profiler over --profile-steps steady steps of --path: kernel time by kind and the top 'other' kernels."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    run = sampler_run(args, device)
    cuda = device.type == "cuda"
    profiler = torch_profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
    # Stages FIRST_STEADY_STAGE..chunks-1 are steady: one of their steps unprofiled, then up to --profile-steps.
    wanted = min(args.profile_steps, run.sampling.steps_per_stage * (args.chunks - FIRST_STEADY_STAGE) - 1)
    if wanted < 1:
        raise SystemExit(f"{args.chunks} chunks and {args.steps} steps give fewer than two steady steps")
    warmup, profiled, started = [], [], None
    steps = timed_steps(run)
    for step in steps:
        if started is None:
            warmup.append(step)
            if is_steady(step, args.chunks):  # one steady step unprofiled, then the profiled ones
                sync()
                profiler.start()
                started = time.perf_counter()
            continue
        profiled.append(step)
        if len(profiled) == wanted:
            break
    steps.close()
    sync()
    wall = time.perf_counter() - started
    profiler.stop()
    if args.trace:
        profiler.export_chrome_trace(str(args.trace))
    breakdown = kernel_breakdown(kernel_times(profiler, cuda), wall, len(profiled), cuda=cuda)
    return {
        "path": args.path, "fp8_attention": args.fp8_attention, "fused_kernels": args.fused_kernels,
        "flash_attention": getattr(args, "flash_attention", False), "gelu_epilogue": args.gelu_epilogue,
        "variant": run.variant.name, "size": list(run.size), "steps": run.sampling.num_steps,
        "window": run.sampling.window, "chunks": args.chunks,
        "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "timing": "CUDA kernel time" if cuda else "CPU self time of each op (no CUDA here)",
        "profiled_steps": len(profiled), "profiled_stages": sorted({s["stage"] for s in profiled}),
        "all_profiled_steady": all(is_steady(s, args.chunks) for s in profiled),
        "unprofiled_steady_step_s": round(warmup[-1]["s"], 3),
        "profiled_step_s": [round(s["s"], 3) for s in profiled], **breakdown,
    }


def gelu_epilogue_form(device: torch.device, dtype: torch.dtype) -> dict:
    """How far linear_gelu_tanh here is from the tanh and the exact GELU of the same GEMM (which form it computes)."""
    g = torch.Generator(device=device).manual_seed(9)
    x = torch.randn(4096, 3072, device=device, dtype=dtype, generator=g)
    weight = torch.randn(1024, 3072, device=device, dtype=dtype, generator=g) * 3072 ** -0.5
    got = torch.ops.magi.linear_gelu_tanh(x, weight).float()
    h = torch.nn.functional.linear(x, weight).float()
    return {form: float((got - torch.nn.functional.gelu(h, approximate=form)).abs().max()) for form in ("tanh", "none")}


def accuracy(args, device: torch.device) -> dict:
    variant = variant_for(args.variant)
    width, height = (int(v) for v in args.size.split("x"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    dit = random_dit(variant, device, dtype)
    inputs = forward_inputs(dit, device, (width, height), chunks=5, seed=3)
    reference = velocity(dit, inputs)
    out = {"variant": variant.name, "size": [width, height], "chunks_in_forward": 5,
           "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
           "reference": "eager bf16 (float32 islands), same weights and inputs"}
    if args.fp8_attention != "off":
        return out | fp8_attention_accuracy(args, variant, device, dtype, (width, height), inputs, reference)
    if args.flash_attention:  # the bf16 model with FlashAttention 4 alone, then with the fused kernels, compiled
        use_flash_attention(dit, True)
        out["flash_attention_eager"] = relative_errors(velocity(dit, inputs), reference)
        use_fused_kernels(dit, True)
        out["flash_attention_fused_kernels_compiled"] = relative_errors(
            velocity(compile_layers(dit, mode=args.compile_mode, backend=args.compile_backend), inputs), reference)
        if args.gelu_epilogue:  # and fc1's GELU in cuBLASLt's epilogue (tanh form)
            out["gelu_epilogue_form"] = gelu_epilogue_form(device, dtype)
            uncompile_layers(dit)
            use_gelu_epilogue(dit, True)
            out["flash_attention_fused_kernels_gelu_epilogue_compiled"] = relative_errors(
                velocity(compile_layers(dit, mode=args.compile_mode, backend=args.compile_backend), inputs), reference)
        out["flash_attention_fell_back"] = any(getattr(layer.attn.self_attention, "failed", False)
                                               for layer in dit.layers)
        return out
    if args.fused_kernels:  # the bf16 model with the fused kernels, eager and compiled
        use_fused_kernels(dit, True, traced=args.fused_kernels == "traced")
        out["fused_kernels_eager"] = relative_errors(velocity(dit, inputs), reference)
        compile_layers(dit, mode=args.compile_mode, backend=args.compile_backend)
        out["fused_kernels_compiled"] = relative_errors(velocity(dit, inputs), reference)
        uncompile_layers(dit)
        use_fused_kernels(dit, False)
        out["compiled_bf16"] = relative_errors(velocity(compile_layers(dit, mode=args.compile_mode,
                                                                       backend=args.compile_backend), inputs),
                                               reference)
        return out
    compile_layers(dit, mode=args.compile_mode, backend=args.compile_backend)
    out["compiled_bf16"] = relative_errors(velocity(dit, inputs), reference)
    uncompile_layers(dit)
    fp8_dit = quantize_to_fp8(random_dit(variant, device, dtype), variant, (width, height))
    out["fp8_native_eager"] = relative_errors(velocity(fp8_dit, inputs), reference)
    compile_layers(fp8_dit, mode=args.compile_mode, backend=args.compile_backend)
    out["fp8_native_compiled"] = relative_errors(velocity(fp8_dit, inputs), reference)
    uncompile_layers(fp8_dit)
    dequantized_copy_weights(dit, fp8_dit)  # today's path: FP8 weights dequantised, bf16 activations
    out["fp8_dequantized_eager"] = relative_errors(velocity(dit, inputs), reference)
    out["fp8_native_vs_dequantized"] = relative_errors(velocity(fp8_dit, inputs), velocity(dit, inputs))
    return out


def fp8_attention_accuracy(args, variant, device, dtype, size, inputs, reference) -> dict:
    """Errors against eager bf16 of FP8 attention alone (the bf16 model, every layer's self-attention in FP8,
    eager) and of the whole FP8 path (FP8 linears, compiled) without and with FP8 attention in layers 1..L-2."""
    out = {}
    bf16_dit = random_dit(variant, device, dtype)  # the reference's weights (random_dit is seeded)
    use_fp8_attention(bf16_dit, args.fp8_attention, compiled=False, layers=range(len(bf16_dit.layers)))
    out[f"fp8_attention_{args.fp8_attention}_alone_eager"] = relative_errors(velocity(bf16_dit, inputs), reference)
    del bf16_dit
    fp8_dit = quantize_to_fp8(random_dit(variant, device, dtype), variant, size)
    compile_layers(fp8_dit, mode=args.compile_mode, backend=args.compile_backend)
    out["fp8_native_compiled"] = relative_errors(velocity(fp8_dit, inputs), reference)
    use_fp8_attention(fp8_dit, args.fp8_attention)
    out[f"fp8_native_compiled_fp8_attention_{args.fp8_attention}"] = relative_errors(velocity(fp8_dit, inputs),
                                                                                   reference)
    return out


def on_load(args, device: torch.device) -> dict:
    """A bf16 checkpoint quantised to FP8 on load through RuntimeConfig.quantize_fp8 (the module docstring)."""
    import gc
    import json
    import shutil
    import tempfile

    from benchmarks.synthetic_checkpoint import variant_for as written_variant, write_whole_dit
    from magi_engine.config import RuntimeConfig
    from magi_engine.dit.compiled import resolve_runtime
    from magi_engine.loading.memory import estimate_memory
    from magi_engine.magi_checkpoint import load_magi_dit

    variant = variant_for(args.variant)
    width, height = (int(v) for v in args.size.split("x"))
    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    # The setting's gate; the CPU (a smoke test of this script) refuses it, so there its loader is called as is.
    quantize = resolve_runtime(RuntimeConfig(quantize_fp8=True), device).quantize_fp8 if cuda else True
    peak = bf16_peak_tflops(device)
    out = {"variant": variant.name, "size": [width, height], "window": args.window, "steps": args.steps,
           "chunks": args.chunks, "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
           "bf16_matmul_peak_tflops": round(peak, 1),
           "reference": "eager bf16 (float32 islands) loaded from the same folder, same inputs",
           "weights": "accuracy's (magi_scale.random_dit, seed 0)" if args.checkpoint is None else str(args.checkpoint)}

    def save() -> None:  # what is measured so far survives a call cut short
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({**out, "partial": True}, indent=1) + "\n")

    def allocated() -> float:
        return torch.cuda.memory_allocated() / GIB if cuda else float("nan")

    # 1. A bf16 DiT folder in the official layout, unless given: `accuracy`'s random weights (the same model, so
    #    the two errors compare the paths and nothing else; the by-tensor writer's draws are another model).
    weights, root = args.checkpoint, None
    if weights is None:
        root = Path(tempfile.mkdtemp(prefix="magi_onload_"))
        tiny = variant.name == "tiny"
        name = "4.5B_distill" if tiny else variant.name  # tiny: the 4.5B distill's layout at variant_for's size
        started = time.perf_counter()
        weights = write_whole_dit(root, written_variant(name, tiny), device, dtype)
        out["write_checkpoint_s"] = round(time.perf_counter() - started, 1)
        if cuda:
            torch.cuda.empty_cache()
    # 2. The reference: the same folder loaded in bf16, one forward of 5 chunks (as `accuracy`).
    started = time.perf_counter()
    dense = load_magi_dit(weights, variant, device, dtype)
    sync()
    out["bf16_load_s"], out["bf16_weights_gib"] = round(time.perf_counter() - started, 2), round(allocated(), 2)
    inputs = forward_inputs(dense, device, (width, height), chunks=5, seed=3)
    reference = velocity(dense, inputs)
    del dense
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    before = allocated()  # the reference and the inputs
    # 3. The setting: quantised layer by layer as it loads.
    started = time.perf_counter()
    dit = load_magi_dit(weights, variant, device, dtype, quantize_fp8=quantize, size=(width, height))
    sync()
    load_s = time.perf_counter() - started
    report = dit.fp8_quantization
    estimate = estimate_memory(variant.dit, width=width, height=height, window=args.window,
                               cache_chunks=variant.sampling.cache_chunks, quantize_on_load=True,
                               text_encoder_on_device=False, include_vae=False)
    amax = sorted(report.input_amax.values())
    calibration = report.calibration
    out.update(load_s=round(load_s, 2), calibrate_and_quantize_s=round(report.seconds, 2),
               calibration={"t": list(calibration.t), "texts": list(calibration.texts),
                            "size": [calibration.width, calibration.height], "step_size": calibration.step_size,
                            "headroom": calibration.headroom},
               quantized_linears=len(amax),
               input_amax_min_median_max=[round(amax[0], 3), round(amax[len(amax) // 2], 3), round(amax[-1], 3)],
               weights_gib=round(allocated() - before, 2),
               load_peak_gib=round(torch.cuda.max_memory_allocated() / GIB - before, 2) if cuda else None,
               estimate_weights_gib=round(estimate.weights_bytes / GIB, 2),
               estimate_load_peak_gib=round(estimate.load_bytes / GIB, 2))
    out["fp8_on_load_eager"] = relative_errors(velocity(dit, inputs), reference)
    save()
    # 4. Compiled, as generation runs it: errors, then the sampler's steady steps.
    compile_layers(dit, mode=args.compile_mode, backend=args.compile_backend)
    out["fp8_on_load_compiled"] = relative_errors(velocity(dit, inputs), reference)
    save()
    sampling = SamplingConfig.from_dict({**variant.sampling.to_dict(), "window": args.window, "num_steps": args.steps})
    run = SamplerRun(variant, (width, height), sampling, dit, random_plans(variant, (width, height), args.chunks),
                     FlopRecorder(dit), peak, load_s, out["weights_gib"])
    out["run_compiled"] = steady_steps(run, args.chunks)
    save()
    del dit, run
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    # 5. Other calibrations (quantised in memory: the same code as on load).
    for name, changes in CALIBRATION_VARIANTS.items() if args.calibration_variants else ():
        dense = load_magi_dit(weights, variant, device, dtype)
        quantize_to_fp8(dense, variant, (width, height), **changes)
        out[f"fp8_{name}_eager"] = relative_errors(velocity(dense, inputs), reference)
        del dense
        save()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    return out


def gemm(args, device: torch.device) -> dict:
    """The 4.5B's fc2 GEMM (rows of a window-4 step with its near-clean copy) in bf16 and FP8."""
    m, k, n = 5 * 12150, 12288, 3072
    if device.type != "cuda":
        m, k, n = 256, 512, 256
    x = torch.randn(m, k, device=device, dtype=torch.bfloat16)
    w = torch.randn(n, k, device=device, dtype=torch.bfloat16) / k**0.5
    w8 = (w.float() / (w.abs().max() / 448)).to(torch.float8_e4m3fn)
    divisor = torch.full((k,), float(x.abs().max()) / 448, device=device)
    one = torch.ones((), device=device)
    x8 = quantize_activation(x, divisor)
    row_a, row_b = torch.ones(m, 1, device=device), torch.ones(1, n, device=device)
    flop = 2 * m * k * n
    cases = {
        "bf16": lambda: x @ w.t(),
        "fp8_tensorwise": lambda: torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
        "fp8_tensorwise_fast_accum": lambda: torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one,
                                                              out_dtype=torch.bfloat16, use_fast_accum=True),
        "fp8_rowwise": lambda: torch._scaled_mm(x8, w8.t(), scale_a=row_a, scale_b=row_b, out_dtype=torch.bfloat16),
        "quantize_activation_alone": lambda: quantize_activation(x, divisor),
    }
    out = {"shape_mkn": [m, k, n], "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    for name, fn in cases.items():
        try:
            seconds = timed(fn)
            out[name] = {"ms": round(seconds * 1e3, 3)}
            if name != "quantize_activation_alone":
                out[name]["tflops"] = round(flop / seconds / 1e12, 1)
        except RuntimeError as exc:  # e.g. a scaling this torch/GPU does not offer
            out[name] = {"error": str(exc).splitlines()[0][:200]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("run", "accuracy", "gemm", "profile", "onload"))
    parser.add_argument("--path", choices=("eager", "compiled", "fp8"), default="eager")
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--size", default="720x720")
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--compile-mode", default="default")
    parser.add_argument("--fp8-attention", choices=("off", "cudnn", "triton"), default="off",
                        help="self-attention in FP8 (magi_engine.dit.fp8_attention): in the FP8 layers of --path fp8, "
                             "in every layer of the bf16 paths; accuracy adds FP8 attention alone and with FP8 linears")
    parser.add_argument("--flash-attention", nargs="?", const="all", choices=("all", "self"),
                        help="bf16 attention through FlashAttention 4 (magi_engine.dit.flash_attention; Hopper "
                             "with flash-attn-4) in every layer without FP8 attention: self- and cross-attention "
                             "(alone or 'all'), or self-attention only ('self')")
    parser.add_argument("--fused-kernels", nargs="?", const="opaque", choices=("opaque", "traced"),
                        help="each layer's norm + gate + residual and QK-norm + RoPE as fused Triton kernels "
                             "(magi_engine.dit.fused; CUDA with Triton): the engine's opaque custom ops (alone or "
                             "'opaque'), or the triton_op ones compile traces into ('traced'); accuracy: their "
                             "errors, eager and compiled")
    parser.add_argument("--gelu-epilogue", action="store_true",
                        help="fc1 and its GELU as one cuBLASLt GEMM with a GELU epilogue (tanh form; "
                             "magi_engine.dit.gelu_epilogue, an experiment); accuracy: with --flash-attention")
    parser.add_argument("--compile-backend", default="inductor", help="'eager': a smoke test of the wiring (CPU)")
    parser.add_argument("--profile-steps", type=int, default=3,
                        help="profile: the steady steps profiled (after one unprofiled steady step)")
    parser.add_argument("--trace", type=Path, help="profile: also write the Chrome trace here (large)")
    parser.add_argument("--checkpoint", type=Path, help="onload: a bf16 DiT folder (default: one written first)")
    parser.add_argument("--no-calibration-variants", dest="calibration_variants", action="store_false",
                        help="onload: skip the errors of other calibrations (CALIBRATION_VARIANTS)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    modes = {"run": run_sampler, "accuracy": accuracy, "gemm": gemm, "profile": profile, "onload": on_load}
    result = modes[args.mode](args, device)
    publish(__file__, None, result, args.json)


if __name__ == "__main__":
    main()
