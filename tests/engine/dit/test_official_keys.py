"""Every official MAGI-1 key of the released sizes maps onto our modules, with no key left over.

The expected official keys and shapes below are written out from the brief's table
(shared/reference/magi1.md §2.9), independently of engine/dit/official_keys.py.
"""

from __future__ import annotations

import pytest
import torch

from magi_engine.dit.model import MagiDiT
from magi_engine.dit.official_keys import (deinterleave_out_proj, expected_official_shapes, interleave_out_proj,
                                      official_key_plan, split_cross_kv, to_official_state_dict)
from magi_engine.variants import MAGI_4_5B, MAGI_24B, tiny_dit_config
from tests.engine.factories import randomize_


def brief_table(layers: int, d: int, cond: int, heads: int, ffn_in: int, ffn: int, in_ch: int):
    """Official key -> shape, as listed in the brief for the 4.5B / 24B checkpoints."""
    table = {
        "x_embedder.weight": (d, in_ch, 1, 2, 2),
        "t_embedder.mlp.0.weight": (cond, 256), "t_embedder.mlp.0.bias": (cond,),
        "t_embedder.mlp.2.weight": (cond, cond), "t_embedder.mlp.2.bias": (cond,),
        "y_embedder.y_proj_xattn.0.weight": (d, 4096), "y_embedder.y_proj_xattn.0.bias": (d,),
        "y_embedder.y_proj_adaln.0.weight": (cond, 4096), "y_embedder.y_proj_adaln.0.bias": (cond,),
        "y_embedder.null_caption_embedding": (800, 4096),
        "rope.bands": (16,),
        "videodit_blocks.final_layernorm.weight": (d,), "videodit_blocks.final_layernorm.bias": (d,),
        "final_linear.linear.weight": (4 * in_ch, d),
    }
    for i in range(layers):
        p = f"videodit_blocks.layers.{i}"
        table[f"{p}.ada_modulate_layer.proj.0.weight"] = (2 * d, cond)
        table[f"{p}.ada_modulate_layer.proj.0.bias"] = (2 * d,)
        for norm, size in (("self_attention.linear_qkv.layer_norm", d), ("self_attn_post_norm", d),
                           ("mlp.layer_norm", d), ("mlp_post_norm", d), ("self_attention.q_layernorm", 128),
                           ("self_attention.k_layernorm", 128), ("self_attention.q_layernorm_xattn", 128),
                           ("self_attention.k_layernorm_xattn", 128)):
            table[f"{p}.{norm}.weight"] = (size,)
            table[f"{p}.{norm}.bias"] = (size,)
        table[f"{p}.self_attention.linear_qkv.q.weight"] = (heads * 128, d)
        table[f"{p}.self_attention.linear_qkv.qx.weight"] = (heads * 128, d)
        table[f"{p}.self_attention.linear_qkv.k.weight"] = (1024, d)
        table[f"{p}.self_attention.linear_qkv.v.weight"] = (1024, d)
        table[f"{p}.self_attention.linear_kv_xattn.weight"] = (2048, d)
        table[f"{p}.self_attention.linear_proj.weight"] = (d, 2 * heads * 128)
        table[f"{p}.mlp.linear_fc1.weight"] = (ffn_in, d)
        table[f"{p}.mlp.linear_fc2.weight"] = (d, ffn)
    return table


RELEASED = {
    "4.5B": (MAGI_4_5B, brief_table(34, 3072, 768, 24, 12288, 12288, 16), 4.46e9),
    "24B": (MAGI_24B, brief_table(48, 6144, 1536, 48, 32768, 16384, 32), 23.90e9),
}


@pytest.mark.parametrize("size", RELEASED)
def test_every_official_key_maps_onto_our_modules_with_none_left_over(size):
    config, table, params = RELEASED[size]
    assert expected_official_shapes(config) == table
    with torch.device("meta"):
        model = MagiDiT(config)
    ours = dict(model.state_dict())
    plan = official_key_plan(config)
    assert set(plan) == set(ours), "our parameters and the plan differ"
    consumed = {key for source in plan.values() for key in source.official}
    assert consumed == set(table), f"left over: {sorted(set(table) - consumed)[:5]}"

    def meta_tensor(key: str) -> torch.Tensor:
        return torch.empty(table[key], device="meta")

    for name, source in plan.items():
        assert tuple(source.build(meta_tensor).shape) == tuple(ours[name].shape), name
    count = sum(t.numel() for t in ours.values())
    assert count == config.parameter_count()
    assert abs(count - params) / params < 0.002


def test_cross_attention_kv_rows_are_split_per_group():
    groups, dh, width = 3, 4, 5
    rows = torch.arange(2 * groups * dh, dtype=torch.float32)[:, None].expand(-1, width)
    k, v = split_cross_kv(rows, groups, dh)
    # Group g owns rows [2·dh·g, 2·dh·g + dh) for K and the next dh rows for V.
    assert k[:, 0].tolist() == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19]
    assert v[:, 0].tolist() == [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23]


def test_output_projection_columns_are_deinterleaved_from_eight_blocks():
    features = 16  # 2 · 8 blocks of 1 feature
    official = torch.arange(features, dtype=torch.float32)[None]
    ours = deinterleave_out_proj(official)
    # Official columns alternate self/cross per block: [s0 c0 s1 c1 ...] -> ours [s0..s7 c0..c7].
    assert ours[0].tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15]
    assert torch.equal(interleave_out_proj(ours), official)


@pytest.mark.parametrize("gated", [False, True])
def test_official_layout_round_trip_gives_the_same_model(gated):
    config = tiny_dit_config(gated=gated)
    model = randomize_(MagiDiT(config), seed=3)
    official = to_official_state_dict(model.state_dict(), config)
    assert set(official) == set(expected_official_shapes(config))
    rebuilt = MagiDiT(config)
    rebuilt.load_state_dict({n: s.build(official.__getitem__) for n, s in official_key_plan(config).items()})
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, rebuilt.state_dict()[name]), name
