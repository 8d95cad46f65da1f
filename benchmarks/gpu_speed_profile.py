"""gpu_speed.py's `profile` mode: where a steady sampler step's time goes. torch.profiler over steady steps of --path,
CUDA kernel time grouped by kind (attention, GEMM, other) as shares of the step's wall time, and the largest 'other'
kernels by name; on a CPU (a smoke test) each op's self time stands in for kernel time.

    python benchmarks/gpu_speed.py profile --path compiled --chunks 5 --json prof.json
"""

from __future__ import annotations

import time

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from benchmarks.gpu_speed_setup import FIRST_STEADY_STAGE, is_steady, sampler_run, sync, timed_steps

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
