"""Quantising a bf16 MAGI-1 DiT to native FP8 as it loads (RuntimeConfig.quantize_fp8; issue 18).

MAGI-1's FP8 checkpoints (`*_distill_quant`) store seven linears of layers 1..L-2 in float8_e4m3fn
(`fp8_module_names`: q, cross-attention q, k, v, fc1 per-tensor; the output projection and fc2
per-channel). A bf16 checkpoint gets the same set quantised here, each linear through
`magi_engine.loading.fp8.quantize_fp8_linear` (MAGI-1's stored layout) into an `Fp8Linear`
(`Fp8Linear.from_stored`): so a bf16 checkpoint quantised on load runs bit for bit as the FP8 checkpoint
`quantize_fp8_linear` would write from the same weights and activation maxima, loaded natively.

Scales, per linear, tensor-wise:

* weight: max|W| / 448, so no weight is clipped;
* activation: `headroom` · amax / 448, where amax is the largest |input| the linear sees in the
  calibration: forwards of the bf16 model itself, one per noise level of `CALIBRATION_T` (noise to
  clean, both ends included: the sampler's steps and the clean chunks it encodes for the KV cache visit
  the whole range) and text of `CALIBRATION_TEXTS`, each of one chunk of Gaussian noise latents (what the
  sampler starts every chunk from) at the size the model is loaded for, with the "text present" flag and
  the step size of the model's default schedule. The texts are the model's own null caption (the text of
  the unconditional passes, the only text known at load) and as many tokens of unit Gaussian features, a
  stand-in for a prompt's encoding: a prompt's cross-attention output (the output projection's input) can
  be far larger than the null caption's, and an amax taken on the null caption alone clips it. Seeded: a
  load quantises the same way every time.

Why err high: e4m3 is a floating-point format. Scaling its input by a power of two moves the exponent
and leaves every rounding as it was, except for values that fall into e4m3's subnormals (below
2⁻⁶ of the scale, i.e. amax·2⁻¹⁴·headroom) — while an input above the calibrated range is clipped,
and clipping an outlier channel is what hurts a transformer. So the calibration takes the max over
every input it can make up, and `CALIBRATION_HEADROOM` = 2 keeps an input up to twice that unclipped
at the cost of one binade of subnormals. benchmarks/gpu_speed.py `onload` measures the choices against
bf16 (headroom 1 and 4, the null caption alone, one noise level); on a tiny random model on the CPU the
null caption alone doubles the error (10.4% against 6.0% max relative), headroom 1, 2 and 4 give the
same numbers to four digits.

Layer by layer (`load_quantized`): the embedders and the final projection load first; then each
transformer layer in turn loads in the model dtype, the calibration's hidden states pass through it
(hooks take each linear's amax), its linears become FP8 and their dense weights are dropped before the
next layer loads. So loading never holds more than the FP8 model plus one dense layer, the calibration
states (one chunk's tokens per noise level) and one chunk's activations — far below a generation
step's peak. The calibration follows the bf16 model's own hidden states (each layer is calibrated
before it is quantised), so the maxima are those of the bf16 model and do not depend on the order.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from magi_engine.config import CHUNK_LATENT_FRAMES
from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.fp8_linear import Fp8Linear, fp8_module_names, is_per_channel
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.loading.fp8 import quantize_fp8_linear
from magi_engine.loading.module_loading import check_keys_and_shapes, load_into_module

log = logging.getLogger(__name__)

#: The calibration's noise levels (MAGI-1's t: 0 noise, 1 clean) and texts: one single-chunk forward for each pair.
CALIBRATION_T = (0.0, 0.25, 0.5, 0.75, 1.0)
#: "null": the model's null caption; "gaussian": as many tokens of unit Gaussian features (a stand-in for a prompt).
CALIBRATION_TEXTS = ("null", "gaussian")
#: Activation scale = CALIBRATION_HEADROOM · calibrated amax / 448 (see the module docstring).
CALIBRATION_HEADROOM = 2.0


@dataclass(frozen=True)
class Fp8Calibration:
    """How the activation scales are calibrated: `width`×`height` in pixels (the size the model is loaded
    for), noise levels `t`, texts (CALIBRATION_TEXTS), a distilled model's step-size input, the headroom and
    the noise's seed."""

    width: int
    height: int
    t: tuple[float, ...] = CALIBRATION_T
    texts: tuple[str, ...] = CALIBRATION_TEXTS
    step_size: float | None = None
    headroom: float = CALIBRATION_HEADROOM
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.texts) - set(CALIBRATION_TEXTS)
        if unknown or not self.texts or not self.t:
            raise ValueError(f"calibration texts must be some of {CALIBRATION_TEXTS} and t not empty, "
                             f"got {self.texts} and {self.t}")


