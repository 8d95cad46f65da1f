"""FP8 dequantisation against the official forward semantics, re-stated here in float32.

The reference forward (PerTensorQuantizedFp8Linear / PerChannelQuantizedFp8Linear): divide x by the
per-input-channel scale, clamp to ±448, round through bf16 to e4m3, multiply by W8ᵀ and by the two
scalars the FP8 GEMM receives (input_scale[0]·weight_scale, resp. input_scale·weight_scale).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from magi_engine.errors import CheckpointError
from magi_engine.loading.fp8 import dequantize_fp8_linear, dequantized_tensors, fp8_linear_prefixes, is_fp8_linear
from magi_engine.loading.module_loading import load_into_module
from magi_engine.loading.safetensors_io import CheckpointReader, save_sharded

E4M3_MAX = 448.0


def _e4m3(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-E4M3_MAX, E4M3_MAX).bfloat16().to(torch.float8_e4m3fn)


def _calibration(fan_in: int, g: torch.Generator) -> torch.Tensor:
    # Activations whose channels have very different ranges, as real ones do.
    return torch.randn(256, fan_in, generator=g) * torch.logspace(-1, 1, fan_in)


def quantise_per_tensor(w: torch.Tensor, x_cal: torch.Tensor, *, constant: bool) -> dict[str, torch.Tensor]:
    """Our own quantiser producing the official per-tensor layout (weight [1,out,in], scales fp32)."""
    amax = x_cal.abs().amax(0) / E4M3_MAX  # [in]
    input_scale = torch.full_like(amax, float(amax.max())) if constant else amax
    # The GEMM multiplies by input_scale[0]; fold the per-channel ratio into the stored weight.
    folded = w * input_scale[None, :] / input_scale[0]
    weight_scale = folded.abs().max() / E4M3_MAX
    return {"weight": _e4m3(folded / weight_scale)[None], "weight_scale": weight_scale.reshape(1),
            "input_scale": input_scale.float()}


def quantise_per_channel(w: torch.Tensor, x_cal: torch.Tensor) -> dict[str, torch.Tensor]:
    smooth = x_cal.abs().amax(0) / E4M3_MAX  # [in]: makes every input channel span the e4m3 range
    input_scale = torch.tensor([0.5])
    folded = w * smooth[None, :] / input_scale
    weight_scale = folded.abs().max() / E4M3_MAX
    return {"weight": _e4m3(folded / weight_scale)[None], "weight_scale": weight_scale.reshape(1),
            "input_scale": input_scale, "smooth_scale": smooth[None, :].float()}


def official_forward(x: torch.Tensor, q: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, x_dequantised): the official output in float32 and the rounded input it actually multiplied."""
    w8 = q["weight"][0].float()
    if "smooth_scale" in q:
        divisor, gemm_scale = q["smooth_scale"][0], q["input_scale"][0] * q["weight_scale"][0]
    else:
        divisor, gemm_scale = q["input_scale"], q["input_scale"][0] * q["weight_scale"][0]
    xq = _e4m3(x / divisor).float()
    return (xq @ w8.T) * gemm_scale, xq * divisor


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("kind", ["per_tensor_constant", "per_tensor_varying", "per_channel"])
def test_dequantised_weight_matches_official_forward(kind: str) -> None:
    g = torch.Generator().manual_seed(3)
    fan_in, fan_out = 96, 64
    w = torch.randn(fan_out, fan_in, generator=g) / fan_in**0.5
    x_cal = _calibration(fan_in, g)
    if kind == "per_channel":
        q = quantise_per_channel(w, x_cal)
    else:
        q = quantise_per_tensor(w, x_cal, constant=kind == "per_tensor_constant")
    dense = dequantize_fp8_linear("lin", lambda key: q[key.split(".", 1)[1]])
    assert dense.shape == (fan_out, fan_in) and dense.dtype == torch.float32

    x = _calibration(fan_in, g)[:32]
    y_official, x_seen = official_forward(x, q)
    # 1. Exact algebra: on the input the official path really multiplied, the dense weight agrees to fp32 rounding.
    torch.testing.assert_close(x_seen @ dense.T, y_official, rtol=1e-4, atol=1e-5)
    # 2. On the raw input, the only difference left is the (not reproduced) e4m3 rounding of activations.
    assert _rel(x @ dense.T, y_official) < 0.06
    # 3. And the dense weight is the original one up to e4m3 weight rounding.
    assert _rel(x @ dense.T, x @ w.T) < 0.06
    if kind == "per_tensor_constant":
        torch.testing.assert_close(dense, q["weight"][0].float() * q["weight_scale"], rtol=0, atol=0)


def test_varying_input_scale_uses_its_first_element_as_gemm_scale() -> None:
    # A weight of ones with input_scale [1, 2, 4]: the dense weight must be ws·s[0]/s[i], not ws.
    q = {"weight": torch.ones(1, 2, 3).to(torch.float8_e4m3fn), "weight_scale": torch.tensor([0.5]),
         "input_scale": torch.tensor([1.0, 2.0, 4.0])}
    dense = dequantize_fp8_linear("p", lambda key: q[key[2:]])
    torch.testing.assert_close(dense, torch.tensor([[0.5, 0.25, 0.125]] * 2))


