"""Map the official MAGI-1 checkpoint layout onto `MagiDiT`.

Our modules have their own names, and two tensors have a different layout (the traps listed in
MAGI-1's brief, shared/reference/magi1.md §2.4 and §2.9):

* `linear_kv_xattn` [2·G·dh, D] stores, for each K/V group g, dh rows of K then dh rows of V; we keep
  separate `to_k_cross` / `to_v_cross` matrices.
* `linear_proj` [D, 2·H·dh] takes its input columns in 8 interleaved blocks ("hn=8", from tensor-
  parallel training): block j = self-attention features then cross-attention features of the same
  heads. Our `out_proj` takes [all self-attention features | all cross-attention features].

FP8 checkpoints store some linears of layers 1..L-2 quantised; they are dequantised on load, or kept
FP8 (`native_fp8`) for GPUs that multiply FP8 matrices.
Everything else maps one to one (the "+1" LayerNorm convention is kept, not folded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from magi_engine.config import DiTConfig

#: Column blocks of the official output projection (tensor-parallel degree used in training).
PROJ_INTERLEAVE_BLOCKS = 8

Getter = Callable[[str], torch.Tensor]


@dataclass(frozen=True)
class KeySource:
    """How one of our parameters is made from official tensors."""

    official: tuple[str, ...]
    build: Callable[[Getter], torch.Tensor]


def _copy(key: str) -> KeySource:
    return KeySource((key,), lambda get: get(key))


def split_cross_kv(weight: torch.Tensor, groups: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Official [G·(dh K rows, dh V rows), D] -> (K [G·dh, D], V [G·dh, D])."""
    per_group = weight.view(groups, 2, head_dim, weight.shape[-1])
    return per_group[:, 0].reshape(groups * head_dim, -1), per_group[:, 1].reshape(groups * head_dim, -1)


def deinterleave_out_proj(weight: torch.Tensor, blocks: int = PROJ_INTERLEAVE_BLOCKS) -> torch.Tensor:
    """Official columns (block, [self | cross], features) -> ours ([self | cross], block, features)."""
    out_features, in_features = weight.shape
    per_block = in_features // (2 * blocks)
    return weight.view(out_features, blocks, 2, per_block).transpose(1, 2).reshape(out_features, in_features)


def interleave_out_proj(weight: torch.Tensor, blocks: int = PROJ_INTERLEAVE_BLOCKS) -> torch.Tensor:
    """Inverse of `deinterleave_out_proj` (used to write official-layout test checkpoints)."""
    out_features, in_features = weight.shape
    per_block = in_features // (2 * blocks)
    return weight.view(out_features, 2, blocks, per_block).transpose(1, 2).reshape(out_features, in_features)


FP8_PER_TENSOR = ("attn.to_q", "attn.to_q_cross", "attn.to_k", "attn.to_v", "mlp.fc1")
FP8_PER_CHANNEL = ("attn.out_proj", "mlp.fc2")


def _linear(official_prefix: str, fp8: bool, per_channel: bool, transform=None) -> KeySource:
    if not fp8:
        key = f"{official_prefix}.weight"
        if transform is None:
            return _copy(key)
        return KeySource((key,), lambda get: transform(get(key)))
    from magi_engine.loading.fp8 import dequantize_fp8_linear

    keys = _fp8_keys(official_prefix, per_channel)

    def build(get: Getter) -> torch.Tensor:
        dense = dequantize_fp8_linear(official_prefix, get, keys=keys)
        return dense if transform is None else transform(dense)

    return KeySource(keys, build)


def _fp8_keys(official_prefix: str, per_channel: bool) -> tuple[str, ...]:
    names = ["weight", "weight_scale", "input_scale"] + (["smooth_scale"] if per_channel else [])
    return tuple(f"{official_prefix}.{n}" for n in names)


def _native_fp8_linear(ours: str, official_prefix: str, fan_in: int, per_channel: bool,
                       transform=None) -> dict[str, KeySource]:
    """The buffers of an Fp8Linear (magi_engine.dit.fp8_linear) straight from the stored FP8 tensors.

    `transform` permutes input columns (the output projection): it applies to the weight and to the
    per-input-channel divisor alike, so the product is unchanged.
    """
    from magi_engine.loading.fp8 import fp8_linear_scales, fp8_linear_weight

    keys = _fp8_keys(official_prefix, per_channel)
    scale_keys = keys[1:]
    permute = transform or (lambda t: t)

    def weight(get: Getter) -> torch.Tensor:
        # Column permutations are views + one copy; done on the bytes (uint8), as float8 copies are not
        # implemented everywhere.
        stored = fp8_linear_weight(official_prefix, get)
        return permute(stored.view(torch.uint8)).contiguous().view(torch.float8_e4m3fn)

    def scale(index: int) -> Callable[[Getter], torch.Tensor]:
        def build(get: Getter) -> torch.Tensor:
            value = fp8_linear_scales(official_prefix, get, fan_in, keys=keys)[index]
            return permute(value[None])[0].contiguous() if index == 1 else value
        return build

    return {f"{ours}.weight": KeySource(keys[:1], weight),
            f"{ours}.weight_scale": KeySource(scale_keys, scale(0)),
            f"{ours}.input_divisor": KeySource(scale_keys, scale(1)),
            f"{ours}.activation_scale": KeySource(scale_keys, scale(2))}


