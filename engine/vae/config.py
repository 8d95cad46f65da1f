"""Configuration of MAGI-1's ViT video autoencoder (8x8 spatial, 4x temporal, 16 latent channels).

Field names follow the official `ddconfig` in the VAE's config.json (SandAI-org/MAGI-1,
inference/model/vae/vae_model.py), so an official config.json maps onto this class one to one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from magi_engine.errors import ConfigError


@dataclass(frozen=True)
class VAEConfig:
    video_size: int = 256
    video_length: int = 16
    patch_size: int = 8
    patch_length: int = 4
    in_chans: int = 3
    z_chans: int = 16
    double_z: bool = True
    embed_dim: int = 1024
    depth: int = 24
    #: Blocks of the decoder when it differs from the encoder's `depth` (None: the same). Official
    #: configs have one depth; studio-mini's decoder is deeper than its encoder (docs/training.md).
    decoder_depth: int | None = None
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    with_cls_token: bool = True
    norm_code: bool = False
    ln_in_attn: bool = True
    conv_last_layer: bool = True
    use_rope: bool = False
    use_final_proj: bool = False
    #: Latent scale: the DiT sees posterior_mean * scale_factor.
    scale_factor: float = 0.18215
    #: Tiling used by the pipeline (pixels / pixel frames): spatial tile, overlap factor, temporal tile.
    tile_size: int = 256
    tile_overlap: float = 0.25
    tile_frames: int = 12
    #: Round q/k/v to bfloat16 inside attention, as the official VAE does unconditionally.
    bf16_attention_inputs: bool = True

    def __post_init__(self) -> None:
        for name in ("video_size", "video_length", "patch_size", "patch_length", "in_chans", "z_chans",
                     "embed_dim", "depth", "num_heads", "tile_size", "tile_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"VAEConfig.{name} must be a positive integer, got {value!r}")
        if self.decoder_depth is not None and (not isinstance(self.decoder_depth, int) or self.decoder_depth <= 0):
            raise ConfigError(f"VAEConfig.decoder_depth must be a positive integer or None, got {self.decoder_depth!r}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"VAEConfig.embed_dim ({self.embed_dim}) must be a multiple of num_heads ({self.num_heads})")
        if self.use_rope or self.use_final_proj or not self.conv_last_layer or self.norm_code:
            raise ConfigError("VAEConfig: only the released layout is supported "
                              "(use_rope=False, use_final_proj=False, conv_last_layer=True, norm_code=False)")
        if self.embed_dim % (self.patch_size * self.patch_size * self.patch_length):
            raise ConfigError("VAEConfig.embed_dim must be a multiple of patch_size² · patch_length "
                              f"({self.patch_size}²·{self.patch_length})")
        if not 0.0 <= self.tile_overlap < 0.5:
            raise ConfigError(f"VAEConfig.tile_overlap must be in [0, 0.5), got {self.tile_overlap}")
        if self.tile_size % self.patch_size or self.tile_frames % self.patch_length:
            raise ConfigError("VAEConfig.tile_size / tile_frames must be multiples of patch_size / patch_length")

    def decode_tile_bytes(self, tile_px: int, dtype_bytes: int = 2) -> int:
        """Bytes one decoder call on a `tile_px`² tile of `tile_frames` keeps alive at its peak, estimated:
        about 12 hidden widths a token in a block, plus an attention matrix (SDPA's math fallback).
        Output pixels are counted by the caller."""
        tokens = (self.tile_frames // self.patch_length) * (tile_px // self.patch_size) ** 2 + 1
        return tokens * self.embed_dim * 12 * dtype_bytes + self.num_heads * tokens * tokens * dtype_bytes

    @property
    def decoder_blocks(self) -> int:
        return self.depth if self.decoder_depth is None else self.decoder_depth

    @property
    def spatial_factor(self) -> int:
        return self.patch_size

    @property
    def temporal_factor(self) -> int:
        return self.patch_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VAEConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"VAEConfig: unknown field(s) {unknown}")
        return cls(**dict(data))

    @classmethod
    def from_official(cls, config_json: Mapping[str, Any], **runtime: Any) -> "VAEConfig":
        """From an official VAE config.json (`_class_name` ViTVAE, `ddconfig`, `model_type` vit)."""
        if config_json.get("_class_name") not in (None, "ViTVAE"):
            raise ConfigError(f"VAE config.json names class {config_json.get('_class_name')!r}; expected 'ViTVAE'")
        if config_json.get("model_type", "vit") != "vit":
            raise ConfigError(f"VAE config.json model_type {config_json.get('model_type')!r} is not supported (only 'vit')")
        dd = dict(config_json.get("ddconfig", {}))
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in dd.items() if k in names}
        kwargs.update(runtime)
        return cls(**kwargs)
