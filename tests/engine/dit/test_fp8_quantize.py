"""Quantising a bf16 checkpoint to native FP8 on load: which linears, their scales, the calibration, and that
loading holds one dense layer at a time. (The FP8 matmul runs on the CPU here through torch._scaled_mm's CPU
kernel, as in test_fp8_linear; the GPU's figures are benchmarks/gpu_speed.py `onload`.)"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.fp8_linear import E4M3_MAX, Fp8Linear, fp8_module_names, is_per_channel
from magi_engine.dit.fp8_quantize import (CALIBRATION_HEADROOM, CALIBRATION_T, Fp8Calibration, load_quantized,
                                          quantize_layer_by_layer)
from magi_engine.dit.model import ChunkText, MagiDiT, is_float32_island
from magi_engine.dit.official_keys import official_key_plan, to_official_state_dict
from magi_engine.loading import save_sharded
from magi_engine.loading.fp8 import quantize_fp8_linear
from magi_engine.magi_checkpoint import fp8_calibration, load_magi_dit
from tests.engine.factories import randomize_
from tests.engine.test_magi_checkpoint import TINY, quantise_layers, tiny_variant, velocity

SIZE = (32, 32)  # pixels: the 4x4 latent grid of `velocity`'s inputs
QUANTISED = fp8_module_names(range(1, TINY.num_layers - 1))


@pytest.fixture
def bf16_weights(tmp_path):
    """A tiny distilled DiT in the official (non-FP8) layout, and the model it was written from."""
    model = randomize_(MagiDiT(TINY), seed=4).eval()
    weights = tmp_path / "4.5B_distill" / "inference_weight.distill"
    save_sharded(to_official_state_dict(model.state_dict(), TINY), weights, max_shard_bytes=10**9)
    return weights, model


def _official_prefix(name: str) -> str:
    """The official key prefix of one of our linears, e.g. layers.1.attn.to_q -> ...layers.1.self_attention.linear_qkv.q"""
    return official_key_plan(TINY)[f"{name}.weight"].official[0][: -len(".weight")]


def test_quantising_on_load_equals_loading_the_fp8_checkpoint_of_the_same_weights_and_scales(bf16_weights, tmp_path):
    weights, model = bf16_weights
    quantised = load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.float32, quantize_fp8=True, size=SIZE)

    # Bookkeeping: exactly MAGI-1's FP8 set became Fp8Linear (layers 1..L-2), the rest stayed dense.
    report = quantised.fp8_quantization
    assert report.layers == [1, 2] and sorted(report.modules) == sorted(QUANTISED)
    swapped = [n for n, m in quantised.named_modules() if isinstance(m, Fp8Linear)]
    assert sorted(swapped) == sorted(QUANTISED)
    for name, module in quantised.named_modules():
        if isinstance(module, nn.Linear):
            assert module.weight.dtype == torch.float32, name
    assert all(p.dtype == torch.float32 and not p.is_meta for p in quantised.parameters())

    # Scales: the weight's from its own max, the activation's from the calibrated max with the headroom.
    for name in QUANTISED:
        module, dense = quantised.get_submodule(name), model.get_submodule(name).weight
        assert report.input_amax[name] > 0
        expected = torch.tensor(report.input_amax[name] * CALIBRATION_HEADROOM / E4M3_MAX)
        assert torch.equal(module.input_divisor, expected.expand(module.in_features)), name
        if is_per_channel(name):  # the divisor is folded into the weight and the GEMM's scale is 1
            assert float(module.activation_scale) == 1.0
            assert torch.equal(module.weight_scale, (dense * expected).abs().max() / E4M3_MAX)
        else:
            assert torch.equal(module.activation_scale, expected)
            assert torch.equal(module.weight_scale, dense.abs().max() / E4M3_MAX)
        # Dequantised, each weight is its bf16 weight within e4m3's rounding (3 mantissa bits: 1/16 relative).
        error = (module.dequantized_weight() - dense).abs()
        assert bool((error <= dense.abs() * (2**-4 + 2**-8) + dense.abs().max() * 2**-9).all()), name

    # The FP8 checkpoint quantize_fp8_linear writes from the same weights and scales, loaded natively.
    official = to_official_state_dict(model.state_dict(), TINY)
    for name in QUANTISED:
        prefix = _official_prefix(name)
        stored = quantize_fp8_linear(official.pop(f"{prefix}.weight"),
                                     report.input_amax[name] * CALIBRATION_HEADROOM, per_channel=is_per_channel(name))
        official.update({f"{prefix}.{key}": value for key, value in stored.items()})
    fp8_weights = tmp_path / "4.5B_distill_quant" / "inference_weight.fp8.distill"
    save_sharded(official, fp8_weights, max_shard_bytes=10**9)
    native = load_magi_dit(fp8_weights, tiny_variant(fp8=True), torch.device("cpu"), torch.float32, native_fp8=True)
    assert native.fp8_quantization is None
    for key, value in native.state_dict().items():
        assert torch.equal(quantised.state_dict()[key].view(torch.uint8) if value.dtype == torch.float8_e4m3fn
                           else quantised.state_dict()[key],
                           value.view(torch.uint8) if value.dtype == torch.float8_e4m3fn else value), key
    got = velocity(quantised)
    assert torch.equal(got, velocity(native))
    reference = velocity(model)
    assert not torch.equal(got, reference)  # weights and activations really were rounded to e4m3
    assert (got - reference).abs().max() < 0.1 * reference.abs().max()


def test_the_calibration_maxima_are_those_of_the_bf16_model_s_own_forwards(bf16_weights) -> None:
    weights, model = bf16_weights
    variant = tiny_variant()
    calibration = fp8_calibration(variant, SIZE)
    # The step size of the model's default schedule (the 4.5B distill's: S/2 for S steps).
    assert calibration.t == CALIBRATION_T and calibration.step_size == variant.sampling.num_steps / 2
    quantised = load_magi_dit(weights, variant, torch.device("cpu"), torch.float32, quantize_fp8=True, size=SIZE)

    # One plain forward of the dense model per noise level and text: one chunk of seeded noise, the null caption
    # or as many tokens of Gaussian features.
    seen: dict[str, float] = {}
    hooks = [model.get_submodule(name).register_forward_pre_hook(
        lambda module, args, name=name: seen.__setitem__(name, max(seen.get(name, 0.0), float(args[0].abs().max()))))
        for name in QUANTISED]
    generator = torch.Generator().manual_seed(calibration.seed)
    null = model.null_text()
    with torch.no_grad():
        for t in CALIBRATION_T:
            for kind in ("null", "gaussian"):
                latents = torch.randn(1, 16, 6, 4, 4, generator=generator)
                text = ChunkText.from_sequences([null if kind == "null" else torch.randn(null.shape, generator=generator)])
                model(latents, torch.tensor([[t]]), text, True, ChunkLayout.causal(0, 1, 24),
                      step_size=torch.tensor([[calibration.step_size]]))
    for hook in hooks:
        hook.remove()
    assert quantised.fp8_quantization.input_amax == pytest.approx(seen, rel=1e-6)
    with pytest.raises(ValueError, match="calibration texts"):
        Fp8Calibration(*SIZE, texts=("a prompt",))
    with pytest.raises(ValueError, match="step size"):  # a distilled model cannot run without it
        quantize_layer_by_layer(model, Fp8Calibration(*SIZE))


def test_loading_holds_one_dense_layer_of_the_fp8_set_at_a_time(bf16_weights) -> None:
    _, model = bf16_weights
    dtype_for = lambda key: torch.float32  # noqa: E731
    with torch.device("meta"):
        dit = MagiDiT(TINY)
    seen = []

    def count(index: int):
        def hook(module, args):
            dense = [n for n in fp8_module_names(range(TINY.num_layers))
                     if isinstance(dit.get_submodule(n), nn.Linear) and not dit.get_submodule(n).weight.is_meta]
            fp8 = [n for n, m in dit.named_modules() if isinstance(m, Fp8Linear)]
            later_on_meta = all(p.is_meta for layer in dit.layers[index + 1:] for p in layer.parameters())
            seen.append((index, dense, fp8, later_on_meta))
        return hook

    for index, layer in enumerate(dit.layers):
        layer.register_forward_pre_hook(count(index))
    tensors = {k: (lambda v=v: v) for k, v in model.state_dict().items()}
    report = load_quantized(dit, tensors, Fp8Calibration(*SIZE, step_size=8.0), device=torch.device("cpu"),
                            dtype_for=dtype_for)
    assert len(seen) == TINY.num_layers * len(CALIBRATION_T) * 2  # each layer runs each calibration forward once
    for index, dense, fp8, later_on_meta in seen:
        assert later_on_meta, index  # layers after it are not loaded yet
        # The dense linears of the FP8 set alive: those of layer 0 (kept dense), of this layer, and of the last.
        assert {int(n.split(".")[1]) for n in dense} <= {0, index}, (index, dense)
        assert sorted(fp8) == sorted(fp8_module_names(range(1, index)))  # earlier layers are FP8 already
    assert sorted(report.modules) == sorted(QUANTISED)
    assert all(not t.is_meta for t in dit.state_dict().values())


def test_quantising_in_memory_is_the_same_as_on_load(bf16_weights) -> None:
    weights, model = bf16_weights
    loaded = load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.float32, quantize_fp8=True, size=SIZE)
    report = quantize_layer_by_layer(model, fp8_calibration(tiny_variant(), SIZE))
    assert report.input_amax == loaded.fp8_quantization.input_amax
    assert torch.equal(velocity(model), velocity(loaded))


def test_an_fp8_checkpoint_keeps_its_own_scales(tmp_path, caplog) -> None:
    model = randomize_(MagiDiT(TINY), seed=4).eval()
    official = quantise_layers(to_official_state_dict(model.state_dict(), TINY), range(1, TINY.num_layers - 1))
    weights = tmp_path / "4.5B_distill_quant" / "inference_weight.fp8.distill"
    save_sharded(official, weights, max_shard_bytes=10**9)
    with caplog.at_level(logging.INFO, logger="magi_engine.magi_checkpoint"):
        dit = load_magi_dit(weights, tiny_variant(fp8=True), torch.device("cpu"), torch.float32, native_fp8=True,
                            quantize_fp8=True)
    assert dit.fp8_quantization is None and "nothing is quantised on load" in caplog.text
    native = load_magi_dit(weights, tiny_variant(fp8=True), torch.device("cpu"), torch.float32, native_fp8=True)
    assert torch.equal(velocity(dit), velocity(native))


def test_float32_islands_stay_float32_when_the_model_is_bf16(bf16_weights) -> None:
    weights, _ = bf16_weights
    dit = load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.bfloat16, quantize_fp8=True, size=SIZE)
    for name, param in dit.named_parameters():
        assert param.dtype == (torch.float32 if is_float32_island(name) else torch.bfloat16), name


def test_layers_can_live_elsewhere_than_where_they_are_calibrated(bf16_weights) -> None:
    """Streamed layers (DiT offload "layers"): calibrated on the compute device, each quantised layer moves to
    where it lives before the next loads. ("meta" stands in for the host here: only placement is checked.)"""
    _, model = bf16_weights
    tensors = {k: (lambda v=v: v) for k, v in model.state_dict().items()}
    places = []

    def build():
        with torch.device("meta"):
            dit = MagiDiT(TINY)
        for index, layer in enumerate(dit.layers):
            layer.register_forward_pre_hook(
                lambda module, args, index=index: places.append([layer.attn.to_q.weight.device.type
                                                                 for layer in dit.layers[:index + 1]]))
        return dit

    calibration = Fp8Calibration(*SIZE, step_size=8.0)
    here = build()
    at_home = load_quantized(here, tensors, calibration, device=torch.device("cpu"),
                             dtype_for=lambda key: torch.float32)
    places.clear()
    away = build()
    report = load_quantized(away, tensors, calibration, device=torch.device("meta"),
                            compute_device=torch.device("cpu"), dtype_for=lambda key: torch.float32)
    assert report.input_amax == at_home.input_amax  # calibrated on the compute device all the same
    for seen in places:  # the layer calibrating is on the compute device, every earlier one has moved away
        assert seen[-1] == "cpu" and all(kind == "meta" for kind in seen[:-1])
    assert all(t.is_meta for t in away.state_dict().values())  # everything ends where it lives
