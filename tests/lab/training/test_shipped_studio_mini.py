"""The shipped studio-mini bundle: within the 40 MB budget and the configuration training uses."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from magi_engine.config import DiTConfig
from magi_engine.loading.int8 import SCALE_SUFFIX
from magi_engine.models import studio_mini_path
from lab.training import studio_mini

BUDGET_BYTES = 40_000_000


def test_the_shipped_weights_fit_the_budget():
    files = list(studio_mini_path().glob("*.safetensors"))
    assert {f.name for f in files} == {"dit.safetensors", "vae.safetensors", "text_encoder.safetensors"}
    assert sum(f.stat().st_size for f in files) <= BUDGET_BYTES


def test_the_shipped_dit_is_the_training_configuration_stored_in_int8():
    manifest = json.loads((studio_mini_path() / "model.json").read_text())
    assert DiTConfig.from_dict(manifest["dit"]) == studio_mini.DIT  # export and training agree
    with safe_open(str(studio_mini_path() / "dit.safetensors"), "pt") as handle:
        keys = set(handle.keys())
        quantised = [k.removesuffix(SCALE_SUFFIX) for k in keys if k.endswith(SCALE_SUFFIX)]
        assert quantised and all(str(handle.get_slice(k).get_dtype()) == "I8" for k in quantised)
    layers = {k.split(".")[1] for k in keys if k.startswith("layers.")}
    assert len(layers) == studio_mini.DIT.num_layers


def test_the_shipped_vae_is_the_training_configuration_stored_in_int8():
    import dataclasses

    from magi_engine.vae.config import VAEConfig

    shipped = VAEConfig.from_dict(json.loads((studio_mini_path() / "model.json").read_text())["vae"])
    assert dataclasses.replace(shipped, scale_factor=studio_mini.VAE.scale_factor) == studio_mini.VAE
    with safe_open(str(studio_mini_path() / "vae.safetensors"), "pt") as handle:
        quantised = [k.removesuffix(SCALE_SUFFIX) for k in handle.keys() if k.endswith(SCALE_SUFFIX)]
        assert "decoder.blocks.0.mlp.fc2.weight" in quantised
        assert all(str(handle.get_slice(k).get_dtype()) == "I8" for k in quantised)


@pytest.mark.slow  # three studio-mini runs; the tiny cfg3 model covers the same in tests/engine/sampler
def test_studio_mini_uses_guidance_so_a_negative_prompt_changes_its_chunks_and_an_empty_one_does_not():
    import dataclasses

    from magi_engine.events import ChunkFinished
    from magi_engine.requests import ChunkSpec, GenerationRequest
    from magi_engine.session import GenerationSession

    session = GenerationSession.load("studio-mini", device="cpu")
    assert session.default_sampling.guidance.mode == "cfg3"

    fewer_steps = dataclasses.replace(session.default_sampling, num_steps=4)  # the guidance passes all the same

    def latent(negative_prompt: str):
        request = GenerationRequest(chunks=(ChunkSpec("a red ball falls", 3, negative_prompt),), width=128, height=128,
                                    sampling=fewer_steps, previews=False, decode=False)
        return next(e.latent for e in session.generate(request) if isinstance(e, ChunkFinished))

    import torch

    plain = latent("")
    assert torch.equal(plain, latent(" "))
    assert (plain - latent("a blue square")).abs().max() > 1e-3