def test_prefix_detection() -> None:
    keys = ["a.q.weight", "a.q.weight_scale", "a.q.input_scale", "a.proj.weight", "a.proj.weight_scale",
            "a.proj.input_scale", "a.proj.smooth_scale", "a.k.weight", "a.norm.weight"]
    assert is_fp8_linear(keys, "a.q") and is_fp8_linear(keys, "a.proj")
    assert not is_fp8_linear(keys, "a.k") and not is_fp8_linear(keys, "a.norm")
    assert sorted(fp8_linear_prefixes(keys)) == ["a.proj", "a.q"]


def test_bad_scales_are_a_checkpoint_error() -> None:
    q = {"weight": torch.ones(1, 2, 3).to(torch.float8_e4m3fn), "weight_scale": torch.tensor([0.0]),
         "input_scale": torch.ones(3)}
    with pytest.raises(CheckpointError, match="p.weight_scale"):
        dequantize_fp8_linear("p", lambda key: q[key[2:]])
    q["weight_scale"] = torch.tensor([1.0])
    q["input_scale"] = torch.ones(5)
    with pytest.raises(CheckpointError, match="input_scale"):
        dequantize_fp8_linear("p", lambda key: q[key[2:]])


def test_fp8_checkpoint_loads_into_dense_meta_module(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(5)
    w_fc1, w_fc2 = torch.randn(16, 8, generator=g), torch.randn(8, 16, generator=g)
    fc1 = quantise_per_tensor(w_fc1, _calibration(8, g), constant=False)
    fc2 = quantise_per_channel(w_fc2, _calibration(16, g))
    state = {f"fc1.{k}": v for k, v in fc1.items()} | {f"fc2.{k}": v for k, v in fc2.items()}
    state["norm.weight"] = torch.randn(8, generator=g).bfloat16()
    save_sharded(state, tmp_path, max_shard_bytes=256)

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(8, bias=False)
            self.fc1 = nn.Linear(8, 16, bias=False)
            self.fc2 = nn.Linear(16, 8, bias=False)

    with torch.device("meta"):
        module = Mlp()
    with CheckpointReader(tmp_path) as reader:
        source = dequantized_tensors(reader)
        assert sorted(source) == ["fc1.weight", "fc2.weight", "norm.weight"]
        assert source["fc1.weight"].shape == (16, 8)
        load_into_module(module, source, device="cpu", dtype_for=lambda key: torch.bfloat16)
        expected = dequantize_fp8_linear("fc2", reader.get)
    assert module.fc1.weight.dtype == torch.bfloat16
    torch.testing.assert_close(module.fc2.weight, expected.bfloat16(), rtol=0, atol=0)
    torch.testing.assert_close(module.norm.weight, state["norm.weight"], rtol=0, atol=0)


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_fp8_linear_writes_the_official_layout(per_channel: bool) -> None:
    from magi_engine.loading.fp8 import quantize_fp8_linear

    g = torch.Generator().manual_seed(9)
    w = torch.randn(32, 48, generator=g) / 7
    x = torch.randn(64, 48, generator=g)
    stored = quantize_fp8_linear(w, float(x.abs().max()), per_channel=per_channel)
    expected = {"weight": (1, 32, 48), "weight_scale": (1,), "input_scale": (1,) if per_channel else (48,)}
    if per_channel:
        expected["smooth_scale"] = (1, 48)
    assert {k: tuple(v.shape) for k, v in stored.items()} == expected
    assert stored["weight"].dtype == torch.float8_e4m3fn
    dense = dequantize_fp8_linear("p", lambda key: stored[key[2:]])
    assert _rel(dense, w) < 0.04  # e4m3 keeps 3 mantissa bits
    y, _ = official_forward(x, stored)
    assert _rel(y, x @ w.T) < 0.06  # activations within range: rounding only, no clipping


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_fp8_linear_gives_the_same_bytes_whatever_its_block_of_rows(monkeypatch, per_channel: bool) -> None:
    from magi_engine.loading import fp8

    g = torch.Generator().manual_seed(10)
    w = (torch.randn(37, 48, generator=g) / 7).bfloat16()
    w[29, 5] = 3.0  # the largest weight in a later block: the scale must see every block
    whole = fp8.quantize_fp8_linear(w, 5.0, per_channel=per_channel)
    monkeypatch.setattr(fp8, "QUANTIZE_BLOCK_ELEMENTS", 100)  # two rows a block, the last one short
    blocks = fp8.quantize_fp8_linear(w, 5.0, per_channel=per_channel)
    assert whole.keys() == blocks.keys()
    for key in whole:
        assert torch.equal(whole[key].view(torch.uint8) if key == "weight" else whole[key],
                           blocks[key].view(torch.uint8) if key == "weight" else blocks[key]), key
    assert float(blocks["weight_scale"]) == pytest.approx(3.0 * (5.0 / 448 if per_channel else 1.0) / 448)
