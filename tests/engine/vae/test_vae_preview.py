"""Latent -> RGB preview: the stored projection and its least-squares fit through a real encoder."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from magi_engine.errors import ConfigError, InputError
from magi_engine.vae import LatentRGBProjection, VAEConfig, VideoVAE, fit_latent_rgb_projection
from magi_engine.vae.preview import synthetic_clips

TINY = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=2.0)


def tiny_random_vae(seed: int = 0) -> VideoVAE:
    vae = VideoVAE(TINY)
    vae.reset_parameters(torch.Generator().manual_seed(seed))
    return vae.eval()


def test_projection_round_trips_through_json():
    projection = LatentRGBProjection(weight=torch.randn(3, 16), bias=torch.randn(3))
    restored = LatentRGBProjection.from_dict(json.loads(json.dumps(projection.to_dict())))
    assert restored == projection
    assert isinstance(restored.weight[0][0], float) and len(restored.bias) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        projection.bias = (0.0, 0.0, 0.0)


@pytest.mark.parametrize("data", [{"weight": [[0.0] * 16] * 2, "bias": [0.0] * 3},
                                  {"weight": [[0.0] * 16] * 3, "bias": [0.0] * 4},
                                  {"weight": [[0.0] * 16, [0.0] * 15, [0.0] * 16], "bias": [0.0] * 3},
                                  {"weight": [[0.0] * 16] * 3}])
def test_malformed_projection_is_a_config_error(data):
    with pytest.raises(ConfigError):
        LatentRGBProjection.from_dict(data)


def test_to_rgb_is_one_affine_map_per_latent_pixel():
    weight = torch.zeros(3, 16)
    weight[0, 0], weight[1, 1] = 1.0, -0.5
    projection = LatentRGBProjection(weight=weight, bias=(0.0, 0.0, -1.0))
    latents = torch.zeros(16, 2, 3, 5)
    latents[0, 1, 2, 4], latents[1, 0, 0, 0] = 1.0, 2.0
    rgb = projection.to_rgb(latents)
    assert rgb.shape == (2, 3, 5, 3) and rgb.dtype == torch.uint8
    assert rgb[1, 2, 4].tolist() == [255, 128, 0]
    assert rgb[0, 0, 0].tolist() == [128, 0, 0]
    with pytest.raises(InputError):
        projection.to_rgb(torch.zeros(8, 2, 3, 5))


def test_synthetic_clips_are_static_and_in_range():
    clips = synthetic_clips(size=64, frames=4)
    assert clips.shape[1:] == (3, 4, 64, 64)
    assert clips.min() >= -1 and clips.max() <= 1
    assert torch.equal(clips[:, :, :1].expand_as(clips), clips)


@torch.inference_mode()
def test_fitted_projection_recovers_solid_colours():
    vae = tiny_random_vae()
    projection = fit_latent_rgb_projection(vae)
    assert projection.channels == 16
    # Colours not in the fitting set, 32x32 px (not the fitting size), through the uint8 path.
    colours = torch.rand(24, 3, generator=torch.Generator().manual_seed(7)) * 2 - 1
    errors, zero_errors, mean_errors = [], [], []
    for colour in colours:
        clip = ((colour * 127.5 + 127.5).round().to(torch.uint8))[None, None, None].expand(4, 32, 32, 3)
        target = clip[0, 0, 0].float() / 127.5 - 1
        rgb = projection.to_rgb(vae.pixels_to_latents(clip)).float() / 127.5 - 1  # [1, 4, 4, 3]
        errors.append((rgb - target).abs().mean())
        zero_errors.append(target.abs().mean())
        mean_errors.append((colours.mean(0) - target).abs().mean())
    error = torch.stack(errors).mean().item()
    assert error < 0.5 * torch.stack(zero_errors).mean().item()
    assert error < 0.5 * torch.stack(mean_errors).mean().item()


@torch.inference_mode()
def test_fit_runs_on_a_bfloat16_vae():
    vae = tiny_random_vae().to(torch.bfloat16)
    projection = fit_latent_rgb_projection(vae, dtype=torch.float32)
    assert all(torch.isfinite(torch.tensor(projection.weight)).flatten())
