"""The video autoencoder: pixels [N, 3, T, H, W] <-> latents [N, 16, T/4, H/8, W/8].

Follows MAGI-1's ViT VAE (SandAI-org/MAGI-1, inference/model/vae): a Conv3d patch embedding of
4x8x8 pixel blocks, a plain pre-norm ViT over the (t, h, w) token grid plus one CLS token, and a
learned absolute position table trained for one grid and trilinearly resized for every other grid.
Attention has no q/k/v projections of its own beyond one packed Linear; q, k and v are normalised
per head without parameters, and the official model rounds them to bfloat16 before attention
whatever the model's dtype (reproduced here behind `VAEConfig.bf16_attention_inputs`). The decoder
turns each token back into a 4x8x8 block of `embed_dim / 256` channels and a 3x3x3 Conv3d maps those
to RGB. Parameter names are the official ones, so official checkpoints load with strict=True.

`encode_moments`, `encode` and `decode` work in [-1, 1] pixel units with unscaled latents, like the
official encode/decode. The `*_to_*` helpers are what the rest of the engine uses: uint8 frames on
one side, latents scaled by `config.scale_factor` (what the DiT sees) on the other.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from magi_engine.errors import InputError
from magi_engine.vae import tiling
from magi_engine.vae.config import VAEConfig

#: Epsilon of the parameter-free q/k/v normalisation; it is added to the std, not to the variance.
QKV_NORM_EPS = 1e-5


def normalise_per_head(x: torch.Tensor, eps: float = QKV_NORM_EPS) -> torch.Tensor:
    """(x - mean) / (std + eps) over the last dim, biased std, no affine parameters."""
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)


def resize_position_table(table: torch.Tensor, trained_grid: tuple[int, int, int],
                          grid: tuple[int, int, int]) -> torch.Tensor:
    """Trilinear resize (align_corners=False) of a [t·h·w, D] table from `trained_grid` to `grid`."""
    if tuple(grid) == tuple(trained_grid):
        return table
    dim = table.shape[-1]
    volume = table.reshape(1, *trained_grid, dim).permute(0, 4, 1, 2, 3)  # [1, D, t, h, w]
    volume = F.interpolate(volume, size=tuple(grid), mode="trilinear", align_corners=False)
    return volume.permute(0, 2, 3, 4, 1).reshape(-1, dim)  # [t'·h'·w', D]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, normalise_qkv: bool, bf16_inputs: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.normalise_qkv = normalise_qkv
        self.bf16_inputs = bf16_inputs
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        if self.normalise_qkv:
            qkv = normalise_per_head(qkv)
        if self.bf16_inputs:
            # The official VAE feeds bf16 q/k/v to flash attention even in an fp32 model; the rounding
            # is part of its function (about 1e-2 on the outputs), so an fp32 model keeps it.
            qkv = qkv.to(torch.bfloat16).to(x.dtype)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, tokens, head_dim]
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, tokens, head_dim]
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm block; with `ln_in_attn` the q/k/v normalisation replaces the attention LayerNorm."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        # Absent (not Identity with no keys) so the checkpoint's key set is matched exactly either way.
        self.norm1 = None if config.ln_in_attn else nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, config.num_heads, config.qkv_bias, config.ln_in_attn,
                                  config.bf16_attention_inputs)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * config.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x if self.norm1 is None else self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenTransformer(nn.Module):
    """CLS token + resized absolute positions + blocks + final LayerNorm, shared by both halves."""

    def __init__(self, config: VAEConfig, depth: int) -> None:
        super().__init__()
        dim = config.embed_dim
        self.trained_grid = (config.video_length // config.patch_length,
                             config.video_size // config.patch_size,
                             config.video_size // config.patch_size)
        grid_tokens = self.trained_grid[0] * self.trained_grid[1] * self.trained_grid[2]
        self.extra_tokens = 1 if config.with_cls_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.with_cls_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, grid_tokens + self.extra_tokens, dim))
        self.blocks = nn.ModuleList([TransformerBlock(config) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)

    def transform(self, tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """tokens [B, t·h·w, D] in (t, h, w) order -> [B, t·h·w, D] after the final norm, CLS removed."""
        table = self.pos_embed[0]
        grid_table = resize_position_table(table[self.extra_tokens:], self.trained_grid, grid)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
            grid_table = torch.cat([table[:1], grid_table], dim=0)
        x = tokens + grid_table
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, self.extra_tokens:]


class PatchEmbedding(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        kernel = (config.patch_length, config.patch_size, config.patch_size)
        self.proj = nn.Conv3d(config.in_chans, config.embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class VideoEncoder(TokenTransformer):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config, config.depth)
        self.out_channels = config.z_chans * (2 if config.double_z else 1)
        self.patch_embed = PatchEmbedding(config)
        self.last_layer = nn.Linear(config.embed_dim, self.out_channels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, C, T, H, W] -> moments [B, 2z, T/pt, H/p, W/p]."""
        features = self.patch_embed(pixels)  # [B, D, t, h, w]
        batch, _, t, h, w = features.shape
        tokens = features.flatten(2).transpose(1, 2)  # [B, t·h·w, D]
        moments = self.last_layer(self.transform(tokens, (t, h, w)))  # [B, t·h·w, 2z]
        return moments.reshape(batch, t, h, w, self.out_channels).permute(0, 4, 1, 2, 3)