@dataclass
class Fp8Quantization:
    """What quantisation on load did: the calibrated input amax of every quantised linear (by module name),
    the layers quantised, the calibration used and the seconds spent (loading the layers excluded)."""

    calibration: Fp8Calibration
    layers: list[int]
    input_amax: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def modules(self) -> list[str]:
        return list(self.input_amax)


def default_fp8_layers(num_layers: int) -> list[int]:
    """The layers MAGI-1's FP8 checkpoints quantise: all but the first and the last."""
    return list(range(1, num_layers - 1))


def quantize_linear(dense: nn.Linear, input_amax: float, *, per_channel: bool) -> Fp8Linear:
    """`dense` as an Fp8Linear on its device: weight and scales as `quantize_fp8_linear` stores them."""
    if dense.bias is not None:
        raise ValueError("MAGI-1's FP8 linears have no bias")
    stored = quantize_fp8_linear(dense.weight, input_amax, per_channel=per_channel)
    return Fp8Linear.from_stored(stored, device=dense.weight.device)


@dataclass
class _Sample:
    x: torch.Tensor
    condition: torch.Tensor
    text: torch.Tensor
    text_mask: torch.Tensor | None


def _calibration_samples(dit: MagiDiT, calibration: Fp8Calibration, device: torch.device
                         ) -> tuple[list[_Sample], torch.Tensor, ChunkLayout]:
    """The embedded inputs of each calibration forward, and the RoPE angles and layout they share."""
    cfg = dit.config
    step = 8 * cfg.patch_size  # whole patches (a size that is not gets the nearest smaller one)
    latent_h, latent_w = (max(1, side // step) * cfg.patch_size for side in (calibration.height, calibration.width))
    layout = ChunkLayout.causal(0, 1, cfg.tokens_per_chunk(latent_h, latent_w))
    generator = torch.Generator().manual_seed(calibration.seed)
    null = dit.null_text()  # [tokens, caption_channels]
    step_size = None if calibration.step_size is None else torch.full((1, 1), calibration.step_size, device=device)
    samples, angles = [], None
    for t in calibration.t:
        for kind in calibration.texts:
            latents = torch.randn(1, cfg.latent_channels, CHUNK_LATENT_FRAMES, latent_h, latent_w, generator=generator)
            features = null if kind == "null" else torch.randn(null.shape, generator=generator)
            text = ChunkText.from_sequences([features], device=device)
            x, condition, text_tokens, text_mask, angles = dit.embed(
                latents.to(device), torch.full((1, 1), t, device=device), text, True, layout, step_size)
            samples.append(_Sample(x, condition, text_tokens, text_mask))
    return samples, angles, layout


def quantize_layer_by_layer(dit: MagiDiT, calibration: Fp8Calibration, *, layers: list[int] | None = None,
                            device: torch.device | None = None, load_layer: Callable[[int], None] | None = None,
                            place_layer: Callable[[int], None] | None = None) -> Fp8Quantization:
    """Calibrate and quantise `layers` (default: 1..L-2) of `dit` in place, one layer after the other.

    `load_layer(i)` materialises layer i (on `device`, where the calibration runs; default: the model's)
    before it is calibrated, `place_layer(i)` moves it where it lives once quantised: so a model whose
    layers are still on the meta device is loaded and quantised with one dense layer at a time. Without
    them the model is quantised where it is (benchmarks, tests).
    """
    if dit.config.distilled and calibration.step_size is None:
        raise ValueError("a distilled model's calibration needs the step size of its schedule (fp8_calibration)")
    layers = default_fp8_layers(dit.config.num_layers) if layers is None else list(layers)
    device = dit.device if device is None else torch.device(device)
    report = Fp8Quantization(calibration, layers)
    started = time.perf_counter()
    with torch.inference_mode():
        samples, angles, layout = _calibration_samples(dit, calibration, device)
    loading = 0.0
    for index, layer in enumerate(dit.layers):
        if load_layer is not None:
            begun = time.perf_counter()
            load_layer(index)
            loading += time.perf_counter() - begun
        names = fp8_module_names([index]) if index in layers else []
        amax: dict[str, torch.Tensor] = {}
        hooks = [dit.get_submodule(name).register_forward_pre_hook(_amax_hook(amax, name)) for name in names]
        try:
            with torch.inference_mode():
                for sample in samples:
                    sample.x, _ = layer(sample.x, sample.condition, angles, sample.text, sample.text_mask, layout,
                                        None, False)
        finally:
            for hook in hooks:
                hook.remove()
        for name in names:
            owner_name, _, attr = name.rpartition(".")
            owner = dit.get_submodule(owner_name)
            report.input_amax[name] = float(amax[name])
            with torch.no_grad():
                fp8 = quantize_linear(getattr(owner, attr), report.input_amax[name] * calibration.headroom,
                                      per_channel=is_per_channel(name))
            setattr(owner, attr, fp8)  # the dense weight goes with the module it belonged to
        if place_layer is not None:
            place_layer(index)
    report.seconds = time.perf_counter() - started - loading
    log.info("quantised %d linears of %d layers to FP8 (calibration: %d forwards of one %dx%d chunk, headroom %g) "
             "in %.1f s", len(report.input_amax), len(layers), len(samples), calibration.width,
             calibration.height, calibration.headroom, report.seconds)
    return report


def _amax_hook(amax: dict[str, torch.Tensor], name: str):
    def hook(module, args):
        seen = args[0].detach().abs().amax().float()
        amax[name] = seen if name not in amax else torch.maximum(amax[name], seen)
    return hook


def load_quantized(dit: MagiDiT, tensors: Mapping[str, Callable[[], torch.Tensor]], calibration: Fp8Calibration, *,
                   device: torch.device, compute_device: torch.device | None = None,
                   dtype_for: Callable[[str], torch.dtype], what: str = "the checkpoint",
                   layers: list[int] | None = None) -> Fp8Quantization:
    """Fill `dit` (built on the meta device, dense) from `tensors` and quantise `layers` to FP8 layer by layer.

    Everything is checked against the model before a tensor is read. The calibration runs on
    `compute_device` (default `device`); each layer moves to `device` once quantised (the CPU, for a model
    whose layers stream from host memory), the rest of the model at the end.
    """
    device = torch.device(device)
    compute_device = device if compute_device is None else torch.device(compute_device)
    check_keys_and_shapes(dit, tensors, what=what)
    with torch.no_grad():  # the layers not loaded yet carry their dtypes already (the model dtype is read from them)
        for name, param in dit.layers.named_parameters(prefix="layers"):
            param.data = param.data.to(dtype_for(name))

    def part(prefix: str) -> dict[str, Callable[[], torch.Tensor]]:
        return {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}

    for name, child in dit.named_children():
        if name != "layers":
            load_into_module(child, part(f"{name}."), device=compute_device, what=what,
                             dtype_for=lambda key, name=name: dtype_for(f"{name}.{key}"))

    def load_layer(index: int) -> None:
        load_into_module(dit.layers[index], part(f"layers.{index}."), device=compute_device, what=what,
                         dtype_for=lambda key: dtype_for(f"layers.{index}.{key}"))

    def place_layer(index: int) -> None:
        if device != compute_device:
            dit.layers[index].to(device)

    report = quantize_layer_by_layer(dit, calibration, layers=layers, device=compute_device, load_layer=load_layer,
                                     place_layer=place_layer)
    if device != compute_device:
        for name, child in dit.named_children():
            if name != "layers":
                child.to(device)
    return report
