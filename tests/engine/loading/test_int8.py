"""Int8 storage of weight matrices: bounded rounding, damage detected, bundles that load and generate."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from magi_engine.bundle import load_native_bundle, save_native_bundle
from magi_engine.errors import CheckpointError
from magi_engine.loading import CheckpointReader
from magi_engine.loading.int8 import MIN_ELEMENTS, SCALE_SUFFIX, dequantize_int8, int8_dequantized_tensors, quantize_int8
from magi_engine.requests import ChunkSpec, GenerationRequest
from magi_engine.session import GenerationSession
from magi_engine.events import ChunkFinished
from tests.engine.factories import tiny_bundle


def test_matrices_round_to_within_half_a_step_of_their_row_and_small_tensors_stay_float():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 128, generator=g) * torch.linspace(0.01, 3.0, 64)[:, None]  # rows of very different range
    state = {"w": weight, "bias": torch.randn(64, generator=g), "small": torch.randn(8, 8, generator=g),
             "steps": torch.tensor([3])}
    stored = quantize_int8(state)
    assert stored["w"].dtype == torch.int8 and stored["w" + SCALE_SUFFIX].shape == (64,)
    assert stored["bias"].dtype == torch.float16 and stored["small"].dtype == torch.float16
    assert stored["steps"].dtype == torch.int64
    back = dequantize_int8(stored)
    assert set(back) == set(state)
    step = weight.abs().amax(dim=1, keepdim=True) / 127
    assert bool(((back["w"] - weight).abs() <= step / 2 + 1e-7).all())  # each row at its own resolution
    assert torch.equal(quantize_int8(back)["w"], stored["w"])  # storing again changes nothing


def test_a_damaged_int8_file_is_refused_with_a_clear_message(tmp_path):
    stored = quantize_int8({"w": torch.randn(64, 128)})
    zero_scale = dict(stored, **{"w" + SCALE_SUFFIX: torch.zeros(64)})
    with pytest.raises(CheckpointError, match="damaged"):
        dequantize_int8(zero_scale)
    orphan = {"w" + SCALE_SUFFIX: stored["w" + SCALE_SUFFIX]}
    with pytest.raises(CheckpointError, match="no weight"):
        dequantize_int8(orphan)
    wrong_rows = dict(stored, **{"w" + SCALE_SUFFIX: torch.ones(63)})
    save_file(wrong_rows, str(tmp_path / "dit.safetensors"))
    with CheckpointReader(tmp_path / "dit.safetensors") as reader:
        lazy = int8_dequantized_tensors(reader)
        assert set(lazy) == {"w"} and lazy["w"].shape == (64, 128)
        with pytest.raises(CheckpointError, match="does not match its scale"):
            lazy["w"]()


def test_a_bundle_with_int8_matrices_is_smaller_and_generates_nearly_the_same_video(tmp_path):
    bundle = tiny_bundle(seed=3)
    save_native_bundle(bundle, tmp_path / "fp16", dtype=torch.float16)
    save_native_bundle(bundle, tmp_path / "int8", dtype=torch.float16, int8_matrices=True)
    for part, module in (("dit", bundle.dit), ("vae", bundle.vae)):
        fp16_size = (tmp_path / "fp16" / f"{part}.safetensors").stat().st_size
        int8_size = (tmp_path / "int8" / f"{part}.safetensors").stat().st_size
        assert int8_size < 0.8 * fp16_size  # the tiny model's many small tensors stay fp16
        stored = load_file(str(tmp_path / "int8" / f"{part}.safetensors"))
        large = [k for k, v in module.state_dict().items() if v.dim() == 2 and v.numel() >= MIN_ELEMENTS]
        assert large and all(stored[k].dtype == torch.int8 for k in large)
        # The codes are those of the float32 weights, not of their fp16 copy (which would round twice).
        exact = quantize_int8(module.state_dict())
        assert all(torch.equal(stored[k], exact[k]) for k in large)

    def first_chunk(folder):
        session = GenerationSession(load_native_bundle(folder, torch.device("cpu"), torch.float32))
        request = GenerationRequest(chunks=(ChunkSpec("a red circle", seed=7),), width=64, height=64)
        return next(e.latent for e in session.generate(request) if isinstance(e, ChunkFinished))

    reference, quantised = first_chunk(tmp_path / "fp16"), first_chunk(tmp_path / "int8")
    assert not torch.equal(reference, quantised)  # the int8 weights were really used...
    relative = (reference - quantised).norm() / reference.norm()
    assert relative < 0.05  # ...and change the result by rounding only

    # The int8 VAE decodes one latent to nearly the same pixels as the fp16 one.
    decoded = [load_native_bundle(tmp_path / name, torch.device("cpu"), torch.float32).vae.latents_to_pixels(reference)
               for name in ("fp16", "int8")]
    difference = (decoded[0].float() - decoded[1].float()).abs()
    assert difference.max() > 0 and difference.mean() < 2.0  # uint8 levels
