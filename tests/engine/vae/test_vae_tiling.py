"""Tiled encode/decode: golden vectors of the official TileProcessor, plus pure checks on any size."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from magi_engine.errors import ConfigError
from magi_engine.vae import VAEConfig, VideoVAE
from magi_engine.vae.tiling import TileLayout, cross_fade, tile_inputs, tile_starts, tiled_decode, tiled_encode
from tests.conformance import conformance_path, vae_tolerance

TINY = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=2.0)
OFFICIAL = TileLayout(tile_px=256, overlap=0.25, tile_frames=12)
SMALL = TileLayout(tile_px=32, overlap=0.25, tile_frames=12)


@pytest.fixture(scope="module")
def golden():
    from safetensors.torch import load_file

    folder = conformance_path("vae_tiny", "model.safetensors").parent
    config = VAEConfig.from_official(json.loads((folder / "config.json").read_text()))
    weights = {k: v.float() for k, v in load_file(folder / "model.safetensors").items()}
    pipeline, small = VideoVAE(config).eval(), VideoVAE(dataclasses.replace(config, tile_size=32)).eval()
    pipeline.load_state_dict(weights, strict=True)
    small.load_state_dict(weights, strict=True)
    return pipeline, small, load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")


@torch.inference_mode()
def test_decoded_tiled_official(golden):
    pipeline, _, inputs, outputs = golden
    decoded = pipeline.decode(inputs["z_chunk"])
    reference = outputs["decoded_tiled_official"]
    assert (decoded - reference).abs().max().item() <= vae_tolerance(reference)
    # Two independent 3-latent-frame halves: far from the untiled decode of the whole chunk.
    assert (decoded - outputs["decoded_untiled_chunk"]).abs().max().item() > 0.1


@torch.inference_mode()
def test_decoded_tiled_small(golden):
    _, small, inputs, outputs = golden
    decoded = small.decode(inputs["z_spatial"])
    reference = outputs["decoded_tiled_small"]
    assert decoded.shape == reference.shape
    assert (decoded - reference).abs().max().item() <= vae_tolerance(reference)


@torch.inference_mode()
def test_encoded_tiled_small(golden):
    _, small, inputs, outputs = golden
    encoded = small.encode(inputs["x_big"])
    reference = outputs["encoded_tiled_small"]
    assert encoded.shape == reference.shape
    assert (encoded - reference).abs().max().item() <= vae_tolerance(reference)


# -- pure functions ---------------------------------------------------------------------------


def reference_cross_fade_rows(a: torch.Tensor, b: torch.Tensor, extent: int) -> torch.Tensor:
    """Row-by-row loop with Python-scalar weights, the way the reference writes it."""
    b = b.clone()
    extent = min(a.shape[-2], b.shape[-2], extent)
    for y in range(extent):
        b[..., y, :] = a[..., -extent + y, :] * (1 - y / extent) + b[..., y, :] * (y / extent)
    return b


@pytest.mark.parametrize("extent, rows_b", [(8, 24), (64, 40), (8, 3), (0, 5)])
def test_cross_fade_matches_a_row_loop_exactly(extent, rows_b):
    a, b = torch.randn(1, 3, 2, 24, 7), torch.randn(1, 3, 2, rows_b, 7)
    assert torch.equal(cross_fade(a, b, extent, dim=-2), reference_cross_fade_rows(a, b, extent))


def test_tile_starts_cover_the_axis_with_a_short_last_tile():
    assert tile_starts(72, 24) == [0, 24, 48]
    assert tile_starts(40, 24) == [0, 24]
    assert tile_starts(4, 24) == [0]


def test_plans_of_the_pipeline_layout():
    encode, decode = OFFICIAL.encode_plan(), OFFICIAL.decode_plan()
    assert (encode.in_tile, encode.in_stride, encode.in_frames, encode.out_blend, encode.out_keep) == (256, 192, 12, 8, 24)
    assert (decode.in_tile, decode.in_stride, decode.in_frames, decode.out_blend, decode.out_keep) == (32, 24, 3, 64, 192)


@pytest.mark.parametrize("tile_px, overlap", [(8, 0.25), (32, 0.1)])
def test_uneven_tiling_is_a_config_error(tile_px, overlap):
    with pytest.raises(ConfigError):
        TileLayout(tile_px, overlap, 12).decode_plan()
    with pytest.raises(ConfigError):
        VideoVAE(dataclasses.replace(TINY, tile_size=tile_px, tile_overlap=overlap))


def nearest_decoder(z: torch.Tensor) -> torch.Tensor:
    """A position-local stand-in decoder: 4x8x8 nearest upsampling of the first 3 channels."""
    return z[:, :3].repeat_interleave(4, 2).repeat_interleave(8, 3).repeat_interleave(8, 4)


def block_encoder(x: torch.Tensor) -> torch.Tensor:
    """A position-local stand-in encoder: mean over each 4x8x8 block, 16 channels."""
    pooled = torch.nn.functional.avg_pool3d(x, kernel_size=(4, 8, 8))
    return pooled.repeat(1, 6, 1, 1, 1)[:, :16]


@pytest.mark.parametrize("height, width", [(72, 40), (90, 160), (25, 33), (4, 4), (49, 8)])
def test_tiled_decode_of_a_local_decoder_is_seamless(height, width):
    frames = 4 if height * width < 2000 else 1  # 3 + 1 temporal tiles, except for the large 720p grid
    z = torch.randn(1, 16, frames, height, width)
    expected = nearest_decoder(z)
    tiled = tiled_decode(nearest_decoder, z, OFFICIAL)
    assert tiled.shape == expected.shape
    assert torch.allclose(tiled, expected, atol=1e-5)


@pytest.mark.parametrize("height, width", [(576, 320), (200, 264), (48, 48), (8, 16)])
def test_tiled_encode_of_a_local_encoder_is_seamless(height, width):
    x = torch.randn(1, 3, 16, height, width)
    expected = block_encoder(x)
    tiled = tiled_encode(block_encoder, x, OFFICIAL)
    assert tiled.shape == expected.shape
    assert torch.allclose(tiled, expected, atol=1e-5)


# -- the real model, tiny and random -------------------------------------------------------------


@torch.inference_mode()
def test_tiled_decode_shape_for_72_by_40_latents():
    vae = VideoVAE(TINY).eval()
    assert vae.decode(torch.randn(1, 16, 1, 72, 40)).shape == (1, 3, 4, 576, 320)


@torch.inference_mode()
def test_tiled_equals_untiled_when_one_tile_covers_the_input():
    # One tile means at most one stride (6 latent / 48 px here): a full-size tile already gets a
    # second, overlapping one, as in MAGI-1.
    vae = VideoVAE(dataclasses.replace(TINY, tile_size=64)).eval()
    z = torch.randn(1, 16, 3, 6, 5)
    assert torch.equal(vae.decode(z), vae.decode(z, tiled=False))
    full_tile = torch.randn(1, 16, 3, 8, 8)
    assert not torch.equal(vae.decode(full_tile), vae.decode(full_tile, tiled=False))
    x = torch.rand(1, 3, 12, 48, 40) * 2 - 1
    assert torch.equal(vae.encode(x), vae.encode(x, tiled=False))


@torch.inference_mode()
def test_temporal_tiles_are_decoded_independently():
    vae = VideoVAE(TINY).eval()
    z = torch.randn(1, 16, 7, 4, 4)
    halves = [vae.decode(z[:, :, s:s + 3], tiled=False) for s in (0, 3, 6)]
    assert torch.equal(vae.decode(z), torch.cat(halves, dim=2))


def shuffled_runner(calls: list):
    """A TileRunner that computes the tiles in reverse order, as ranks finishing at different times would."""
    def run(direction, x, fn, inputs):
        calls.append((direction, tuple(x.shape), len(inputs)))
        outputs = [None] * len(inputs)
        for i in reversed(range(len(inputs))):
            outputs[i] = fn(inputs[i])
        return outputs
    return run


@torch.inference_mode()
def test_a_tile_runner_gets_every_tile_and_its_outputs_stitch_to_the_same_result():
    # What a several-device run relies on (magi_engine.parallel.vae_tiles): each tile depends on its input only.
    vae = VideoVAE(dataclasses.replace(TINY, tile_size=64)).eval()
    z = torch.randn(1, 16, 6, 8, 14)  # 2 time slabs x 2 rows x 3 columns
    x = torch.rand(1, 3, 12, 64, 112) * 2 - 1
    calls = []
    assert torch.equal(vae.decode(z, runner=shuffled_runner(calls)), vae.decode(z))
    assert torch.equal(vae.encode(x, runner=shuffled_runner(calls)), vae.encode(x))
    assert calls == [("decode", (1, 16, 6, 8, 14), 12), ("encode", (1, 3, 12, 64, 112), 6)]
    fn, inputs = vae.tile_work("decode", z)
    assert fn is vae.decoder and [t.shape[2:] for t in inputs[:3]] == [(3, 8, 8), (3, 8, 8), (3, 8, 2)]
    assert len(tile_inputs(z, vae.tile_layout.decode_plan())) == 12


def test_the_budget_picks_the_largest_even_tile_that_fits() -> None:
    from magi_engine.vae.tiling import budget_tile_px, whole_tile

    config = VAEConfig()  # MAGI-1's VAE: 256-px tiles, overlap 1/4
    assert whole_tile(720, config) == 960  # kept part 720: one tile covers a 720x720 frame
    chosen = [budget_tile_px(config, 720, 720, budget) for budget in (2**40, 2**31, 2**29, 2**27, 0)]
    assert chosen[0] == 960 and chosen == sorted(chosen, reverse=True) and chosen[-1] == 32
    for budget, px in zip((2**31, 2**29, 2**27), chosen[1:]):
        assert config.decode_tile_bytes(px) <= budget < config.decode_tile_bytes(px + 32)
        TileLayout(px, config.tile_overlap, config.tile_frames).decode_plan()  # tiles evenly
    # The estimate's VAE term is one reference tile (magi_engine.loading.memory).
    assert config.decode_tile_bytes(256) == 3073 * 1024 * 12 * 2 + 16 * 3073**2 * 2


@torch.inference_mode()
def test_budgeted_decode_matches_the_untiled_decode_within_tolerance() -> None:
    """studio-mini's trained VAE (128-px training clips): a budget that holds the frame decodes it in one
    tile, exactly the untiled decode; 128-px tiles (its training size) stay within 0.03 of it on average."""
    from magi_engine.bundle import load_native_bundle
    from magi_engine.models import studio_mini_path
    from magi_engine.vae.tiling import budget_tile_px

    vae = load_native_bundle(studio_mini_path(), torch.device("cpu"), torch.float32).vae
    config = vae.config
    ramp = torch.linspace(0, 1, 192)[None, :] * torch.linspace(0, 1, 128)[:, None]
    frames = torch.stack([(ramp * 0.5 + 0.25 + 0.1 * t / 12) * 255 for t in range(12)])
    latents = vae.pixels_to_latents(frames[..., None].expand(-1, -1, -1, 3).to(torch.uint8).contiguous())
    z = (latents / config.scale_factor)[None]  # [1, 16, 3, 16, 24]: one temporal tile
    untiled = vae.decode(z, tiled=False)
    assert torch.equal(vae.decode(z, budget_bytes=2**32), untiled)
    budget = config.decode_tile_bytes(128, 4)
    assert budget_tile_px(config, 128, 192, budget, 4) == 128
    tiled = vae.decode(z, budget_bytes=budget)
    assert tiled.shape == untiled.shape and not torch.equal(tiled, untiled)
    assert (tiled - untiled).abs().mean() < 0.03 and (tiled - untiled).abs().max() < 0.6
    assert vae.latents_to_pixels(latents, budget_bytes=budget).shape == (12, 128, 192, 3)
