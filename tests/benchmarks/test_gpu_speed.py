"""benchmarks/gpu_speed.py's profile mode (a steady step's time by kind) and onload mode (quantising a bf16
checkpoint to FP8 on load), smoke-tested on a CPU with a tiny model."""

from __future__ import annotations

import json
import sys
import tempfile

import pytest
import torch

from benchmarks import gpu_speed



def test_kernel_names_are_grouped_by_kind() -> None:
    kind = gpu_speed.kernel_kind
    attention = ["cudnn_generated_fort_native_sdpa_sm90_knob_7_64x128x128_4x1x1_kernel0_0",
                 "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4> >",
                 "fmha_cutlassF_bf16_aligned_64x128_rf_sm80", "fp8_attention_kernel"]
    gemm = ["nvjet_tst_192x192_64x4_2x1_v_bz_coopB_TNT", "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize",
            "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8>",
            "void splitKreduce_kernel<32, 16, int, float, __nv_bfloat16>", "triton_tem_fused_mm_0"]
    other = ["triton_per_fused__to_copy_add_mul_native_layer_norm_0", "triton_poi_fused_cat_cos_mul_sin_1",
             "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float> >",
             "Memcpy DtoD (Device -> Device)"]
    assert [kind(n) for n in attention + gemm + other] == ["attention"] * 4 + ["gemm"] * 5 + ["other"] * 4
    assert kind("aten::_scaled_dot_product_flash_attention_for_cpu", cuda=False) == "attention"
    assert [kind(n, cuda=False) for n in ("aten::mm", "aten::addmm", "aten::layer_norm")] == ["gemm", "gemm", "other"]


@pytest.mark.slow
def test_profile_mode_splits_a_steady_step_into_attention_gemm_and_the_rest(tmp_path, monkeypatch) -> None:
    out = tmp_path / "profile.json"
    monkeypatch.setattr(sys, "argv", ["gpu_speed.py", "profile", "--path", "eager", "--variant", "tiny",
                                      "--size", "64x64", "--steps", "8", "--chunks", "5", "--json", str(out)])
    gpu_speed.main()
    result = json.loads(out.read_text())
    # 8 steps, window 4: two steps a stage; stage 4 is the only steady one: one unprofiled, one profiled.
    assert result["profiled_steps"] == 1 and result["all_profiled_steady"] and result["profiled_stages"] == [4]
    for kind in ("attention", "gemm", "other"):
        assert result[kind]["s_per_step"] > 0 and result[kind]["kernels"] >= 1
    busy = sum(result[kind]["s_per_step"] for kind in ("attention", "gemm", "other"))
    assert busy == pytest.approx(result["kernel_s_per_step"], abs=1e-3)
    assert 0 < busy <= result["step_s"] * 1.01  # self times of one thread cannot exceed the wall time
    top = [row["ms_per_step"] for row in result["top_other"]]
    assert top == sorted(top, reverse=True) and 0 < len(top) <= 25
    assert any("scaled_dot_product" in row["name"] for row in result["top_attention"])
    assert result["command"].startswith("python benchmarks/gpu_speed.py profile")


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
    variant, cpu = gpu_speed.variant_for("tiny"), torch.device("cpu")
    dense = gpu_speed.random_dit(variant, cpu, torch.float32)
    inputs = gpu_speed.forward_inputs(dense, cpu, (64, 64), chunks=5, seed=3)
    reference = gpu_speed.velocity(dense, inputs)
    in_memory = gpu_speed.relative_errors(gpu_speed.velocity(gpu_speed.quantize_to_fp8(dense, variant, (64, 64)), inputs),
                                       reference)
    assert in_memory["rel_l2"] == pytest.approx(errors["fp8_on_load_eager"], rel=1e-4)
