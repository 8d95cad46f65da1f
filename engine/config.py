"""Frozen configuration dataclasses for the diffusion transformer and the sampler.

Model configuration lives beside the weights (it describes tensors); sampling settings are runtime
choices. Both are validated here, at the edge, with messages that name the field and the allowed
values, before any tensor is allocated. Field values for the released MAGI-1 models follow the
official example configs (SandAI-org/MAGI-1, example/{4.5B,24B}/*_config.json).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from magi_engine.errors import ConfigError

#: Pixel frames per chunk: the unit the engine generates, the document stores and the player and timeline show.
CHUNK_FRAMES = 24
#: Latent frames per chunk (CHUNK_FRAMES at the VAE's 4x temporal compression).
CHUNK_LATENT_FRAMES = CHUNK_FRAMES // 4


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _from_mapping(cls, data: Mapping[str, Any]):
    """Build a dataclass from a mapping, rejecting unknown fields with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    _require(not unknown, f"{cls.__name__}: unknown field(s) {unknown}; known fields are {sorted(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class DiTConfig:
    """Shape of a MAGI-1 style diffusion transformer."""

    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_heads: int
    num_kv_groups: int
    head_dim: int = 128
    caption_channels: int = 4096
    caption_max_length: int = 800
    cond_hidden_ratio: float = 0.25
    xattn_cond_hidden_ratio: float = 1.0
    cond_gating_ratio: float = 1.0
    latent_channels: int = 16
    patch_size: int = 2
    t_patch_size: int = 1
    #: SwiGLU MLP (24B) instead of GELU (4.5B).
    gated_mlp: bool = False
    #: The latent is multiplied by this at the input and the output divided by it (24B: 0.1).
    x_rescale_factor: float = 1.0
    #: 24B: the 16-channel latent is duplicated to 32 channels at the input.
    half_channel_vae: bool = False
    layernorm_eps: float = 1e-6
    #: Distilled (shortcut) models add a step-size embedding to the timestep embedding.
    distilled: bool = False
    #: Rows of the learned null caption marked valid at inference (hard-coded 50 in MAGI-1).
    null_caption_tokens: int = 50
    #: Scalar the timestep is multiplied by before the sinusoid.
    timestep_scale: float = 1000.0
    timestep_frequencies: int = 256

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "ffn_hidden_size", "num_heads", "num_kv_groups", "head_dim",
                     "caption_channels", "caption_max_length", "latent_channels", "patch_size", "t_patch_size"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value > 0, f"DiTConfig.{name} must be a positive integer, got {value!r}")
        _require(self.num_heads % self.num_kv_groups == 0,
                 f"DiTConfig.num_heads ({self.num_heads}) must be a multiple of num_kv_groups ({self.num_kv_groups})")
        _require(self.head_dim % 8 == 0, f"DiTConfig.head_dim must be a multiple of 8 (RoPE bands), got {self.head_dim}")
        _require(self.t_patch_size == 1, f"DiTConfig.t_patch_size must be 1 (as in every MAGI-1 model), got {self.t_patch_size}")
        _require(self.x_rescale_factor > 0, f"DiTConfig.x_rescale_factor must be positive, got {self.x_rescale_factor}")
        _require(0 < self.null_caption_tokens <= self.caption_max_length,
                 f"DiTConfig.null_caption_tokens must be in 1..caption_max_length ({self.caption_max_length}), "
                 f"got {self.null_caption_tokens}")

    # Derived sizes -------------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return self.latent_channels * (2 if self.half_channel_vae else 1)

    @property
    def cond_size(self) -> int:
        return int(self.hidden_size * self.cond_hidden_ratio)

    @property
    def xattn_size(self) -> int:
        return int(self.hidden_size * self.xattn_cond_hidden_ratio)

    @property
    def gate_size(self) -> int:
        return int(self.hidden_size * self.cond_gating_ratio)

    @property
    def query_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_groups * self.head_dim

    @property
    def rope_bands(self) -> int:
        return self.head_dim // 8

    def tokens_per_chunk(self, latent_height: int, latent_width: int) -> int:
        return CHUNK_LATENT_FRAMES * (latent_height // self.patch_size) * (latent_width // self.patch_size)

    def parameter_count(self) -> int:
        """Number of parameters, computed from the module shapes (no tensors allocated)."""
        d, c = self.hidden_size, self.cond_size
        per_layer = (
            self.cond_size * 2 * self.gate_size + 2 * self.gate_size  # gate projection
            + 2 * d  # attention pre-norm
            + 2 * d * self.query_size + 2 * d * self.kv_size  # q, qx, k, v
            + self.xattn_size * 2 * self.kv_size  # cross-attention k, v
            + 2 * self.query_size * d  # output projection
            + 4 * 2 * self.head_dim  # four q/k norms
            + 2 * d  # attention post-norm
            + 2 * d  # mlp pre-norm
            + d * self.ffn_hidden_size * (2 if self.gated_mlp else 1) + self.ffn_hidden_size * d
            + 2 * d  # mlp post-norm
        )
        embed = (
            self.in_channels * d * self.patch_size**2
            + self.timestep_frequencies * c + c + c * c + c
            + self.caption_channels * self.xattn_size + self.xattn_size
            + self.caption_channels * c + c
            + self.caption_max_length * self.caption_channels
            + self.rope_bands
        )
        head = 2 * d + d * self.patch_size**2 * self.in_channels
        return embed + self.num_layers * per_layer + head

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DiTConfig":
        return _from_mapping(cls, data)

    @classmethod
    def from_official(cls, model_config: Mapping[str, Any], *, distilled: bool) -> "DiTConfig":
        """Translate an official MAGI-1 `model_config` section into ours."""
        try:
            in_ch = int(model_config["in_channels"])
            half = bool(model_config.get("half_channel_vae", False))
            return cls(
                num_layers=int(model_config["num_layers"]),
                hidden_size=int(model_config["hidden_size"]),
                ffn_hidden_size=int(model_config["ffn_hidden_size"]),
                num_heads=int(model_config["num_attention_heads"]),
                num_kv_groups=int(model_config["num_query_groups"]),
                head_dim=int(model_config["kv_channels"]),
                caption_channels=int(model_config["caption_channels"]),
                caption_max_length=int(model_config["caption_max_length"]),
                cond_hidden_ratio=float(model_config["cond_hidden_ratio"]),
                xattn_cond_hidden_ratio=float(model_config["xattn_cond_hidden_ratio"]),
                cond_gating_ratio=float(model_config["cond_gating_ratio"]),
                latent_channels=in_ch // 2 if half else in_ch,
                patch_size=int(model_config["patch_size"]),
                t_patch_size=int(model_config["t_patch_size"]),
                gated_mlp=bool(model_config["gated_linear_unit"]),
                x_rescale_factor=float(model_config["x_rescale_factor"]),
                half_channel_vae=half,
                layernorm_eps=float(model_config["layernorm_epsilon"]),
                distilled=distilled,
                null_caption_tokens=min(50, int(model_config["caption_max_length"])),
            )
        except KeyError as missing:
            raise ConfigError(f"official model_config is missing the field {missing}") from None


GuidanceMode = Literal["cfg3", "distilled"]
#: The lowest and highest guidance scale a schedule may use.
GUIDANCE_SCALE_RANGE = (-1.0, 50.0)


@dataclass(frozen=True)
class GuidanceConfig:
    """How velocities of several passes are combined.

    cfg3: MAGI-1 base models. v = (1-s_prev)·v_uncond + (s_prev-s_text)·v_history + s_text·v_history_text,
    with (s_prev, s_text) chosen by the bin of the chunk's t in `t_edges`.
    distilled: one pass with text and history, plus the near-clean blend of the oldest chunk.
    """

    mode: GuidanceMode = "cfg3"
    t_edges: tuple[float, ...] = (0.0, 0.0217, 0.1, 0.3, 0.999)
    history_scales: tuple[float, ...] = (1.5, 1.5, 1.5, 1.0, 1.0)
    text_scales: tuple[float, ...] = (7.5, 7.5, 7.5, 0.0, 0.0)
    #: Distilled models: above this t the oldest chunk's velocity is blended with its isolated velocity.
    near_clean_threshold: float = 0.3
    #: Weight of the with-history velocity in that blend (MAGI-1's `prev_chunks_scale`).
    near_clean_history_weight: float = 0.7

    def __post_init__(self) -> None:
        _require(self.mode in ("cfg3", "distilled"), f"GuidanceConfig.mode must be 'cfg3' or 'distilled', got {self.mode!r}")
        n = len(self.t_edges)
        _require(n >= 1 and len(self.history_scales) == n and len(self.text_scales) == n,
                 "GuidanceConfig.t_edges, history_scales and text_scales must have the same length "
                 f"(got {n}, {len(self.history_scales)}, {len(self.text_scales)})")
        _require(list(self.t_edges) == sorted(self.t_edges), "GuidanceConfig.t_edges must be increasing")
        for name in ("history_scales", "text_scales"):
            for value in getattr(self, name):
                low, high = GUIDANCE_SCALE_RANGE
                _require(low <= value <= high, f"GuidanceConfig.{name} values must lie in [-1, 50], got {value}")
        _require(0.0 <= self.near_clean_history_weight <= 1.0,
                 f"GuidanceConfig.near_clean_history_weight must be in [0, 1], got {self.near_clean_history_weight}")

    def scaled(self, text_scale: float | None = None, history_scale: float | None = None) -> "GuidanceConfig":
        """The same schedule with the strongest text / history scale replaced (weaker bins keep their value)."""
        def rescale(values: tuple[float, ...], new_max: float | None) -> tuple[float, ...]:
            if new_max is None:
                return values
            top = max(values)
            return tuple(new_max if v == top else v for v in values)
        return dataclasses.replace(self, text_scales=rescale(self.text_scales, text_scale),
                                   history_scales=rescale(self.history_scales, history_scale))


SUPPORTED_STEPS = (4, 8, 12, 16, 32, 64)
#: The most chunks denoised at once.
MAX_WINDOW = 8


@dataclass(frozen=True)
class SamplingConfig:
    """Runtime settings of the chunk-wise sampler."""

    num_steps: int = 64
    #: Chunks denoised at once at staggered noise levels (MAGI-1 default 4; 1 = strictly sequential).
    window: int = 4
    #: Shift of the t schedule (MAGI-1: 3).
    shift: float = 3.0
    #: Only used for 12 steps: order of the 1/8 and 1/16 sub-steps within each quarter.
    shortcut_mode: Literal["8,16,16", "16,16,8"] = "8,16,16"
    #: Chunks a denoising chunk attends to (itself included) in each quarter of its steps.
    attention_spans: tuple[int, ...] = (5, 4, 3, 2)
    #: Timestep fed when a finished chunk is encoded into the KV cache.
    clean_t: float = 0.9999
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)

    def __post_init__(self) -> None:
        _require(isinstance(self.num_steps, int) and self.num_steps in SUPPORTED_STEPS,
                 f"SamplingConfig.num_steps must be one of {SUPPORTED_STEPS}, got {self.num_steps!r}")
        _require(isinstance(self.window, int) and 1 <= self.window <= MAX_WINDOW,
                 f"SamplingConfig.window must be an integer from 1 to 8, got {self.window!r}")
        _require(self.num_steps % self.window == 0,
                 f"SamplingConfig.num_steps ({self.num_steps}) must be a multiple of window ({self.window})")
        _require(self.num_steps % len(self.attention_spans) == 0,
                 f"SamplingConfig.num_steps ({self.num_steps}) must be a multiple of the number of attention "
                 f"spans ({len(self.attention_spans)})")
        _require(all(isinstance(s, int) and s >= 1 for s in self.attention_spans),
                 f"SamplingConfig.attention_spans must be positive integers, got {self.attention_spans}")
        _require(1.0 <= self.shift <= 20.0, f"SamplingConfig.shift must be in [1, 20], got {self.shift}")
        _require(self.shortcut_mode in ("8,16,16", "16,16,8"),
                 f"SamplingConfig.shortcut_mode must be '8,16,16' or '16,16,8', got {self.shortcut_mode!r}")
        _require(0.5 < self.clean_t <= 1.0, f"SamplingConfig.clean_t must be in (0.5, 1], got {self.clean_t}")

    @property
    def steps_per_stage(self) -> int:
        return self.num_steps // self.window

    @property
    def cache_chunks(self) -> int:
        """Clean chunks the KV cache must hold: the longest span minus the chunk itself."""
        return max(1, max(self.attention_spans) - 1)

    def overridden(self, *, steps: int | None = None, window: int | None = None,
                   guidance_scale: float | None = None) -> "SamplingConfig":
        """These settings with the steps, window and text guidance scale a user chose (None keeps the model's)."""
        changes: dict[str, Any] = {}
        if steps is not None:
            changes["num_steps"] = steps
        if window is not None:
            changes["window"] = window
        if guidance_scale is not None:
            changes["guidance"] = self.guidance.scaled(text_scale=guidance_scale)
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SamplingConfig":
        data = dict(data)
        guidance = data.pop("guidance", None)
        config = _from_mapping(cls, data)
        if guidance is not None:
            config = dataclasses.replace(config, guidance=_from_mapping(GuidanceConfig, guidance))
        return config


