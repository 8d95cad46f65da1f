"""Speed and accuracy of the DiT's GPU paths at MAGI-1 scale: eager bf16, compiled bf16, native FP8.

Random weights (as benchmarks/magi_scale.py: speed does not depend on the values). The FP8 model is
the same bf16 model quantised in memory to MAGI-1's FP8 layout in layers 1..L-2, as the official checkpoints
are, by the engine's own quantiser (magi_engine.dit.fp8_quantize: RuntimeConfig.quantize_fp8's calibration).

    python benchmarks/gpu_speed.py run --path compiled --window 4 --chunks 6 --json out.json
    python benchmarks/gpu_speed.py accuracy --json acc.json     # max relative errors vs eager bf16
    python benchmarks/gpu_speed.py gemm --json gemm.json        # one FP8 / bf16 GEMM of the 4.5B, alone
    python benchmarks/gpu_speed.py profile --path compiled --chunks 5 --json prof.json  # kernel time by kind
    python benchmarks/gpu_speed.py onload --chunks 5 --json onload.json  # a bf16 checkpoint quantised to FP8 on load

The command line and the modes run, accuracy and gemm are here; `profile` is benchmarks/gpu_speed_profile.py,
`onload` benchmarks/gpu_speed_onload.py (its docstring says what it loads and sets against what), and what the modes
share is benchmarks/gpu_speed_setup.py: the model of --path, a forward's inputs and errors, FLOP counts, and the
sampler's "steady" steps (stages 4..chunks-1: window full, KV cache holding every chunk a step attends), whose
TFLOP/s is set against a bf16 matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.gpu_speed_onload import on_load  # noqa: E402
from benchmarks.gpu_speed_profile import profile  # noqa: E402
from benchmarks.gpu_speed_setup import (dequantized_copy_weights, forward_inputs, quantize_to_fp8,  # noqa: E402
                                        relative_errors, sampler_run, steady_steps, timed, variant_for, velocity)
from benchmarks.magi_scale import random_dit  # noqa: E402
from benchmarks.record import publish  # noqa: E402
from magi_engine.dit.compiled import compile_layers, uncompile_layers, use_flash_attention, use_fp8_attention  # noqa: E402
from magi_engine.dit.fp8_linear import quantize_activation  # noqa: E402
from magi_engine.dit.fused import use_fused_kernels  # noqa: E402
from magi_engine.dit.gelu_epilogue import use_gelu_epilogue  # noqa: E402


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
    parser.add_argument("--fp8-attention", choices=("off", "cudnn", "fa3", "triton"), default="off",
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
                        help="onload: skip the errors of other calibrations (gpu_speed_onload.CALIBRATION_VARIANTS)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    modes = {"run": run_sampler, "accuracy": accuracy, "gemm": gemm, "profile": profile, "onload": on_load}
    result = modes[args.mode](args, device)
    publish(__file__, None, result, args.json)


if __name__ == "__main__":
    main()
