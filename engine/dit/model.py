"""The MAGI-1 diffusion transformer (arXiv 2505.13211; official `VideoDiTModel`), our implementation.

One forward pass takes a run of consecutive chunks of the latent video, each with its own noise
level t, its own text and a key span (see `ChunkLayout`), plus optionally the cached keys/values of
earlier clean chunks; it returns the flow-matching velocity (t = 0 noise, t = 1 clean) and, when
asked, the keys/values of its own chunks for the KV cache.

Precision follows the reference: the embedders, QK-norms, post-norms, the final norm and projection
run in float32 ("islands", kept in float32 whatever the model dtype); everything else in the model
dtype (bfloat16 on GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from magi_engine.config import CHUNK_LATENT_FRAMES, DiTConfig
from magi_engine.dit.attention import ChunkLayout
from magi_engine.dit.embeddings import CaptionEmbedding, TimestepEmbedding
from magi_engine.dit.layer import LayerKV, TransformerLayer
from magi_engine.dit.norms import OnePlusLayerNorm
from magi_engine.dit.rope import RotaryEmbedding3D
from magi_engine.errors import InputError

#: Parameter-name prefixes of modules that always stay in float32.
FLOAT32_ISLANDS = ("patch_embed.", "timestep_embed.", "caption_embed.", "rope.", "final_norm.", "final_proj.")
FLOAT32_ISLAND_SUFFIXES = (".attn.q_norm.", ".attn.k_norm.", ".attn_post_norm.", ".mlp_post_norm.")


def is_float32_island(name: str) -> bool:
    return name.startswith(FLOAT32_ISLANDS) or any(s in "." + name for s in FLOAT32_ISLAND_SUFFIXES)


@dataclass(frozen=True)
class ChunkText:
    """Per-chunk text features, left-aligned: features [N, chunks, L, C], mask [N, chunks, L] (True = valid)."""

    features: torch.Tensor
    mask: torch.Tensor | None = None

    @classmethod
    def from_sequences(cls, sequences: list[torch.Tensor], device=None) -> "ChunkText":
        """One sequence [L_i, C] per chunk (batch of one) -> padded ChunkText."""
        longest = max(s.shape[0] for s in sequences)
        channels = sequences[0].shape[1]
        features = torch.zeros(1, len(sequences), longest, channels, device=device)
        mask = torch.zeros(1, len(sequences), longest, dtype=torch.bool, device=device)
        for j, seq in enumerate(sequences):
            features[0, j, : seq.shape[0]] = seq.to(device=device, dtype=torch.float32)
            mask[0, j, : seq.shape[0]] = True
        return cls(features, None if bool(mask.all()) else mask)


@dataclass
class KVContext:
    """Keys/values of the clean chunks [first_chunk, first_chunk + num_chunks), one (k, v) per layer."""

    first_chunk: int
    num_chunks: int
    layers: list[LayerKV]


@dataclass
class DiTOutput:
    velocity: torch.Tensor
    kv: list[LayerKV] | None = None


class MagiDiT(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        p = config.patch_size
        self.patch_embed = nn.Conv3d(config.in_channels, config.hidden_size, kernel_size=(1, p, p), stride=(1, p, p),
                                     bias=False)
        self.timestep_embed = TimestepEmbedding(config)
        self.caption_embed = CaptionEmbedding(config)
        self.rope = RotaryEmbedding3D(config.head_dim)
        self.layers = nn.ModuleList(TransformerLayer(config) for _ in range(config.num_layers))
        self.final_norm = OnePlusLayerNorm(config.hidden_size, config.layernorm_eps)
        self.final_proj = nn.Linear(config.hidden_size, p * p * config.in_channels, bias=False)
        #: One masked attention call per layer instead of one per chunk: same math, far fewer kernel
        #: launches (training small models); off by default so inference keeps exact block causality.
        self.masked_attention = False
        #: Keep the sampler's KV cache in pinned CPU memory, streamed in one layer ahead (magi_engine.dit.kv_cache).
        self.kv_cache_on_host = False
        #: Set by magi_engine.dit.offload.stream_layers when the layers live in CPU memory.
        self.layer_streamer = None
        #: Set by the loader when a bf16 checkpoint was quantised to FP8 on load (magi_engine.dit.fp8_quantize
        #: .Fp8Quantization: the linears, their calibrated input maxima, the seconds it took).
        self.fp8_quantization = None

    # Precision ----------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """The model dtype (of everything outside the float32 islands)."""
        return self.layers[0].attn.to_q.weight.dtype

    @property
    def device(self) -> torch.device:
        """Where the model computes (the final projection never leaves it; streamed layers do)."""
        return self.final_proj.weight.device

    def set_dtype(self, dtype: torch.dtype) -> "MagiDiT":
        """Cast to `dtype`, keeping the float32 islands in float32."""
        for name, param in self.named_parameters():
            param.data = param.data.to(torch.float32 if is_float32_island(name) else dtype)
        return self

    # Forward ------------------------------------------------------------------------------------
    def forward(self, latents: torch.Tensor, t: torch.Tensor, text: ChunkText, caption_present: torch.Tensor | bool,
                layout: ChunkLayout, *, context: KVContext | None = None, step_size: torch.Tensor | None = None,
                collect_kv: bool = False) -> DiTOutput:
        """Velocity of a run of chunks.

        latents [N, 16, chunks·6, H, W]; t [N, chunks] in [0, 1]; caption_present bool or [N, chunks]
        (the adaLN flag: True uses the "text present" row of the null caption, False the "dropped" row);
        step_size [N, chunks] for distilled models (the shortcut step-size input, 1/(2·Δu)).
        """
        self._check_inputs(latents, t, text, layout, context, step_size)
        x, condition, text_tokens, text_mask, angles = self.embed(latents, t, text, caption_present, layout, step_size)
        collected: list[LayerKV] = []
        for index, layer in enumerate(self.layers):
            layer_context = None if context is None else context.layers[index]
            x, kv = layer(x, condition, angles, text_tokens, text_mask, layout, layer_context, self.masked_attention)
            if collect_kv:
                collected.append(kv)
        velocity = self.unpatchify(self.final_proj(self.final_norm(x.float())), latents.shape)
        return DiTOutput(velocity, collected if collect_kv else None)

    def embed(self, latents: torch.Tensor, t: torch.Tensor, text: ChunkText, caption_present: torch.Tensor | bool,
              layout: ChunkLayout, step_size: torch.Tensor | None):
        """The layers' inputs: tokens x [N, S, D], condition [N, chunks, C], text tokens [N, chunks, L, Dx],
        text mask and RoPE angles [S, A] (split out so a sequence-parallel forward can shard them)."""
        cfg = self.config
        n, _, frames, _, _ = latents.shape
        num_chunks = layout.num_chunks
        dtype = self.dtype

        x = latents.float() * cfg.x_rescale_factor
        if cfg.half_channel_vae:
            x = torch.cat([x, x], dim=1)
        x = self.patch_embed(x)  # [N, D, T, H/p, W/p]
        grid_h, grid_w = x.shape[-2:]
        x = rearrange(x, "n d t h w -> n (t h w) d").to(dtype)

        condition = self.timestep_embed(t.flatten(), round_to=dtype)
        if cfg.distilled:
            condition = condition + self.timestep_embed(step_size.flatten(), round_to=dtype)
        condition = condition.view(n, num_chunks, -1)
        if isinstance(caption_present, bool):
            caption_present = torch.full((n, num_chunks), caption_present, dtype=torch.bool, device=x.device)
        condition = (condition + self.caption_embed.flag_vectors(caption_present.to(x.device))).to(dtype)

        text_tokens = self.caption_embed.project_text(text.features.to(x.device)).to(dtype)  # [N, chunks, L, Dx]
        text_mask = None if text.mask is None else text.mask.to(x.device)
        angles = self.rope.angles(layout.first_chunk * CHUNK_LATENT_FRAMES, frames, grid_h, grid_w)
        return x, condition, text_tokens, text_mask, angles

    def unpatchify(self, features: torch.Tensor, latent_shape: torch.Size) -> torch.Tensor:
        """The final projection's token features [N, S, p·p·C] -> velocity shaped like the latents."""
        cfg = self.config
        p = cfg.patch_size
        _, _, frames, height, width = latent_shape
        velocity = rearrange(features, "n (t h w) (ph pw c) -> n c t (h ph) (w pw)", t=frames, h=height // p,
                             w=width // p, ph=p, pw=p)
        if cfg.half_channel_vae:
            velocity = velocity[:, : cfg.latent_channels]
        return velocity / cfg.x_rescale_factor

    def _check_inputs(self, latents, t, text, layout, context, step_size) -> None:
        cfg = self.config
        if latents.ndim != 5 or latents.shape[1] != cfg.latent_channels:
            raise InputError(f"latents must be [N, {cfg.latent_channels}, T, H, W], got {tuple(latents.shape)}")
        n, _, frames, height, width = latents.shape
        if height % cfg.patch_size or width % cfg.patch_size:
            raise InputError(f"latent height/width must be multiples of {cfg.patch_size}, got {height}x{width}")
        if frames != layout.num_chunks * CHUNK_LATENT_FRAMES:
            raise InputError(f"{frames} latent frames do not make {layout.num_chunks} chunks of {CHUNK_LATENT_FRAMES}")
        expected_tokens = cfg.tokens_per_chunk(height, width)
        if layout.tokens_per_chunk != expected_tokens:
            raise InputError(f"layout has {layout.tokens_per_chunk} tokens per chunk, latents give {expected_tokens}")
        if tuple(t.shape) != (n, layout.num_chunks):
            raise InputError(f"t must be [N, chunks] = {(n, layout.num_chunks)}, got {tuple(t.shape)}")
        if text.features.shape[:2] != (n, layout.num_chunks) or text.features.shape[-1] != cfg.caption_channels:
            raise InputError(f"text features must be [N, chunks, L, {cfg.caption_channels}], "
                             f"got {tuple(text.features.shape)}")
        if cfg.distilled and step_size is None:
            raise InputError("a distilled model needs the step size of each chunk")
        if layout.context_chunks and (context is None or context.first_chunk != layout.context_first
                                      or context.num_chunks != layout.context_chunks):
            raise InputError("the KV context does not cover the chunks the layout attends to")

    # Helpers for the sampler --------------------------------------------------------------------
    def null_text(self) -> torch.Tensor:
        return self.caption_embed.null_text()
