"""Native FP8 linears: the official FP8 forward, the native loading layout, and when it is chosen."""

from __future__ import annotations

import pytest
import torch

from magi_engine.dit.fp8_linear import Fp8Linear, fp8_module_names, native_fp8_supported, use_fp8_linears
from magi_engine.dit.model import MagiDiT
from magi_engine.dit.official_keys import to_official_state_dict
from magi_engine.loading import save_sharded
from magi_engine.loading.fp8 import dequantize_fp8_linear, fp8_linear_scales, fp8_linear_weight
from magi_engine.magi_checkpoint import load_magi_dit
from tests.engine.factories import randomize_
from tests.engine.loading.test_fp8 import _calibration, official_forward, quantise_per_channel, quantise_per_tensor
from tests.engine.test_magi_checkpoint import TINY, quantise_layers, tiny_variant, velocity


def _fp8_linear(q: dict[str, torch.Tensor]) -> Fp8Linear:
    layer = Fp8Linear.from_stored(q)
    get = lambda key: q[key.split(".", 1)[1]]  # noqa: E731
    assert torch.equal(layer.weight.view(torch.uint8), fp8_linear_weight("p", get).view(torch.uint8))
    scales = fp8_linear_scales("p", get, layer.in_features, keys=[f"p.{k}" for k in q])
    assert all(torch.equal(a, b) for a, b in zip((layer.weight_scale, layer.input_divisor, layer.activation_scale),
                                                 scales))
    return layer


@pytest.mark.parametrize("kind", ["per_tensor", "per_channel"])
def test_fp8_linear_runs_the_official_forward(kind: str) -> None:
    g = torch.Generator().manual_seed(11)
    w = torch.randn(48, 64, generator=g) / 8
    x_cal = _calibration(64, g)
    q = quantise_per_channel(w, x_cal) if kind == "per_channel" else quantise_per_tensor(w, x_cal, constant=False)
    layer = _fp8_linear(q)
    x = _calibration(64, g)[:16].view(2, 8, 64)  # leading dims are kept
    y_official, _ = official_forward(x.reshape(16, 64), q)
    got = layer(x)
    assert got.shape == (2, 8, 48) and got.dtype == torch.float32
    # Same rounded operands, same scales: only the GEMM's summation order differs.
    torch.testing.assert_close(got.reshape(16, 48), y_official, rtol=1e-4, atol=1e-5)
    # The dense weight it stands for is exactly the dequantising loader's.
    assert torch.equal(layer.dequantized_weight(), dequantize_fp8_linear("p", lambda key: q[key[2:]]))
    assert layer(x.bfloat16()).dtype == torch.bfloat16


def test_swapping_on_the_meta_device_allocates_nothing() -> None:
    with torch.device("meta"):
        dit = MagiDiT(TINY)
    use_fp8_linears(dit, [1, 2])
    names = fp8_module_names([1, 2])
    assert len(names) == 14
    for name in names:
        module = dit.get_submodule(name)
        assert isinstance(module, Fp8Linear) and module.weight.is_meta
        assert module.weight.dtype == torch.float8_e4m3fn
    assert not isinstance(dit.layers[0].mlp.fc1, Fp8Linear) and not isinstance(dit.layers[3].attn.to_q, Fp8Linear)


def test_fp8_checkpoint_loads_natively_and_matches_the_dequantised_path(tmp_path) -> None:
    model = randomize_(MagiDiT(TINY), seed=4).eval()
    official = quantise_layers(to_official_state_dict(model.state_dict(), TINY), range(1, TINY.num_layers - 1))
    # Channel-varying scales, so a permutation mistake in the output projection's columns would show.
    g = torch.Generator().manual_seed(0)
    for key in [k for k in official if k.endswith("linear_proj.smooth_scale")]:
        official[key] = torch.rand(official[key].shape, generator=g) + 0.5
    weights = tmp_path / "4.5B_distill_quant" / "inference_weight.fp8.distill"
    save_sharded(official, weights, max_shard_bytes=10**9)
    dense = load_magi_dit(weights, tiny_variant(fp8=True), torch.device("cpu"), torch.float32)
    native = load_magi_dit(weights, tiny_variant(fp8=True), torch.device("cpu"), torch.float32, native_fp8=True)

    swapped = [n for n, m in native.named_modules() if isinstance(m, Fp8Linear)]
    assert sorted(swapped) == sorted(fp8_module_names(range(1, TINY.num_layers - 1)))
    for name in swapped:
        module = native.get_submodule(name)
        assert module.weight.dtype == torch.float8_e4m3fn
        assert {module.weight_scale.dtype, module.input_divisor.dtype, module.activation_scale.dtype} == {torch.float32}
        # Dequantised, the native layout is bit for bit the weight today's path loads.
        assert torch.equal(module.dequantized_weight(), dense.get_submodule(name).weight), name
    fp8_bytes = sum(b.numel() * b.element_size() for b in native.buffers())
    dense_bytes = sum(dense.get_submodule(n).weight.numel() * 4 for n in swapped)
    assert fp8_bytes < dense_bytes / 3  # one byte a weight instead of four (float32 here)

    ref, got = velocity(dense), velocity(native)
    assert not torch.equal(got, ref)  # activations really were rounded to e4m3
    assert (got - ref).abs().max() < 0.1 * ref.abs().max()


def test_native_fp8_is_only_for_gpus_with_fp8_matmuls() -> None:
    assert not native_fp8_supported("cpu")
    assert not native_fp8_supported("meta")
