"""VideoVAE: official key layout, golden vectors (shared/conformance/vae_tiny) and the engine helpers.

The conformance tests need ../shared/conformance (or MAGI_CONFORMANCE_DIR; tests/conformance.py); the
others build tiny random VAEs and run anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from magi_engine.errors import InputError
from magi_engine.loading import vae_parameter_count
from magi_engine.vae import VAEConfig, VideoVAE
from magi_engine.vae.model import normalise_per_head, resize_position_table
from tests.conformance import conformance_path, vae_tolerance

TINY = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=2.0)


def vae_tiny_folder() -> Path:
    return conformance_path("vae_tiny", "model.safetensors").parent


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file

    folder = vae_tiny_folder()
    config = VAEConfig.from_official(json.loads((folder / "config.json").read_text()))
    weights = load_file(folder / "model.safetensors")
    vae = VideoVAE(config).eval()
    vae.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    return vae, weights, load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")


def lively(vae: VideoVAE, seed: int = 0) -> VideoVAE:
    """Random weights of the conformance kind (1/fan_in linears, LayerNorm gamma 1 ± 0.3), so that
    every layer visibly shapes the output, unlike the tiny official init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in vae.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if name.endswith("norm.weight") or name.endswith("norm2.weight"):
                p.copy_(1 + 0.3 * noise)
            elif p.dim() >= 2 and not name.endswith(("pos_embed", "cls_token")):
                p.copy_(noise / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * noise if name.endswith("bias") else 0.5 * noise)
    return vae.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


# -- golden vectors ---------------------------------------------------------------------------


def test_checkpoint_loads_strictly_with_official_keys(golden):
    vae, weights, _, _ = golden
    assert len(weights) == 36
    assert set(vae.state_dict()) == set(weights)


@pytest.mark.parametrize("name, run", [
    ("encoder_moments", lambda vae, i, o: vae.encode_moments(i["x"])),
    ("latent_mean", lambda vae, i, o: vae.encode(i["x"])),
    ("latent_mean", lambda vae, i, o: vae.encode(i["x"], tiled=False)),
    ("image_latent", lambda vae, i, o: vae.encode(i["x"][:, :, :1].expand(-1, -1, 4, -1, -1))[:, :, :1]),
    ("decoded", lambda vae, i, o: vae.decode(i["z_in"], tiled=False)),
    ("decoded_of_mean", lambda vae, i, o: vae.decode(o["latent_mean"], tiled=False)),
    ("decoded_untiled_chunk", lambda vae, i, o: vae.decode(i["z_chunk"], tiled=False)),
], ids=["encoder_moments", "latent_mean", "latent_mean_untiled", "image_latent", "decoded", "decoded_of_mean",
        "decoded_untiled_chunk"])
@torch.inference_mode()
def test_matches_official(golden, name, run):
    vae, _, inputs, outputs = golden
    actual = run(vae, inputs, outputs)
    assert actual.shape == outputs[name].shape
    assert max_diff(actual, outputs[name]) <= vae_tolerance(outputs[name])


@torch.inference_mode()
def test_official_outputs_need_the_bf16_rounding_of_qkv(golden):
    vae, weights, inputs, outputs = golden
    plain = VideoVAE(dataclasses.replace(vae.config, bf16_attention_inputs=False)).eval()
    plain.load_state_dict(weights)
    ours = max_diff(vae.decode(inputs["z_in"], tiled=False), outputs["decoded"])
    assert max_diff(plain.decode(inputs["z_in"], tiled=False), outputs["decoded"]) > 10 * max(ours, 1e-4)


# -- layout and building blocks ---------------------------------------------------------------


def test_state_dict_uses_official_key_names():
    keys = set(VideoVAE(TINY).state_dict())
    block = {f"blocks.0.{p}.{t}" for p in ("attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
             for t in ("weight", "bias")}
    encoder = {"patch_embed.proj.weight", "patch_embed.proj.bias", "pos_embed", "cls_token", "norm.weight",
               "norm.bias", "last_layer.weight", "last_layer.bias"} | block
    decoder = {"proj_in.weight", "proj_in.bias", "pos_embed", "cls_token", "norm.weight", "norm.bias",
               "last_layer.weight", "last_layer.bias"} | block
    assert keys == {f"encoder.{k}" for k in encoder} | {f"decoder.{k}" for k in decoder}
    assert VideoVAE(TINY).state_dict()["decoder.last_layer.weight"].shape == (3, 1, 3, 3, 3)


def test_a_decoder_depth_of_its_own_deepens_only_the_decoder():
    from magi_engine.errors import ConfigError

    deep = dataclasses.replace(TINY, decoder_depth=TINY.depth + 2)
    vae = VideoVAE(deep)
    assert len(vae.encoder.blocks) == TINY.depth and len(vae.decoder.blocks) == TINY.depth + 2
    assert len(VideoVAE(TINY).decoder.blocks) == TINY.depth  # None: the encoder's depth, as official configs
    assert VAEConfig.from_dict(deep.to_dict()) == deep
    assert sum(p.numel() for p in vae.parameters()) == vae_parameter_count(deep)
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError, match="decoder_depth"):
            dataclasses.replace(TINY, decoder_depth=bad)


def test_qkv_normalisation_divides_by_std_plus_eps():
    x = torch.randn(5, 64, dtype=torch.float64) * 3 + 2
    expected = (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True).sqrt() + 1e-5)
    assert torch.allclose(normalise_per_head(x), expected)


