"""benchmarks/fp8_sensitivity.py: FP8's error on models that differ in their weights, smoke-tested at tiny widths."""

from __future__ import annotations

import json

import pytest

from benchmarks import fp8_sensitivity


@pytest.mark.slow
def test_the_setting_and_the_in_memory_quantiser_agree_on_every_model(tmp_path) -> None:
    out = tmp_path / "sensitivity.json"
    fp8_sensitivity.main(["--tiny", "--layers", "3", "--size", "64", "--models", "random_dit", "by_tensor", "zero_centred_gain_2",
                          "--json", str(out)])
    models = json.loads(out.read_text())["models"]
    assert set(models) == {"random_dit", "by_tensor", "zero_centred_gain_2"}
    for result in models.values():
        assert result["amax_paths_max_difference"] == 0.0  # one calibration, whichever path runs it
        assert result["on_load"] == result["in_memory"]
        assert all(0 < error < 0.5 for key in ("in_memory", "weights_only", "test_amax") for error in result[key])
        low, high = result["test_over_calibrated_amax_min_max"]
        assert 0 < low <= high
    # The zero-centred gains drawn at 1 (gain 2) make another model of the same checkpoint.
    assert models["zero_centred_gain_2"]["max_abs_ref"] != models["by_tensor"]["max_abs_ref"]
