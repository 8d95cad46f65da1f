"""Loading MAGI-1's official checkpoint layout: sharded safetensors, FP8, folder discovery, clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.model import ChunkText, MagiDiT
from magi_engine.dit.official_keys import to_official_state_dict
from magi_engine.errors import CheckpointError
from magi_engine.loading import save_sharded
from magi_engine.magi_checkpoint import load_magi_dit, load_magi_vae
from magi_engine.model_files import locate_magi_checkpoint
from magi_engine.variants import MAGI_VARIANTS, MagiVariant
from magi_engine.vae import VideoVAE
from magi_engine.vae.config import VAEConfig
from tests.engine.factories import randomize_

TINY = dataclasses.replace(MAGI_VARIANTS["4.5B_distill"].dit, num_layers=4, hidden_size=128, ffn_hidden_size=96,
                           num_heads=4, num_kv_groups=2, head_dim=32, caption_channels=32, caption_max_length=16,
                           null_caption_tokens=8)
TINY_VAE = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=1.0)


def tiny_variant(fp8: bool = False) -> MagiVariant:
    base = MAGI_VARIANTS["4.5B_distill_quant" if fp8 else "4.5B_distill"]
    return dataclasses.replace(base, dit=TINY)


def velocity(model: MagiDiT) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 12, 4, 4, generator=g)
    text = ChunkText.from_sequences([torch.randn(5, 32, generator=g), torch.randn(3, 32, generator=g)])
    with torch.no_grad():
        return model(x, torch.tensor([[0.4, 0.1]]), text, True, ChunkLayout.causal(0, 2, 24),
                     step_size=torch.tensor([[8.0, 8.0]])).velocity


def quantise_layers(official: dict[str, torch.Tensor], layers: range) -> dict[str, torch.Tensor]:
    """Store the linears of `layers` as MAGI-1 does in its FP8 checkpoints (per-tensor / per-channel)."""
    out = dict(official)
    for i in layers:
        p = f"videodit_blocks.layers.{i}"
        per_tensor = [f"{p}.self_attention.linear_qkv.{n}" for n in ("q", "qx", "k", "v")] + [f"{p}.mlp.linear_fc1"]
        per_channel = [f"{p}.self_attention.linear_proj", f"{p}.mlp.linear_fc2"]
        for prefix in per_tensor + per_channel:
            w = out.pop(f"{prefix}.weight").float()
            scale = w.abs().max() / 448
            out[f"{prefix}.weight"] = (w / scale).to(torch.float8_e4m3fn)[None]
            out[f"{prefix}.weight_scale"] = scale.reshape(1)
            if prefix in per_channel:
                out[f"{prefix}.input_scale"] = torch.ones(1)
                out[f"{prefix}.smooth_scale"] = torch.ones(1, w.shape[1])
            else:
                out[f"{prefix}.input_scale"] = torch.ones(w.shape[1])
    return out


@pytest.fixture
def magi_root(tmp_path: Path):
    """A hub-shaped folder with a tiny distilled DiT (3 shards) and a tiny VAE."""
    model = randomize_(MagiDiT(TINY), seed=1).eval()
    weights = tmp_path / "ckpt" / "magi" / "4.5B_distill" / "inference_weight.distill"
    save_sharded(to_official_state_dict(model.state_dict(), TINY), weights, max_shard_bytes=200_000)
    vae = VideoVAE(TINY_VAE)
    (tmp_path / "ckpt" / "vae").mkdir(parents=True)
    ddconfig = {k: v for k, v in TINY_VAE.to_dict().items() if k not in ("scale_factor", "tile_size", "tile_overlap",
                                                                            "tile_frames", "bf16_attention_inputs")}
    (tmp_path / "ckpt" / "vae" / "config.json").write_text(json.dumps({"_class_name": "ViTVAE", "ddconfig": ddconfig,
                                                                        "model_type": "vit"}))
    save_sharded(vae.state_dict(), tmp_path / "ckpt" / "vae", max_shard_bytes=10**9)
    return tmp_path, model, weights, vae


def test_locates_weights_and_vae_in_the_hub_layout(magi_root):
    root, _, weights, _ = magi_root
    found = locate_magi_checkpoint(root)
    assert found.variant.name == "4.5B_distill" and found.weights == weights
    assert found.vae == root / "ckpt" / "vae" and found.t5 is None
    assert locate_magi_checkpoint(weights).weights == weights  # the weight folder itself works too


def test_sharded_official_checkpoint_loads_into_the_same_model(magi_root):
    _, model, weights, vae = magi_root
    loaded = load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.float32)
    assert not any(p.is_meta for p in loaded.parameters())
    assert torch.equal(velocity(loaded), velocity(model))
    loaded_vae = load_magi_vae(weights.parents[2] / "vae", torch.device("cpu"), torch.float32)
    for name, tensor in vae.state_dict().items():
        assert torch.equal(loaded_vae.state_dict()[name], tensor)


def test_bfloat16_load_keeps_the_float32_islands(magi_root):
    _, _, weights, _ = magi_root
    loaded = load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.bfloat16)
    assert loaded.dtype == torch.bfloat16
    assert loaded.patch_embed.weight.dtype == torch.float32 and loaded.final_proj.weight.dtype == torch.float32
    assert loaded.layers[1].attn.q_norm.weight.dtype == torch.float32
    assert loaded.layers[1].attn.q_norm_cross.weight.dtype == torch.bfloat16


def test_fp8_checkpoint_is_dequantised_close_to_the_dense_model(tmp_path):
    model = randomize_(MagiDiT(TINY), seed=2).eval()
    official = quantise_layers(to_official_state_dict(model.state_dict(), TINY), range(1, TINY.num_layers - 1))
    weights = tmp_path / "4.5B_distill_quant" / "inference_weight.fp8.distill"
    save_sharded(official, weights, max_shard_bytes=10**9)
    loaded = load_magi_dit(weights, tiny_variant(fp8=True), torch.device("cpu"), torch.float32)
    ref, got = velocity(model), velocity(loaded)
    assert (got - ref).abs().max() < 0.1 * ref.abs().max()
    assert not torch.equal(got, ref)  # the quantised layers really went through the FP8 path
    with pytest.raises(CheckpointError, match="FP8"):
        load_magi_dit(weights, tiny_variant(fp8=False), torch.device("cpu"), torch.float32)


def test_missing_shard_is_named(magi_root):
    _, _, weights, _ = magi_root
    shard = sorted(weights.glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(CheckpointError, match=shard.name):
        load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.float32)


def test_truncated_shard_is_named(magi_root):
    _, _, weights, _ = magi_root
    shard = sorted(weights.glob("model-*.safetensors"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=shard.name):
        load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.float32)


def test_wrong_shapes_name_the_key_and_both_shapes(magi_root):
    _, _, weights, _ = magi_root
    bigger = dataclasses.replace(tiny_variant(), dit=dataclasses.replace(TINY, ffn_hidden_size=128))
    with pytest.raises(CheckpointError) as info:
        load_magi_dit(weights, bigger, torch.device("cpu"), torch.float32)
    message = str(info.value)
    assert "videodit_blocks.layers.0.mlp.linear_fc1.weight (model [128, 128] vs checkpoint [96, 128])" in message


def test_missing_keys_are_listed(tmp_path):
    model = MagiDiT(TINY)
    official = to_official_state_dict(model.state_dict(), TINY)
    del official["rope.bands"], official["videodit_blocks.layers.2.mlp_post_norm.bias"]
    weights = tmp_path / "inference_weight.distill"
    save_sharded(official, weights, max_shard_bytes=10**9)
    with pytest.raises(CheckpointError, match="2 missing: rope.bands, videodit_blocks.layers.2.mlp_post_norm.bias"):
        load_magi_dit(weights, tiny_variant(), torch.device("cpu"), torch.float32)


def test_an_empty_or_unrelated_folder_gets_a_clear_message(tmp_path):
    with pytest.raises(CheckpointError, match="No MAGI-1 weights found"):
        locate_magi_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        locate_magi_checkpoint(tmp_path / "nope")