def official_key_plan(config: DiTConfig, fp8_layers: Sequence[int] = (), *,
                      native_fp8: bool = False) -> dict[str, KeySource]:
    """Our parameter name -> the official tensors it is built from.

    FP8 linears are dequantised to one dense weight each, or with `native_fp8` kept as the four buffers
    of an Fp8Linear (weight, weight_scale, input_divisor, activation_scale) for a model whose linears
    were swapped by `magi_engine.dit.fp8_linear.use_fp8_linears`.
    """
    plan: dict[str, KeySource] = {
        "patch_embed.weight": _copy("x_embedder.weight"),
        "rope.bands": _copy("rope.bands"),
        "caption_embed.null_caption": _copy("y_embedder.null_caption_embedding"),
        "final_norm.weight": _copy("videodit_blocks.final_layernorm.weight"),
        "final_norm.bias": _copy("videodit_blocks.final_layernorm.bias"),
        "final_proj.weight": _copy("final_linear.linear.weight"),
    }
    for ours, theirs in (("timestep_embed.mlp.0", "t_embedder.mlp.0"), ("timestep_embed.mlp.2", "t_embedder.mlp.2"),
                         ("caption_embed.text_proj", "y_embedder.y_proj_xattn.0"),
                         ("caption_embed.flag_proj", "y_embedder.y_proj_adaln.0")):
        for part in ("weight", "bias"):
            plan[f"{ours}.{part}"] = _copy(f"{theirs}.{part}")

    fp8_set = set(fp8_layers)
    groups, dh, d = config.num_kv_groups, config.head_dim, config.hidden_size
    for i in range(config.num_layers):
        ours, theirs = f"layers.{i}", f"videodit_blocks.layers.{i}"
        attn = f"{theirs}.self_attention"
        fp8 = i in fp8_set
        for a, b in (("gate_proj", "ada_modulate_layer.proj.0"), ("attn.norm", "self_attention.linear_qkv.layer_norm"),
                     ("attn.q_norm", "self_attention.q_layernorm"), ("attn.k_norm", "self_attention.k_layernorm"),
                     ("attn.q_norm_cross", "self_attention.q_layernorm_xattn"),
                     ("attn.k_norm_cross", "self_attention.k_layernorm_xattn"),
                     ("attn_post_norm", "self_attn_post_norm"), ("mlp.norm", "mlp.layer_norm"),
                     ("mlp_post_norm", "mlp_post_norm")):
            for part in ("weight", "bias"):
                plan[f"{ours}.{a}.{part}"] = _copy(f"{theirs}.{b}.{part}")
        linears = [(f"{ours}.{a}", f"{attn}.{b}", d, False, None)
                   for a, b in (("attn.to_q", "linear_qkv.q"), ("attn.to_q_cross", "linear_qkv.qx"),
                                ("attn.to_k", "linear_qkv.k"), ("attn.to_v", "linear_qkv.v"))]
        linears += [(f"{ours}.mlp.fc1", f"{theirs}.mlp.linear_fc1", d, False, None),
                    (f"{ours}.mlp.fc2", f"{theirs}.mlp.linear_fc2", config.ffn_hidden_size, True, None),
                    (f"{ours}.attn.out_proj", f"{attn}.linear_proj", 2 * config.query_size, True,
                     deinterleave_out_proj)]
        for name, official, fan_in, per_channel, transform in linears:
            if fp8 and native_fp8:
                plan.update(_native_fp8_linear(name, official, fan_in, per_channel, transform))
            else:
                plan[f"{name}.weight"] = _linear(official, fp8, per_channel, transform)
        kv_key = f"{attn}.linear_kv_xattn.weight"
        plan[f"{ours}.attn.to_k_cross.weight"] = KeySource(
            (kv_key,), lambda get, k=kv_key: split_cross_kv(get(k), groups, dh)[0])
        plan[f"{ours}.attn.to_v_cross.weight"] = KeySource(
            (kv_key,), lambda get, k=kv_key: split_cross_kv(get(k), groups, dh)[1])
    return plan


