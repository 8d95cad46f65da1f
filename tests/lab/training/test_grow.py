"""Growing a trained DiT deeper keeps its function and leaves the new layers trainable."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.model import ChunkText, MagiDiT
from lab.training.checkpoint import load_training_state, save_training_state
from lab.training.grow import copied_after, grow_run, grow_state, grow_vae_decoder_state, layer_count
from magi_engine.variants import tiny_dit_config
from tests.engine.factories import chunk_text, randomize_

TOKENS = 6 * 2 * 3


def inputs(seed: int, chunks: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, 6 * chunks, 4, 6, generator=g)
    t = torch.rand(1, chunks, generator=g)
    return x, t, ChunkText.from_sequences([chunk_text(seed + j, tokens=2 + j) for j in range(chunks)])


def deeper(dit: MagiDiT, layers: int) -> MagiDiT:
    grown = MagiDiT(dataclasses.replace(dit.config, num_layers=layers))
    grown.load_state_dict(grow_state(dit.state_dict(), layers))
    return grown.eval()


def test_copies_spread_evenly_between_old_layers():
    assert copied_after(8, 16) == list(range(8))
    assert copied_after(8, 12) == [1, 3, 5, 7]
    assert copied_after(4, 4) == []
    with pytest.raises(ValueError):
        copied_after(4, 9)


@pytest.mark.parametrize("layers", [3, 4])
@torch.no_grad()
def test_a_grown_model_computes_the_same_velocity(layers):
    config = dataclasses.replace(tiny_dit_config(), num_layers=2)
    dit = randomize_(MagiDiT(config), seed=3).eval()
    x, t, text = inputs(0)
    layout = ChunkLayout.causal(0, 2, TOKENS)
    grown = deeper(dit, layers)
    assert len(grown.layers) == layers
    before, after = dit(x, t, text, True, layout).velocity, grown(x, t, text, True, layout).velocity
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    # ...and it is a different model: the silenced gains are what keeps it equal.
    with torch.no_grad():
        grown.layers[1].mlp_post_norm.weight.fill_(-0.5)
    assert not torch.allclose(grown(x, t, text, True, layout).velocity, before, atol=1e-3)


def test_the_new_layers_learn():
    config = dataclasses.replace(tiny_dit_config(), num_layers=2)
    grown = deeper(randomize_(MagiDiT(config), seed=4), 4).train()
    x, t, text = inputs(1)
    optimizer = torch.optim.Adam(grown.parameters(), lr=1e-2)
    new_layer = grown.layers[1]
    start = {k: v.clone() for k, v in new_layer.state_dict().items()}
    for _ in range(3):
        loss = grown(x, t, text, True, ChunkLayout.causal(0, 2, TOKENS)).velocity.square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    moved = [k for k, v in new_layer.state_dict().items() if not torch.equal(v, start[k])]
    assert "mlp_post_norm.weight" in moved and "mlp.fc1.weight" in moved and "attn.to_q.weight" in moved


def test_a_training_state_grows_in_place_raw_and_ema(tmp_path):
    config = dataclasses.replace(tiny_dit_config(), num_layers=2)
    dit, ema = randomize_(MagiDiT(config), seed=5), randomize_(MagiDiT(config), seed=6)
    optimizer = torch.optim.AdamW(dit.parameters())
    dit(*inputs(2), True, ChunkLayout.causal(0, 2, TOKENS)).velocity.mean().backward()
    optimizer.step()
    save_training_state(tmp_path / "dit_state.safetensors", modules={"dit": dit, "ema_dit": ema},
                        optimizers={"adam": optimizer}, info={"step": 7})
    assert grow_run(tmp_path, 3)
    assert not grow_run(tmp_path, 3)  # already that deep
    wide = dataclasses.replace(config, num_layers=3)
    grown, grown_ema = MagiDiT(wide), MagiDiT(wide)
    info = load_training_state(tmp_path / "dit_state.safetensors", modules={"dit": grown, "ema_dit": grown_ema})
    assert info["step"] == 7 and info["resumed_without_optimizer"] and info["grown"] == [[7, 2, 3]]
    assert layer_count(grown_ema.state_dict()) == 3
    torch.testing.assert_close(grown_ema.layers[2].attn.to_q.weight, ema.layers[1].attn.to_q.weight)


def test_a_deeper_vae_decoder_decodes_as_before_and_its_new_blocks_train():
    from magi_engine.vae import VAEConfig, VideoVAE

    config = VAEConfig(video_size=32, video_length=8, embed_dim=256, depth=1, num_heads=4, mlp_ratio=2.0)
    vae = VideoVAE(config)
    vae.reset_parameters(torch.Generator().manual_seed(8))
    for p in vae.parameters():  # the init zeroes biases: give them values so a copy is seen to copy them
        p.data.add_(torch.randn_like(p) * 0.01)
    deep = VideoVAE(dataclasses.replace(config, decoder_depth=config.depth + 2))
    deep.load_state_dict(grow_vae_decoder_state(vae.state_dict(), config.depth + 2))
    z = torch.randn(1, 16, 2, 3, 4, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(deep.decode(z, tiled=False), vae.decode(z, tiled=False))
    new_block, last_old = deep.decoder.blocks[-1], vae.decoder.blocks[-1]
    torch.testing.assert_close(new_block.attn.qkv.weight, last_old.attn.qkv.weight)
    assert not new_block.attn.proj.weight.any() and not new_block.mlp.fc2.bias.any()
    optimizer = torch.optim.Adam(deep.decoder.parameters(), lr=1e-2)
    start = {k: v.clone() for k, v in new_block.state_dict().items()}
    for _ in range(3):
        loss = deep.decode(z, tiled=False).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    moved = {k for k, v in new_block.state_dict().items() if not torch.equal(v, start[k])}
    assert {"attn.proj.weight", "mlp.fc2.weight", "attn.qkv.weight", "mlp.fc1.weight"} <= moved
    with pytest.raises(ValueError, match="shrink"):
        grow_vae_decoder_state(deep.state_dict(), 1)