def model_sampling(requested: SamplingConfig | None, default: SamplingConfig, *, distilled: bool,
                   label: str) -> SamplingConfig:
    """The settings a request runs with on a model: its own or the model's default, in the model's guidance mode."""
    sampling = requested or default
    wanted = "distilled" if distilled else "cfg3"
    _require(sampling.guidance.mode == wanted,
             f"{label} needs '{wanted}' guidance, the request asks for '{sampling.guidance.mode}'.")
    return sampling


COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
#: Where MAGI-1's T5 text encoder lives: on the GPU in the model dtype; on the CPU in float32; or "offload":
#: in the model dtype in (pinned) CPU memory, copied to the GPU only while it encodes new prompts.
TEXT_ENCODER_PLACEMENTS = ("gpu", "cpu", "offload")
#: What of the DiT's memory lives in pinned CPU memory and is streamed to the GPU a layer ahead of use:
#: nothing, the KV cache of clean chunks, the transformer layers' weights, or both (magi_engine.dit.offload).
DIT_OFFLOAD_MODES = ("none", "kv-cache", "layers", "both")


@dataclass(frozen=True)
class RuntimeConfig:
    """How the DiT runs on its device: speed settings that change no math beyond rounding.

    None means "the engine chooses for the device" (magi_engine.dit.compiled.resolve_runtime): compiled layers
    on CUDA only, native FP8 on GPUs with FP8 matmuls (compute capability 8.9 and later) only, FP8 attention
    with native FP8 on Hopper only, fused kernels on CUDA with Triton only, FlashAttention on Hopper with
    flash-attn-4 or FlashAttention 3 installed only.
    `quantize_fp8` is off unless asked for.
    """

    #: Wrap the dense parts of each transformer layer in torch.compile (one graph for every step and layer).
    compile_layers: bool | None = None
    #: torch.compile mode. CUDA graphs are left out: the window's token counts change from step to step.
    compile_mode: str = "default"
    #: FP8 checkpoints keep their quantised linears FP8 and run FP8 matmuls (else they are dequantised).
    native_fp8: bool | None = None
    #: A bf16 MAGI-1 checkpoint has the linears MAGI-1's FP8 checkpoints store in FP8 (layers 1..L-2) quantised
    #: to native FP8 as it loads, layer by layer, with calibrated activation scales (magi_engine.dit.fp8_quantize):
    #: about half the DiT's memory and FP8 matmuls, at a measured cost in accuracy (BENCHMARKS.md). Needs a GPU
    #: with FP8 matmuls (as native_fp8); FP8 checkpoints and our own models load as they are.
    quantize_fp8: bool = False
    #: Native FP8 models also run self-attention in FP8 (magi_engine.dit.fp8_attention) on Hopper GPUs (compute
    #: capability 9.x) with FlashAttention 3, the cuDNN frontend or Triton; None: wherever it can run; False: bf16 attention.
    fp8_attention: bool | None = None
    #: Fused Triton kernels for each layer's norm + gate + residual and QK-norm + RoPE (magi_engine.dit.fused) on
    #: CUDA GPUs with Triton installed, and with them, in bf16, a GELU MLP's activation in its first GEMM's epilogue
    #: (magi_engine.dit.gelu_epilogue); None: wherever they run (measured faster on an H100); False: off.
    fused_kernels: bool | None = None
    #: bf16 self-attention through FlashAttention 4, or 3 without it (magi_engine.dit.flash_attention), on Hopper
    #: GPUs with either installed, in the layers that do not run FP8 attention; None: wherever it can run
    #: (measured faster on an H100); False: SDPA (cuDNN's kernel).
    flash_attention: bool | None = None
    #: One of TEXT_ENCODER_PLACEMENTS; None: the loader picks the first that fits the device's memory
    #: (magi_engine.loading.memory.choose_text_placement), in the order gpu, offload, cpu.
    text_encoder: str | None = None
    #: One of DIT_OFFLOAD_MODES; None: the loader picks, of the modes that fit the device's memory, the one
    #: that copies the fewest bytes a forward (magi_engine.loading.memory.choose_dit_offload).
    dit_offload: str | None = None

    def __post_init__(self) -> None:
        _require(self.compile_layers in (None, True, False),
                 f"RuntimeConfig.compile_layers must be true, false or null, got {self.compile_layers!r}")
        _require(self.native_fp8 in (None, True, False),
                 f"RuntimeConfig.native_fp8 must be true, false or null, got {self.native_fp8!r}")
        _require(self.quantize_fp8 in (True, False),
                 f"RuntimeConfig.quantize_fp8 must be true or false, got {self.quantize_fp8!r}")
        _require(self.fp8_attention in (None, True, False),
                 f"RuntimeConfig.fp8_attention must be true, false or null, got {self.fp8_attention!r}")
        _require(self.fused_kernels in (None, True, False),
                 f"RuntimeConfig.fused_kernels must be true, false or null, got {self.fused_kernels!r}")
        _require(self.flash_attention in (None, True, False),
                 f"RuntimeConfig.flash_attention must be true, false or null, got {self.flash_attention!r}")
        _require(self.compile_mode in COMPILE_MODES,
                 f"RuntimeConfig.compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        _require(self.text_encoder is None or self.text_encoder in TEXT_ENCODER_PLACEMENTS,
                 f"RuntimeConfig.text_encoder must be one of {TEXT_ENCODER_PLACEMENTS} or null, "
                 f"got {self.text_encoder!r}")
        _require(self.dit_offload is None or self.dit_offload in DIT_OFFLOAD_MODES,
                 f"RuntimeConfig.dit_offload must be one of {DIT_OFFLOAD_MODES} or null, got {self.dit_offload!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RuntimeConfig":
        return _from_mapping(cls, data)
