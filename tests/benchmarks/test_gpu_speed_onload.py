"""benchmarks/gpu_speed_onload.py, gpu_speed.py's onload mode (a bf16 checkpoint quantised to FP8 on load),
smoke-tested on a CPU with a tiny model through gpu_speed.py's command line."""

from __future__ import annotations

import json
import sys
import tempfile

import pytest
import torch

from benchmarks import gpu_speed
from benchmarks.gpu_speed_setup import forward_inputs, quantize_to_fp8, relative_errors, variant_for, velocity
from benchmarks.magi_scale import random_dit


@pytest.mark.slow
def test_onload_mode_measures_the_quantise_on_load_setting_against_bf16(tmp_path, monkeypatch) -> None:
    out = tmp_path / "onload.json"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where it writes its checkpoint folder
    monkeypatch.setattr(sys, "argv", ["gpu_speed.py", "onload", "--variant", "tiny", "--size", "64x64", "--steps", "8",
                                      "--chunks", "5", "--compile-backend", "eager", "--json", str(out)])
    gpu_speed.main()
    result = json.loads(out.read_text())
    assert "partial" not in result  # the final record, not one written on the way
    assert result["quantized_linears"] == 14  # 7 linears in each of layers 1..2 of 4
    assert result["calibration"]["texts"] == ["null", "gaussian"] and result["calibration"]["headroom"] == 2.0
    errors = {key: value["rel_l2"] for key, value in result.items() if key.startswith("fp8_")}
    assert set(errors) == {"fp8_on_load_eager", "fp8_on_load_compiled", "fp8_headroom_1_eager",
                           "fp8_null_text_only_eager", "fp8_one_noise_level_eager"}
    assert all(0 < error < 0.2 for error in errors.values())  # rounded to e4m3, not broken
    # The null caption alone under-calibrates the output projection's input (a prompt's cross-attention output).
    assert errors["fp8_null_text_only_eager"] > 1.5 * errors["fp8_on_load_eager"]
    assert result["run_compiled"]["steady_steps"] == 2
    assert not list(tmp_path.glob("magi_onload_*"))  # the checkpoint it wrote is gone
    # The folder holds `accuracy`'s weights, so on `accuracy`'s inputs the setting errs as the in-memory quantiser.
    variant, cpu = variant_for("tiny"), torch.device("cpu")
    dense = random_dit(variant, cpu, torch.float32)
    inputs = forward_inputs(dense, cpu, (64, 64), chunks=5, seed=3)
    reference = velocity(dense, inputs)
    in_memory = relative_errors(velocity(quantize_to_fp8(dense, variant, (64, 64)), inputs), reference)
    assert in_memory["rel_l2"] == pytest.approx(errors["fp8_on_load_eager"], rel=1e-4)
