"""gpu_speed.py's `onload` mode: a bf16 MAGI-1 checkpoint quantised to FP8 on load.

    python benchmarks/gpu_speed.py onload --chunks 5 --json onload.json

`onload` goes through the setting itself (RuntimeConfig.quantize_fp8, the loader's load_magi_dit) on a bf16
DiT folder in the official layout written first (`accuracy`'s very weights: synthetic_checkpoint.write_whole_dit;
`--checkpoint` reuses one): the load's time and peak memory against the bf16 load and the estimate, the errors
against eager bf16 loaded from the same folder on `accuracy`'s inputs (eager and compiled, and of other
calibrations), then the steady step of the compiled sampler, as `run`. Same weights, same inputs, same
quantiser: its eager error is `accuracy`'s fp8_native_eager, unless the setting's path differs.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.gpu_speed_setup import (GIB, FlopRecorder, SamplerRun, bf16_peak_tflops, forward_inputs,
                                        quantize_to_fp8, random_plans, relative_errors, steady_steps, sync,
                                        variant_for, velocity)
from benchmarks.synthetic_checkpoint import variant_for as written_variant, write_whole_dit
from magi_engine.config import RuntimeConfig, SamplingConfig
from magi_engine.dit.compiled import compile_layers, resolve_runtime
from magi_engine.loading.memory import estimate_memory
from magi_engine.magi_checkpoint import load_magi_dit

#: Calibrations set against the engine's (magi_engine.dit.fp8_quantize.Fp8Calibration fields changed).
#: (A headroom of 4 rounds as 2 does but for e4m3's subnormals: magi_engine.dit.fp8_quantize.)
CALIBRATION_VARIANTS = {"headroom_1": dict(headroom=1.0), "null_text_only": dict(texts=("null",)),
                        "one_noise_level": dict(t=(0.5,))}


def on_load(args, device: torch.device) -> dict:
    """A bf16 checkpoint quantised to FP8 on load through RuntimeConfig.quantize_fp8 (this module's docstring)."""
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