class VideoDecoder(TokenTransformer):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config, config.decoder_blocks)
        self.block_shape = (config.patch_length, config.patch_size, config.patch_size)
        self.unpatch_channels = config.embed_dim // (config.patch_size ** 2 * config.patch_length)
        self.proj_in = nn.Linear(config.z_chans, config.embed_dim)
        self.last_layer = nn.Conv3d(self.unpatch_channels, 3, kernel_size=3, stride=1, padding=1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [B, z, t, h, w] -> pixels [B, 3, t·pt, h·p, w·p]."""
        batch, channels, t, h, w = latents.shape
        tokens = self.proj_in(latents.permute(0, 2, 3, 4, 1).reshape(batch, t * h * w, channels))
        x = self.transform(tokens, (t, h, w))  # [B, t·h·w, D]
        pt, ph, pw = self.block_shape
        # Each token's D features are a (pt, ph, pw, c) block, channels fastest.
        x = x.reshape(batch, t, h, w, pt, ph, pw, self.unpatch_channels)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(batch, self.unpatch_channels, t * pt, h * ph, w * pw)
        return self.last_layer(x)


class VideoVAE(nn.Module):
    """MAGI-1's ViT video autoencoder built from a `VAEConfig`."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = VideoEncoder(config)
        self.decoder = VideoDecoder(config)
        self.tile_layout = tiling.TileLayout.from_config(config)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Small random weights (truncated normal, std 0.02) as MAGI-1 initialises the VAE; for tests."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for half in (self.encoder, self.decoder):
            nn.init.trunc_normal_(half.pos_embed, std=0.02, a=-2.0, b=2.0, generator=generator)
            if half.cls_token is not None:
                nn.init.trunc_normal_(half.cls_token, std=0.02, a=-2.0, b=2.0, generator=generator)

    @property
    def device(self) -> torch.device:
        return self.decoder.pos_embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.pos_embed.dtype

    # -- official-style API: [-1, 1] pixels, unscaled latents ------------------------------------

    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """pixels [N, 3, T, H, W] in [-1, 1] -> [N, 2z, T/4, H/8, W/8] (mean ‖ logvar), untiled."""
        self._check_pixels(x)
        return self.encoder(x.to(device=self.device, dtype=self.dtype))

    def encode(self, x: torch.Tensor, tiled: bool = True, runner: tiling.TileRunner | None = None) -> torch.Tensor:
        """pixels [N, 3, T, H, W] in [-1, 1] -> posterior mean [N, z, T/4, H/8, W/8]. `runner` computes the
        tiles elsewhere (magi_engine.parallel.vae_tiles: over the ranks of a several-device run)."""
        self._check_pixels(x)
        x = x.to(device=self.device, dtype=self.dtype)
        if tiled:
            return tiling.tiled_encode(self._posterior_mean, x, self.tile_layout, runner)
        return self._posterior_mean(x)

    def decode(self, z: torch.Tensor, tiled: bool = True, runner: tiling.TileRunner | None = None,
               budget_bytes: int | None = None) -> torch.Tensor:
        """latents [N, z, T, h, w] -> pixels [N, 3, 4T, 8h, 8w] in [-1, 1] units, not clamped.

        Every latent frame gives 4 pixel frames, also a lone one (the official decode keeps only the
        first of the 4 when T == 1, which a 3-frame temporal tiling reaches only for T % 3 == 1).
        `budget_bytes`: the spatial tile is the largest whose decoder call fits this working memory
        (tiling.budget_tile_px; a budget that holds the whole frame decodes it without seams); None
        keeps MAGI-1's own tiles (`tile_size`), as the reference pipeline decodes.
        """
        self._check_latents(z)
        z = z.to(device=self.device, dtype=self.dtype)
        if not tiled:
            return self.decoder(z)
        layout = self.tile_layout
        if budget_bytes is not None:
            factor = self.config.spatial_factor
            tile_px = tiling.budget_tile_px(self.config, z.shape[-2] * factor, z.shape[-1] * factor, budget_bytes,
                                            z.element_size())
            layout = dataclasses.replace(layout, tile_px=tile_px)
        return tiling.tiled_decode(self.decoder, z, layout, runner)

    def _posterior_mean(self, x: torch.Tensor) -> torch.Tensor:
        # The pipeline uses the posterior mode (= mean) so that encoding is deterministic.
        return self.encoder(x)[:, : self.config.z_chans]

    def tile_work(self, direction: str, x: torch.Tensor) -> tuple[tiling.TileFn, list[torch.Tensor]]:
        """What a tiled encode or decode of x (as `encode`/`decode` pass it on, on this device and dtype)
        computes: the function of one tile and every tile's input, in stitching order."""
        if direction == "encode":
            return self._posterior_mean, tiling.tile_inputs(x, self.tile_layout.encode_plan())
        return self.decoder, tiling.tile_inputs(x, self.tile_layout.decode_plan())

    # -- engine API: uint8 frames, latents scaled for the DiT -----------------------------------

    @torch.inference_mode()
    def pixels_to_latents(self, frames: torch.Tensor, runner: tiling.TileRunner | None = None) -> torch.Tensor:
        """uint8 frames [T, H, W, 3] (T a multiple of 4) -> scaled latents [z, T/4, H/8, W/8] float32."""
        self._check_uint8(frames, ndim=4, what="frames [T, H, W, 3]")
        latents = self.encode(self._uint8_to_unit(frames.permute(3, 0, 1, 2)[None]), runner=runner)  # [1, z, t, h, w]
        return (latents * self.config.scale_factor)[0].float()

    @torch.inference_mode()
    def image_to_latent(self, image: torch.Tensor, runner: tiling.TileRunner | None = None) -> torch.Tensor:
        """uint8 image [H, W, 3] -> scaled latent [z, 1, H/8, W/8] float32.

        The image is repeated to one temporal patch and only the first latent frame kept, as MAGI-1
        encodes a reference image for image-to-video.
        """
        self._check_uint8(image, ndim=3, what="image [H, W, 3]")
        clip = image[None].expand(self.config.patch_length, -1, -1, -1)  # [pt, H, W, 3]
        latents = self.encode(self._uint8_to_unit(clip.permute(3, 0, 1, 2)[None]), runner=runner)
        return (latents[:, :, :1] * self.config.scale_factor)[0].float()

    @torch.inference_mode()
    def latents_to_pixels(self, latents: torch.Tensor, runner: tiling.TileRunner | None = None,
                          budget_bytes: int | None = None) -> torch.Tensor:
        """scaled latents [z, T, h, w] -> uint8 frames [4T, 8h, 8w, 3], decoded with tiles (see `decode`)."""
        if latents.dim() != 4:
            raise InputError(f"Latents must have shape [channels, frames, height, width], got {tuple(latents.shape)}. "
                             "Pass one clip at a time.")
        z = latents.to(device=self.device) / self.config.scale_factor
        pixels = self.decode(z[None], runner=runner, budget_bytes=budget_bytes)[0]  # [3, 4T, 8h, 8w], model dtype
        # Same arithmetic as MAGI-1's post-processing, in the decoder's dtype; the uint8 cast truncates.
        frames = (pixels * 127.5 + 127.5).clamp(0, 255).to(torch.uint8)
        return frames.permute(1, 2, 3, 0).contiguous()

    def _uint8_to_unit(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device).float() / 127.5 - 1.0
        return x.to(self.dtype)

    # -- input checks --------------------------------------------------------------------------

    def _check_pixels(self, x: torch.Tensor) -> None:
        c = self.config
        if x.dim() != 5 or x.shape[1] != c.in_chans:
            raise InputError(f"Video must have shape [N, {c.in_chans}, frames, height, width], got {tuple(x.shape)}.")
        frames, height, width = x.shape[2:]
        if frames == 0 or frames % c.patch_length:
            raise InputError(f"The video has {frames} frames; the VAE needs a positive multiple of {c.patch_length}. "
                             "Trim or pad the clip.")
        if height == 0 or width == 0 or height % c.patch_size or width % c.patch_size:
            raise InputError(f"The video is {width}x{height} px; width and height must be positive multiples of "
                             f"{c.patch_size}. Resize or crop it.")

    def _check_latents(self, z: torch.Tensor) -> None:
        c = self.config
        if z.dim() != 5 or z.shape[1] != c.z_chans or 0 in z.shape:
            raise InputError(f"Latents must have shape [N, {c.z_chans}, frames, height, width] with no empty axis, "
                             f"got {tuple(z.shape)}.")

    def _check_uint8(self, x: torch.Tensor, ndim: int, what: str) -> None:
        if x.dtype != torch.uint8 or x.dim() != ndim or x.shape[-1] != self.config.in_chans:
            raise InputError(f"Expected uint8 {what} with {self.config.in_chans} channels last, "
                             f"got {x.dtype} {tuple(x.shape)}.")