def expected_official_shapes(config: DiTConfig, fp8_layers: Sequence[int] = ()) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor an official checkpoint of this configuration holds."""
    d, c, dh = config.hidden_size, config.cond_size, config.head_dim
    shapes: dict[str, tuple[int, ...]] = {
        "x_embedder.weight": (d, config.in_channels, 1, config.patch_size, config.patch_size),
        "t_embedder.mlp.0.weight": (c, config.timestep_frequencies), "t_embedder.mlp.0.bias": (c,),
        "t_embedder.mlp.2.weight": (c, c), "t_embedder.mlp.2.bias": (c,),
        "y_embedder.y_proj_xattn.0.weight": (config.xattn_size, config.caption_channels),
        "y_embedder.y_proj_xattn.0.bias": (config.xattn_size,),
        "y_embedder.y_proj_adaln.0.weight": (c, config.caption_channels), "y_embedder.y_proj_adaln.0.bias": (c,),
        "y_embedder.null_caption_embedding": (config.caption_max_length, config.caption_channels),
        "rope.bands": (config.rope_bands,),
        "videodit_blocks.final_layernorm.weight": (d,), "videodit_blocks.final_layernorm.bias": (d,),
        "final_linear.linear.weight": (config.patch_size**2 * config.in_channels, d),
    }
    ffn_in = config.ffn_hidden_size * (2 if config.gated_mlp else 1)
    fp8_set = set(fp8_layers)
    for i in range(config.num_layers):
        layer = f"videodit_blocks.layers.{i}"
        shapes[f"{layer}.ada_modulate_layer.proj.0.weight"] = (2 * config.gate_size, c)
        shapes[f"{layer}.ada_modulate_layer.proj.0.bias"] = (2 * config.gate_size,)
        for norm, size in (("self_attention.linear_qkv.layer_norm", d), ("self_attention.q_layernorm", dh),
                           ("self_attention.k_layernorm", dh), ("self_attention.q_layernorm_xattn", dh),
                           ("self_attention.k_layernorm_xattn", dh), ("self_attn_post_norm", d),
                           ("mlp.layer_norm", d), ("mlp_post_norm", d)):
            shapes[f"{layer}.{norm}.weight"] = shapes[f"{layer}.{norm}.bias"] = (size,)
        shapes[f"{layer}.self_attention.linear_kv_xattn.weight"] = (2 * config.kv_size, config.xattn_size)
        linears = {"self_attention.linear_qkv.q": (config.query_size, d, False),
                   "self_attention.linear_qkv.qx": (config.query_size, d, False),
                   "self_attention.linear_qkv.k": (config.kv_size, d, False),
                   "self_attention.linear_qkv.v": (config.kv_size, d, False),
                   "mlp.linear_fc1": (ffn_in, d, False),
                   "self_attention.linear_proj": (d, 2 * config.query_size, True),
                   "mlp.linear_fc2": (d, config.ffn_hidden_size, True)}
        for name, (out_f, in_f, per_channel) in linears.items():
            prefix = f"{layer}.{name}"
            if i not in fp8_set:
                shapes[f"{prefix}.weight"] = (out_f, in_f)
                continue
            shapes[f"{prefix}.weight"] = (1, out_f, in_f)
            shapes[f"{prefix}.weight_scale"] = (1,)
            shapes[f"{prefix}.input_scale"] = (1,) if per_channel else (in_f,)
            if per_channel:
                shapes[f"{prefix}.smooth_scale"] = (1, in_f)
    return shapes


def fp8_layers_in(keys: Sequence[str]) -> list[int]:
    """Layer indices whose linears are stored quantised (detected from `weight_scale` tensors)."""
    found = set()
    for key in keys:
        if key.endswith(".weight_scale") and key.startswith("videodit_blocks.layers."):
            found.add(int(key.split(".")[2]))
    return sorted(found)


def to_official_state_dict(state: dict[str, torch.Tensor], config: DiTConfig) -> dict[str, torch.Tensor]:
    """Our state dict -> the official (non-FP8) layout; the inverse of `official_key_plan`.

    Used to write official-layout checkpoints of small models for tests and fixtures.
    """
    out: dict[str, torch.Tensor] = {}
    plan = official_key_plan(config)
    for name, source in plan.items():
        if name.endswith("attn.to_v_cross.weight"):
            continue
        (key,) = source.official
        if name.endswith("attn.to_k_cross.weight"):
            k, v = state[name], state[name.replace("to_k_cross", "to_v_cross")]
            groups, dh = config.num_kv_groups, config.head_dim
            stacked = torch.stack([k.view(groups, dh, -1), v.view(groups, dh, -1)], dim=1)
            out[key] = stacked.reshape(2 * groups * dh, -1).contiguous()
        elif name.endswith("attn.out_proj.weight"):
            out[key] = interleave_out_proj(state[name]).contiguous()
        else:
            out[key] = state[name].contiguous()
    return out
