"""benchmarks/gpu_fusions.py, the fused kernels' GPU measurement, smoke-tested on a CPU at the tiny DiT's widths."""

from __future__ import annotations

import importlib.util
import json

import pytest

from benchmarks import gpu_fusions

HAS_TRITON = importlib.util.find_spec("triton") is not None


@pytest.mark.slow
def test_each_fused_op_is_measured_against_its_torch_expression(tmp_path) -> None:
    out = tmp_path / "fusions.json"
    gpu_fusions.main(["--tiny", "--tokens", "24", "--chunks", "3", "--compile-backend", "eager", "--repeats", "1",
                     "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["rows"] == 72 and not out.with_suffix(".partial.json").exists()
    for name, calls in (("gated_residual", 2 * 2), ("qk_norm_rope", 2)):  # tiny: 2 layers
        case = result[name]
        assert case["calls_per_step"] == calls
        eager, compiled = case["candidates"]["eager"], case["candidates"]["compiled"]
        assert eager["errors"]["max_abs_vs_eager"] == 0 and compiled["errors"]["max_abs_vs_eager"] == 0
        # bf16 rounding of the float32 result: at most one bf16 step (2⁻⁸ of the largest value) off float64.
        assert 0 < eager["errors"]["max_abs_vs_float64"] <= eager["errors"]["max_abs_value"] / 2**7
        # both are rounded from the same unrounded time: 4 and 2 decimals
        assert eager["ms"] > 0 and abs(eager["ms_per_step"] - eager["ms"] * calls) <= 0.005 + 0.00005 * calls
        triton = case["candidates"]["triton"]
        if HAS_TRITON:  # through the interpreter (tests/conftest.py): one bf16 step off at most
            assert triton["errors"]["max_abs_vs_eager"] <= eager["errors"]["max_abs_value"] / 2**7
        else:
            assert "triton" in triton["error"]
    assert set(result["per_step_ms"]) == {"gated_residual", "qk_norm_rope"}
