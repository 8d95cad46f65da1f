"""FP8's error against bf16 on models that differ only in their weights, and the quantiser's two paths on each
(issue 18: why `gpu_speed.py onload` first measured 13.1% rel L2 where `accuracy` measured 5.6%).

For each model (a MAGI-1 DiT of the variant's widths with --layers layers, random weights), on `gpu_speed.py
accuracy`'s inputs (one forward of 5 chunks at staggered t, 4 back in attention) at --size:

* `in_memory`: the engine's quantiser run on the loaded model (quantize_layer_by_layer, as `accuracy` does);
* `on_load`: the same weights written in the official layout and loaded with quantize_fp8 (the setting itself),
  and the largest difference between the two paths' calibrated input_amax;
* `weights_only`: the FP8 weights dequantised, activations left in the model dtype (where the error comes from);
* `test_amax`: the activation scales set from the test inputs' own maxima (what a calibration could at best
  reach), and the range of test-input max / calibrated max over the linears (above the headroom of 2: clipped).

Models: `random_dit` (benchmarks.magi_scale, what `accuracy` measures); `by_tensor` (synthetic_checkpoint's
writer for full-size folders, every norm gain ~1 as applied); `zero_centred_gain_2` (the same with every
zero-centred gain at 2, as that writer drew them before 2026-12-07); `qk_gain_1.5` (QK-norm gains 1.5).

    python benchmarks/fp8_sensitivity.py --layers 6 --size 96 --json out.json   # 4.5B widths, CPU: ~10 minutes
    python benchmarks/fp8_sensitivity.py --tiny --layers 3 --size 64            # a smoke test, seconds
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab  # noqa: E402,F401  (a bare checkout: its engine/, resources/ as magi_engine, magi_resources)

from benchmarks.gpu_speed_setup import dequantized_copy_weights, forward_inputs, relative_errors, velocity  # noqa: E402
from benchmarks.magi_scale import random_dit  # noqa: E402
from benchmarks.record import publish  # noqa: E402
from benchmarks.synthetic_checkpoint import write_dit_by_tensor  # noqa: E402
from magi_engine.dit.fp8_linear import fp8_module_names, is_per_channel  # noqa: E402
from magi_engine.dit.fp8_quantize import default_fp8_layers, quantize_layer_by_layer, quantize_linear  # noqa: E402
from magi_engine.dit.model import MagiDiT  # noqa: E402
from magi_engine.dit.norms import OnePlusLayerNorm  # noqa: E402
from magi_engine.dit.official_keys import to_official_state_dict  # noqa: E402
from magi_engine.loading import save_sharded  # noqa: E402
from magi_engine.magi_checkpoint import fp8_calibration, load_magi_dit  # noqa: E402
from magi_engine.variants import magi_variant, tiny_dit_config  # noqa: E402

MODELS = ("random_dit", "by_tensor", "zero_centred_gain_2", "qk_gain_1.5")


def small_variant(name: str, layers: int, tiny: bool):
    variant = magi_variant(name)
    config = tiny_dit_config(distilled=variant.dit.distilled) if tiny else variant.dit
    return dataclasses.replace(variant, dit=dataclasses.replace(config, num_layers=layers))


def build(model: str, variant, root: Path, dtype: torch.dtype) -> MagiDiT:
    cpu = torch.device("cpu")
    if model == "random_dit":
        return random_dit(variant, cpu, dtype)
    folder = root / "by_tensor"
    if not folder.exists():
        write_dit_by_tensor(folder, variant.name, cpu, variant=variant)
    dit = load_magi_dit(folder / variant.hub_folder, variant, cpu, dtype)
    with torch.no_grad():
        for name, module in dit.named_modules():
            if not isinstance(module, OnePlusLayerNorm):
                continue
            if model == "zero_centred_gain_2":
                module.weight.add_(1.0)
            elif model == "qk_gain_1.5" and name.rpartition(".")[2] in ("q_norm", "k_norm", "q_norm_cross",
                                                                         "k_norm_cross"):
                module.weight.add_(0.5)
    return dit


def input_maxima(dit: MagiDiT, names: list[str], inputs) -> dict[str, float]:
    seen: dict[str, float] = {}

    def hook(name):
        return lambda module, args: seen.__setitem__(name, max(seen.get(name, 0.0), float(args[0].abs().amax())))

    hooks = [dit.get_submodule(name).register_forward_pre_hook(hook(name)) for name in names]
    try:
        velocity(dit, inputs)
    finally:
        for h in hooks:
            h.remove()
    return seen


def with_scales(dit: MagiDiT, amax: dict[str, float], headroom: float) -> MagiDiT:
    out = copy.deepcopy(dit)
    with torch.no_grad():
        for name, value in amax.items():
            owner_name, _, attr = name.rpartition(".")
            owner = out.get_submodule(owner_name)
            setattr(owner, attr, quantize_linear(getattr(owner, attr), value * headroom, per_channel=is_per_channel(name)))
    return out


def measure(dit: MagiDiT, variant, size: tuple[int, int], inputs, root: Path, dtype: torch.dtype) -> dict:
    def short(errors: dict) -> list[float]:
        return [round(errors["max_abs_over_max_abs"], 4), round(errors["rel_l2"], 4)]

    reference = velocity(dit, inputs)
    calibration = fp8_calibration(variant, size)
    in_memory = copy.deepcopy(dit)
    report = quantize_layer_by_layer(in_memory, calibration)
    folder = root / "written"
    save_sharded({k: v.detach().contiguous() for k, v in to_official_state_dict(dit.state_dict(), variant.dit).items()},
                 folder, 4 * 2**30)
    on_load = load_magi_dit(folder, variant, torch.device("cpu"), dtype, quantize_fp8=True, size=size)
    loaded_amax = on_load.fp8_quantization.input_amax
    dequantized = copy.deepcopy(dit)
    dequantized_copy_weights(dequantized, in_memory)
    names = fp8_module_names(default_fp8_layers(variant.dit.num_layers))
    seen = input_maxima(dit, names, inputs)
    ratios = [seen[name] / report.input_amax[name] for name in names]
    return {"max_abs_ref": round(float(reference.abs().max()), 3),
            "in_memory": short(relative_errors(velocity(in_memory, inputs), reference)),
            "on_load": short(relative_errors(velocity(on_load, inputs), reference)),
            "amax_paths_max_difference": max(abs(report.input_amax[n] - loaded_amax[n]) for n in names),
            "weights_only": short(relative_errors(velocity(dequantized, inputs), reference)),
            "test_amax": short(relative_errors(velocity(with_scales(dit, seen, calibration.headroom), inputs),
                                               reference)),
            "test_over_calibrated_amax_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
            "headroom": calibration.headroom}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="4.5B_distill")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--size", type=int, default=96, help="width = height in pixels")
    parser.add_argument("--tiny", action="store_true", help="the tiny DiT's widths (a smoke test)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    variant = small_variant(args.variant, args.layers, args.tiny)
    size, dtype = (args.size, args.size), torch.float32
    results = {}
    with tempfile.TemporaryDirectory(prefix="magi_fp8_sensitivity_") as tmp:
        root = Path(tmp)
        inputs = None
        for model in args.models:
            dit = build(model, variant, root, dtype)
            inputs = inputs or forward_inputs(dit, torch.device("cpu"), size, chunks=5, seed=3)
            results[model] = measure(dit, variant, size, inputs, root / model, dtype)
            print(model, results[model], flush=True)
    fields = {"variant": variant.name, "layers": args.layers, "widths": "tiny" if args.tiny else "full",
              "size": list(size), "dtype": "float32", "torch": torch.__version__,
              "errors": "[max |Δ|/max |ref|, rel. L2] against the same model unquantised", "models": results}
    return publish(__file__, argv, fields, args.json)


if __name__ == "__main__":
    main()