def test_position_table_resize_is_identity_on_trained_grid_and_trilinear_elsewhere():
    table = torch.randn(2 * 4 * 4, 8)
    assert resize_position_table(table, (2, 4, 4), (2, 4, 4)) is table
    resized = resize_position_table(table, (2, 4, 4), (3, 2, 5))
    volume = table.reshape(1, 2, 4, 4, 8).permute(0, 4, 1, 2, 3)
    expected = F.interpolate(volume, size=(3, 2, 5), mode="trilinear", align_corners=False)
    assert torch.equal(resized, expected.permute(0, 2, 3, 4, 1).reshape(-1, 8))


# -- official-style API on a tiny random VAE ----------------------------------------------------


@torch.inference_mode()
def test_shapes_of_encode_and_decode():
    vae = lively(VideoVAE(TINY))
    x = torch.rand(2, 3, 8, 24, 40) * 2 - 1
    assert vae.encode_moments(x).shape == (2, 32, 2, 3, 5)
    assert vae.encode(x).shape == (2, 16, 2, 3, 5)
    assert torch.equal(vae.encode(x, tiled=False), vae.encode_moments(x)[:, :16])
    assert vae.decode(torch.randn(2, 16, 3, 3, 5)).shape == (2, 3, 12, 24, 40)


@pytest.mark.parametrize("shape", [(1, 3, 8, 30, 32), (1, 3, 8, 32, 20), (1, 4, 8, 32, 32), (1, 3, 6, 32, 32),
                                   (3, 8, 32, 32), (1, 3, 0, 32, 32)])
def test_encode_rejects_unusable_video(shape):
    with pytest.raises(InputError):
        VideoVAE(TINY).encode(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(1, 8, 2, 4, 4), (16, 2, 4, 4), (1, 16, 0, 4, 4)])
def test_decode_rejects_wrong_latents(shape):
    with pytest.raises(InputError):
        VideoVAE(TINY).decode(torch.zeros(shape))


@torch.inference_mode()
def test_bf16_attention_inputs_rounds_only_slightly():
    x = torch.rand(1, 3, 8, 32, 32) * 2 - 1
    exact = lively(VideoVAE(dataclasses.replace(TINY, bf16_attention_inputs=False)))
    rounded = VideoVAE(TINY).eval()
    rounded.load_state_dict(exact.state_dict())
    diff = max_diff(exact.encode_moments(x), rounded.encode_moments(x))
    assert 0 < diff < 0.05


@torch.inference_mode()
def test_bfloat16_module_stays_close_to_float32():
    vae = lively(VideoVAE(TINY))
    half = lively(VideoVAE(TINY)).to(torch.bfloat16)
    x = torch.rand(1, 3, 8, 32, 24) * 2 - 1
    z = torch.randn(1, 16, 3, 4, 3)
    latents, pixels = vae.encode(x), vae.decode(z)
    assert vae.encode(x.bfloat16()).dtype == torch.float32
    assert half.encode(x).dtype == torch.bfloat16 and half.decode(z).dtype == torch.bfloat16
    assert max_diff(half.encode(x), latents) < 0.03 * latents.abs().max().item()
    assert max_diff(half.decode(z), pixels) < 0.03 * pixels.abs().max().item()


# -- engine helpers: uint8 frames and scaled latents ---------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@torch.inference_mode()
def test_pixels_to_latents_scales_the_posterior_mean(dtype):
    vae = lively(VideoVAE(TINY)).to(dtype)
    frames = torch.randint(0, 256, (8, 16, 24, 3), dtype=torch.uint8)
    latents = vae.pixels_to_latents(frames)
    assert latents.shape == (16, 2, 2, 3) and latents.dtype == torch.float32
    unit = (frames.permute(3, 0, 1, 2)[None].float() / 127.5 - 1).to(dtype)
    expected = (vae.encode(unit) * TINY.scale_factor)[0].float()
    assert torch.equal(latents, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@torch.inference_mode()
def test_image_to_latent_is_first_latent_frame_of_repeated_image(dtype):
    vae = lively(VideoVAE(TINY)).to(dtype)
    image = torch.randint(0, 256, (16, 24, 3), dtype=torch.uint8)
    latent = vae.image_to_latent(image)
    assert latent.shape == (16, 1, 2, 3) and latent.dtype == torch.float32
    assert torch.equal(latent, vae.pixels_to_latents(image[None].repeat(4, 1, 1, 1)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@torch.inference_mode()
def test_latents_to_pixels_truncates_like_the_official_post_processing(dtype):
    vae = lively(VideoVAE(TINY)).to(dtype)
    latents = torch.randn(16, 3, 2, 3) * 0.3
    frames = vae.latents_to_pixels(latents)
    assert frames.shape == (12, 16, 24, 3) and frames.dtype == torch.uint8
    decoded = vae.decode(latents[None] / TINY.scale_factor)[0]
    expected = (decoded * 127.5 + 127.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0)
    assert torch.equal(frames, expected)
    assert 0 < frames.float().std()


def test_helpers_reject_unusable_inputs():
    vae = VideoVAE(TINY)
    with pytest.raises(InputError):
        vae.pixels_to_latents(torch.zeros(6, 16, 16, 3, dtype=torch.uint8))  # not 4k frames
    with pytest.raises(InputError):
        vae.pixels_to_latents(torch.zeros(4, 16, 16, 3))  # float, not uint8
    with pytest.raises(InputError):
        vae.image_to_latent(torch.zeros(16, 20, 3, dtype=torch.uint8))  # width not a multiple of 8
    with pytest.raises(InputError):
        vae.image_to_latent(torch.zeros(16, 16, 4, dtype=torch.uint8))  # RGBA
    with pytest.raises(InputError):
        vae.latents_to_pixels(torch.zeros(1, 16, 2, 2, 2))
