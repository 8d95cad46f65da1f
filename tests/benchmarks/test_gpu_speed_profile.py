"""benchmarks/gpu_speed_profile.py, gpu_speed.py's profile mode (a steady step's time by kind), smoke-tested on a CPU
with a tiny model through gpu_speed.py's command line."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks import gpu_speed, gpu_speed_profile


def test_kernel_names_are_grouped_by_kind() -> None:
    kind = gpu_speed_profile.kernel_kind
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
