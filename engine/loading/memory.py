"""Memory estimates before loading, and a fits-or-explain check against the device.

The estimate is arithmetic on the configs (no tensors): DiT weights, text encoder, VAE, the KV cache of
clean chunks and the activation peak of one forward. It is meant to be a little pessimistic (within
about a third of the real peak), so that "it fits" is believed and "it does not fit" is said before a
multi-minute load ends in a CUDA out-of-memory error. The estimates cost no torch (the Settings dialog
shows them on the GUI thread); `device_memory_bytes` asks the device, so it imports torch. Sizes follow the MAGI-1 brief
(shared/reference/magi1.md §2.1, §2.9, §5.1: KV = 8 groups × (128 K + 128 V) × 2 bytes per token per layer).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from magi_engine.config import CHUNK_FRAMES, DiTConfig
from magi_engine.errors import ConfigError, OutOfMemory
from magi_engine.vae.config import VAEConfig

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

GIB = 2**30
#: Parameters of T5-v1.1-XXL's encoder (the text encoder MAGI-1 uses).
T5_XXL_ENCODER_PARAMS = 4.76e9
VAE_TEMPORAL, VAE_SPATIAL = 4, 8


def vae_parameter_count(cfg: VAEConfig = VAEConfig()) -> int:
    """Parameters of the ViT VAE (encoder + decoder), from its config (≈ 0.61 B for the released one)."""
    e, hidden = cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio)
    block = (e * 3 * e + 3 * e) + (e * e + e) + 2 * e + (e * hidden + hidden) + (hidden * e + e)
    grid = (cfg.video_length // cfg.patch_length) * (cfg.video_size // cfg.patch_size) ** 2 + 1
    z_out = cfg.z_chans * (2 if cfg.double_z else 1)
    encoder = (cfg.in_chans * cfg.patch_length * cfg.patch_size**2 * e + e) + grid * e + e \
        + cfg.depth * block + 2 * e + (e * z_out + z_out)
    decoder_out = e // (cfg.patch_size**2 * cfg.patch_length)
    decoder = (cfg.z_chans * e + e) + grid * e + e + cfg.decoder_blocks * block + 2 * e \
        + (cfg.in_chans * decoder_out * 27 + cfg.in_chans)
    return encoder + decoder


def _latent_tokens_per_chunk(dit: DiTConfig, width: int, height: int) -> int:
    if width <= 0 or height <= 0:
        raise ConfigError(f"width and height must be positive, got {width}×{height}")
    # Round up to whole patches: a padded frame is the worst case for memory.
    step = VAE_SPATIAL * dit.patch_size
    return dit.tokens_per_chunk(math.ceil(height / step) * dit.patch_size, math.ceil(width / step) * dit.patch_size)


def kv_bytes_per_chunk(dit: DiTConfig, *, width: int, height: int, dtype_bytes: int = 2) -> int:
    """K and V of one chunk over all layers: tokens × layers × 2 × (groups · head_dim) × bytes."""
    return _latent_tokens_per_chunk(dit, width, height) * dit.num_layers * 2 * dit.kv_size * dtype_bytes


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    text_encoder_bytes: int
    vae_bytes: int
    kv_cache_bytes: int
    activation_bytes: int
    total_bytes: int
    width: int = 0
    height: int = 0
    #: Working memory of one chunk's VAE decode (one tile's decoder call and the chunk's float32 pixels); it
    #: counts in `vae_bytes` only beyond the activations, since a chunk is decoded between steps.
    decode_bytes: int = 0
    #: Peak while a bf16 checkpoint is quantised to FP8 on load (0 if it is not): `total_bytes` is at least this.
    load_bytes: int = 0

    @property
    def resident_bytes(self) -> int:
        """What stays on the device while a chunk is decoded (the forward's activations are gone by then)."""
        return self.total_bytes - max(self.activation_bytes, self.decode_bytes)

    def describe(self) -> str:
        gib = lambda b: f"{b / GIB:.1f}"  # noqa: E731
        where = f" at {self.width}×{self.height}" if self.width and self.height else ""
        return (f"about {gib(self.total_bytes)} GiB{where}: weights {gib(self.weights_bytes)}, "
                f"text encoder {gib(self.text_encoder_bytes)}, VAE {gib(self.vae_bytes)}, "
                f"KV cache {gib(self.kv_cache_bytes)}, activations {gib(self.activation_bytes)} GiB")


def _weights_bytes(dit: DiTConfig, weight_bytes: int, quantised_layers_fp8: bool, *, layers_on_host: bool = False
                   ) -> int:
    """Weight bytes on the device; `layers_on_host`: only two streamed layers are there at a time."""
    per_layer, outside_bytes = _layer_params_and_outside_bytes(dit, weight_bytes)
    if layers_on_host:  # the largest layers (the first and last stay bf16 in FP8 checkpoints)
        return outside_bytes + min(2, dit.num_layers) * per_layer * weight_bytes
    size = dit.num_layers * per_layer * weight_bytes + outside_bytes
    if quantised_layers_fp8 and dit.num_layers > 2:
        size -= (dit.num_layers - 2) * _quantised_linear_params(dit) * (weight_bytes - 1)  # first, last stay bf16
    return size


def _layer_params_and_outside_bytes(dit: DiTConfig, weight_bytes: int) -> tuple[int, int]:
    total = dit.parameter_count()
    per_layer = dataclasses.replace(dit, num_layers=dit.num_layers + 1).parameter_count() - total
    # MAGI-1 keeps embedders, output head and RoPE bands in float32 (_high_precision_promoter).
    return per_layer, (total - dit.num_layers * per_layer) * max(4, weight_bytes)


def _quantised_linear_params(dit: DiTConfig) -> int:
    d, q, kv, f = dit.hidden_size, dit.query_size, dit.kv_size, dit.ffn_hidden_size
    return 2 * d * q + 2 * d * kv + 2 * q * d + d * f * (2 if dit.gated_mlp else 1) + f * d


def _activation_bytes(dit: DiTConfig, tokens_per_chunk: int, window: int, cache_chunks: int,
                      act: int, batch: int, fp8_gemms: bool = False) -> int:
    """Peak of one no-grad forward over the window plus the re-encoded clean chunk (window 0: a clean
    chunk encoded alone).

    Only one layer's intermediates are alive at a time, so the peak is the larger of the attention and
    MLP phases of one layer, per token (D hidden, Q = heads·head_dim, KV = groups·head_dim, F ffn):
    * both phases: the residual stream (D, counted float32), the pre-norm output (D), the gated branch
      output and its gate product (2·D);
    * attention: q, qx (2Q), k, v (2KV), RoPE'd copies of q and k (Q + KV), self- and cross-attention
      outputs (2Q); plus, per forward, K/V of the whole attended span (cache + window, 2KV per token)
      and the GQA expansion of one chunk's K/V span to all query heads (2Q per token of that span),
      which an SDPA without native GQA materialises. Flash / memory-efficient SDPA keep no score matrix.
    * MLP: fc1 output (F, or 2F for SwiGLU), its activation (F) and, for SwiGLU, silu's temporary (F); with
      native FP8 GEMMs and SwiGLU, quantising fc2's input adds two float32 copies of it (8·F bytes, less the
      act·F counted) while fc1's output is still held by its gate/value views: the 24B FP8 at 720×720 peaked
      5.4 GiB above the estimate without this term (60,750 tokens; 6·F bytes a token is 5.6 GiB). The 4.5B's
      GELU MLP frees fc1's output first, and its FP8 rows stay under the estimate without it.
    Checked on an H100: a plain one-layer bf16 forward (per-chunk SDPA, with and without GQA expansion)
    at 4.5B and 24B shapes, 480p to 720p, window 4, 4 cached chunks, peaked 9-15 % below this figure.
    """
    d, q, kv, f = dit.hidden_size, dit.query_size, dit.kv_size, dit.ffn_hidden_size
    tokens = (window + 1) * tokens_per_chunk * batch
    common = d * 4 + act * 3 * d
    attention = tokens * (common + act * (2 * q + 2 * kv + q + kv + 2 * q))
    span_tokens = (cache_chunks + window + 1) * tokens_per_chunk * batch
    attention += span_tokens * 2 * kv * act + (cache_chunks + 1) * tokens_per_chunk * batch * 2 * q * act
    mlp_inner = f * (2 if dit.gated_mlp else 1) + f + (f if dit.gated_mlp else 0)
    mlp = tokens * (common + act * mlp_inner)
    if fp8_gemms and dit.gated_mlp:  # fc2's input rounded to e4m3 through float32 while fc1's output lives on
        mlp += tokens * f * (8 - act)
    # Input latent, embedding and output velocity in float32 (small next to a layer, counted anyway).
    io = tokens * 4 * (2 * dit.in_channels * dit.patch_size**2 + d)
    return max(attention, mlp) + io


#: Forwards of one chunk that calibrate quantising on load (magi_engine.dit.fp8_quantize: noise levels × texts).
QUANTIZE_CALIBRATION_FORWARDS = 10
#: float32 working copies of one block of a weight being quantised (3 × magi_engine.loading.fp8.QUANTIZE_BLOCK_ELEMENTS).
QUANTIZE_WORKING_BYTES = 3 * 4 * 2**22


def _quantize_on_load_bytes(dit: DiTConfig, tokens_per_chunk: int, weights_on_device: int, weight_bytes: int,
                            act: int) -> int:
    """Peak of quantising a bf16 checkpoint to FP8 as it loads (magi_engine.dit.fp8_quantize.load_quantized),
    before the VAE and text encoder load: the FP8 model's weights, the one layer's dense linears being
    quantised, the calibration's hidden states (one chunk per forward), one single-chunk forward of that layer
    and the quantiser's working copies."""
    dense_layer = _quantised_linear_params(dit) * weight_bytes
    states = QUANTIZE_CALIBRATION_FORWARDS * tokens_per_chunk * (dit.hidden_size * act)
    forward = _activation_bytes(dit, tokens_per_chunk, 0, 0, act, 1)
    return weights_on_device + dense_layer + states + forward + QUANTIZE_WORKING_BYTES


def decode_pixels_bytes(cfg: VAEConfig, width: int, height: int) -> int:
    """One chunk's decoded pixels in float32 (24 frames), held while its tiles are stitched."""
    return CHUNK_FRAMES * width * height * cfg.in_chans * 4


def _vae_bytes(cfg: VAEConfig, params: float, bytes_per_param: int, width: int, height: int,
               tile_px: int | None = None) -> tuple[int, int]:
    """(weights, working memory of a decode). Decoding one tile: tokens of a 3-latent-frame, tile_size² tile
    (`tile_px`² when given), ~12 hidden-widths alive in a block, plus a materialised attention matrix in case
    SDPA falls back to the math kernel, plus one chunk of float32 output pixels (24 frames)."""
    tile = cfg.decode_tile_bytes(tile_px or cfg.tile_size, 2)
    return int(params * bytes_per_param), tile + decode_pixels_bytes(cfg, width, height)


def estimate_memory(dit: DiTConfig, *, width: int, height: int, window: int, cache_chunks: int,
                    weight_dtype_bytes: int = 2, fp8: bool = False, keep_fp8: bool = False,
                    text_encoder_params: float = T5_XXL_ENCODER_PARAMS, text_encoder_on_device: bool = True,
                    text_encoder_bytes_per_param: int = 2, vae_params: float | None = None,
                    vae_bytes_per_param: int = 2, include_vae: bool = True, kv_dtype_bytes: int = 2,
                    activation_dtype_bytes: int = 2, batch: int = 1, attention_span: int | None = None,
                    offload: str = "none", decode_tile_px: int | None = None,
                    quantize_on_load: bool = False) -> MemoryEstimate:
    """Bytes the device needs to generate at `width`×`height` with `window` chunks in flight.

    FP8 checkpoints are dequantised to `weight_dtype_bytes` on load (magi_engine.loading.fp8), so `fp8=True`
    costs the same as a bf16 checkpoint unless `keep_fp8=True` (the quantised linears of layers 1..L-2 at
    1 byte). `batch` counts guidance passes run together in one forward (1 when they run one after the
    other). The text encoder counts only if it stays on the device.

    The KV cache and the activations peak at different stages: a stage with n chunks in the window
    (1..window) keeps the clean chunks its newest chunk attends, `attention_span` − n of them (at most
    `cache_chunks`; default span cache_chunks + 1), beside the activations of n chunks. The estimate is
    the worst stage's sum: window 4 peaks full (one chunk cached), window 1 with four chunks cached.

    `offload` (magi_engine.config.DIT_OFFLOAD_MODES): "kv-cache" keeps the cache in CPU memory, so a stage
    holds three layers of its cached keys/values (the layer computing, the one before, the one copied) plus, while
    a finished chunk is encoded, that chunk's keys/values of every layer before they are copied out
    (measured: BENCHMARKS.md, "Fewer gigabytes");
    "layers" keeps two layers' weights on the device; "both" does both.

    `decode_tile_px`: the VAE decodes a chunk in tiles of this side (None: MAGI-1's own `tile_size`).

    `quantize_on_load` (RuntimeConfig.quantize_fp8 on a bf16 checkpoint): the model runs as a native FP8
    checkpoint does, and loading it peaks at the FP8 weights plus one dense layer and its calibration
    (`_quantize_on_load_bytes`, far below a generation step; the total is the larger of the two).
    """
    if window < 1 or cache_chunks < 0 or batch < 1:
        raise ConfigError(f"window must be ≥ 1, cache_chunks ≥ 0 and batch ≥ 1 (got {window}, {cache_chunks}, {batch})")
    tpc = _latent_tokens_per_chunk(dit, width, height)
    kv_on_host, layers_on_host = offload_parts(offload)
    fp8_layers = (fp8 and keep_fp8) or quantize_on_load
    weights = _weights_bytes(dit, weight_dtype_bytes, fp8_layers, layers_on_host=layers_on_host)
    text = int(text_encoder_params * text_encoder_bytes_per_param) if text_encoder_on_device else 0
    vae_cfg = VAEConfig()
    vae, vae_work = _vae_bytes(vae_cfg, vae_parameter_count(vae_cfg) if vae_params is None else vae_params,
                               vae_bytes_per_param, width, height, decode_tile_px) if include_vae else (0, 0)
    span = cache_chunks + 1 if attention_span is None else attention_span
    per_chunk = kv_bytes_per_chunk(dit, width=width, height=height, dtype_bytes=kv_dtype_bytes)
    stages = []
    for in_window in range(1, window + 1):
        cached = min(cache_chunks, max(0, span - in_window))
        kv_on_device = cached * per_chunk
        if kv_on_host:
            # The layer computing, the one the loop held before it (its name is rebound after the next is
            # taken) and the one being copied.
            kv_on_device = 3 * math.ceil(cached * per_chunk / dit.num_layers)
        stages.append((kv_on_device, _activation_bytes(dit, tpc, in_window, cached, activation_dtype_bytes, batch,
                                                       fp8_layers)))
    if kv_on_host:  # encoding a finished chunk alone (one chunk's tokens): its keys/values of every layer
        stages.append((per_chunk, _activation_bytes(dit, tpc, 0, 0, activation_dtype_bytes, batch, fp8_layers)))
    kv, act = max(stages, key=sum)
    # A chunk is decoded between steps, when no forward's activations are alive: the decode's working memory
    # counts only where it exceeds them.
    vae += max(0, vae_work - act)
    total = weights + text + vae + kv + act
    load = _quantize_on_load_bytes(dit, tpc, weights, weight_dtype_bytes, activation_dtype_bytes) \
        if quantize_on_load else 0
    return MemoryEstimate(weights, text, vae, kv, act, max(total, load), width, height, vae_work, load)


def offload_parts(offload: str) -> tuple[bool, bool]:
    """(KV cache on the host, layers on the host) of a DiT offload mode."""
    from magi_engine.config import DIT_OFFLOAD_MODES

    if offload not in DIT_OFFLOAD_MODES:
        raise ConfigError(f"DiT offload must be one of {DIT_OFFLOAD_MODES}, got {offload!r}")
    return offload in ("kv-cache", "both"), offload in ("layers", "both")


def offload_copy_bytes(dit: DiTConfig, *, width: int, height: int, cache_chunks: int, offload: str,
                       weight_dtype_bytes: int = 2, fp8: bool = False, keep_fp8: bool = False,
                       kv_dtype_bytes: int = 2, quantize_on_load: bool = False) -> int:
    """Bytes copied from CPU memory to the device in one forward of the worst stage under `offload`: the
    cost that ranks the modes that fit (the copies overlap compute, but fewer bytes hide more surely)."""
    kv_on_host, layers_on_host = offload_parts(offload)
    copied = 0
    if kv_on_host:
        copied += cache_chunks * kv_bytes_per_chunk(dit, width=width, height=height, dtype_bytes=kv_dtype_bytes)
    if layers_on_host:  # every layer, once
        _, outside_bytes = _layer_params_and_outside_bytes(dit, weight_dtype_bytes)
        copied += _weights_bytes(dit, weight_dtype_bytes, (fp8 and keep_fp8) or quantize_on_load) - outside_bytes
    return copied


@dataclass(frozen=True)
class OffloadChoice:
    """Which parts of the DiT's memory live on the host (magi_engine.config.DIT_OFFLOAD_MODES) and why."""

    mode: str
    reason: str
    estimate: MemoryEstimate


OFFLOAD_WORDS = {"none": "everything on {device}",
                 "kv-cache": "the KV cache in CPU memory, streamed to {device} a layer ahead",
                 "layers": "the DiT's layers in CPU memory, streamed to {device} a layer ahead",
                 "both": "the DiT's layers and the KV cache in CPU memory, streamed to {device} a layer ahead"}

#: The DiT offload modes whose peak was measured on a GPU beside this estimate (BENCHMARKS.md, "Fewer
#: gigabytes" and "The DiT in CPU memory"): mode -> (case, estimate GiB, peak measured GiB), the estimate
#: as the code computes it now. Automatic placement picks only these modes; one without a row runs only
#: when asked for, and its text says that its estimate was never checked.
OFFLOAD_MEASUREMENTS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "none": (("4.5B distill FP8, 720×720, window 1, H100", 15.03, 14.52),
             ("4.5B distill bf16, 832×480, window 4, 16 GiB cap, H100", 16.95, 15.41),
             ("24B distill FP8, 720×720, window 4, H100", 55.03, 54.87)),
    "layers": (("4.5B distill FP8, 720×720, window 1, 12 GiB cap, H100", 10.80, 10.18),),
    "both": (("4.5B distill FP8, 720×720, window 1, 12 GiB cap, H100", 5.05, 5.56),),
}


def offload_measured(mode: str) -> bool:
    """Whether `mode`'s memory was measured on a GPU (OFFLOAD_MEASUREMENTS)."""
    return mode in OFFLOAD_MEASUREMENTS


UNMEASURED_NOTE = "its memory was never measured on a GPU, so this estimate is unchecked"


def choose_dit_offload(requested: str | None, *, device: "torch.device | str", estimates: dict[str, MemoryEstimate],
                       copy_bytes: dict[str, int], free: int | None, headroom: float = 0.9) -> OffloadChoice:
    """`requested`, or of the measured modes (OFFLOAD_MEASUREMENTS) whose estimate fits `headroom` × `free`, the
    one that copies the fewest bytes a forward ("none" copies none). None fits: "both" (the caller's check_fits
    then explains). "both" needs the least of all, so leaving the unmeasured "kv-cache" out never turns a fit
    into a refusal; it only costs copies where "kv-cache" alone would have been enough."""
    kind = getattr(device, "type", str(device).split(":")[0])
    words = {mode: text.format(device=device) for mode, text in OFFLOAD_WORDS.items()}
    need = lambda mode: _gib_text(estimates[mode].total_bytes)  # noqa: E731
    if requested is not None:
        unchecked = "" if offload_measured(requested) else f" {UNMEASURED_NOTE[0].upper()}{UNMEASURED_NOTE[1:]}."
        return OffloadChoice(requested, f"DiT: {words[requested]} (as set; about {need(requested)} GiB).{unchecked}",
                             estimates[requested])
    if kind != "cuda" or free is None:
        return OffloadChoice("none", "", estimates["none"])
    budget = free * headroom
    fitting = [mode for mode in estimates if offload_measured(mode) and estimates[mode].total_bytes <= budget]
    if "none" in fitting:
        return OffloadChoice("none", "", estimates["none"])
    if not fitting:
        return OffloadChoice("both", f"DiT: {words['both']}, and still about {need('both')} GiB against "
                                     f"{_gib_text(free)} GiB free.", estimates["both"])
    mode = min(fitting, key=lambda m: copy_bytes[m])
    return OffloadChoice(mode, f"DiT: {words[mode]} (about {need(mode)} GiB), since everything on the GPU needs "
                               f"about {need('none')} GiB and {_gib_text(free)} GiB are free; it copies "
                               f"{_gib_text(copy_bytes[mode])} GiB a forward.", estimates[mode])


#: Working memory of one T5-XXL encoding on top of its weights (800 tokens, float32 islands), a round margin.
T5_WORK_BYTES = GIB // 2
TEXT_PLACEMENT_ORDER = ("gpu", "offload", "cpu")


@dataclass(frozen=True)
class TextPlacementChoice:
    """Where the text encoder goes, and the sentence that says why (shown to the user)."""

    placement: str
    reason: str


def choose_text_placement(requested: str | None, *, device: "torch.device | str", with_text: MemoryEstimate,
                          without_text: MemoryEstimate, free: int | None, headroom: float = 0.9
                          ) -> TextPlacementChoice:
    """The first of gpu, offload, cpu whose peak fits `headroom` × `free` (or `requested` if given).

    gpu: the estimate with the text encoder on the device. offload: the larger of the generation's peak
    without it and, while prompts are encoded, the weights, VAE and text encoder together. cpu: the
    generation's peak without it. None fits: "cpu", and the caller's check_fits says what does not fit.
    """
    kind = getattr(device, "type", str(device).split(":")[0])  # no torch here: the estimates cost none
    text_gib = _gib_text(with_text.text_encoder_bytes)
    if requested is not None:
        where = {"gpu": f"on {device}", "cpu": "on the CPU", "offload": f"offloaded, on {device} only while encoding"}
        return TextPlacementChoice(requested, f"T5 text encoder {where[requested]} (as set).")
    if kind != "cuda":
        return TextPlacementChoice("gpu", f"T5 text encoder on {device}, beside the model.")
    if free is None:
        return TextPlacementChoice("gpu", f"T5 text encoder on {device} (its free memory is unknown).")
    budget = free * headroom
    card = f"{_gib_text(free)} GiB free"
    if with_text.total_bytes <= budget:
        return TextPlacementChoice("gpu", f"T5 text encoder on {device}: everything fits in {card} "
                                          f"(about {_gib_text(with_text.total_bytes)} GiB).")
    encoding_peak = (without_text.weights_bytes + without_text.vae_bytes + with_text.text_encoder_bytes
                     + T5_WORK_BYTES)
    if max(without_text.total_bytes, encoding_peak) <= budget:
        return TextPlacementChoice("offload", f"T5 text encoder offloaded: its {text_gib} GiB visit {device} only "
                                              f"while new prompts are encoded, since all of it needs about "
                                              f"{_gib_text(with_text.total_bytes)} GiB and {card}.")
    return TextPlacementChoice("cpu", f"T5 text encoder on the CPU: {device} has {card}, too little to hold "
                                      f"its {text_gib} GiB even while encoding.")


@dataclass(frozen=True)
class MemoryTarget:
    """What a model's memory is fitted to when it loads: the size, the window and how many chunks a run makes
    at most (None: the model's own default; chunks None: as many as the KV cache holds). The studio passes the
    project's; `covers` says whether a plan made for this target also holds `other`."""

    width: int | None = None
    height: int | None = None
    window: int | None = None
    chunks: int | None = None

    def covers(self, other: "MemoryTarget") -> bool:
        def at_most(mine, theirs) -> bool:  # None is the model's default, the same on both sides
            return mine == theirs or (mine is not None and theirs is not None and theirs <= mine)

        chunks = self.chunks is None or (other.chunks is not None and other.chunks <= self.chunks)
        return (at_most(self.width, other.width) and at_most(self.height, other.height)
                and self.window == other.window and chunks)

    def describe(self) -> str:
        size = f"{self.width}×{self.height}" if self.width and self.height else "the model's size"
        window = f"window {self.window}" if self.window else "the model's window"
        chunks = f", {self.chunks} chunk{'s' * (self.chunks != 1)}" if self.chunks else ""
        return f"{size}, {window}{chunks}"


def fitted_window_and_cache(window: int, cache_chunks: int, chunks: int | None) -> tuple[int, int]:
    """(chunks in flight, clean chunks cached) of a run of at most `chunks` chunks: a shorter run never fills
    the window or the cache (None: any length)."""
    if chunks is None:
        return window, cache_chunks
    return max(1, min(window, chunks)), min(cache_chunks, max(0, chunks - 1))


@dataclass(frozen=True)
class MemoryPlan:
    """Where the text encoder and the DiT's memory go, and the VAE decode's budget, with the sentences that
    say why (magi_engine.magi_checkpoint loads by it; Settings shows it before a load)."""

    text: TextPlacementChoice
    offload: OffloadChoice
    #: Each DiT offload mode's estimate beside the chosen text encoder placement (the decode at its tiles).
    estimates: dict[str, MemoryEstimate]
    copy_bytes: dict[str, int]
    #: The VAE decode's working memory (`VideoVAE.decode(budget_bytes=)`); None: MAGI-1's own tiles.
    decode_budget: int | None
    decode_reason: str
    free: int | None

    @property
    def estimate(self) -> MemoryEstimate:
        return self.offload.estimate

    @property
    def dit_offload(self) -> str:
        return self.offload.mode

    def describe(self) -> str:
        return " ".join(r for r in (self.text.reason, self.offload.reason, self.decode_reason) if r)


def plan_memory(dit: DiTConfig, *, width: int, height: int, window: int, cache_chunks: int,
                device: "torch.device | str", free: int | None, chunks: int | None = None,
                weight_dtype_bytes: int = 2, fp8: bool = False, keep_fp8: bool = False,
                text_encoder_params: float = T5_XXL_ENCODER_PARAMS, text_encoder: str | None = None,
                dit_offload: str | None = None, vae: VAEConfig = VAEConfig(), headroom: float = 0.9,
                tile_px_of: "Callable[[int], int] | None" = None, quantize_on_load: bool = False) -> MemoryPlan:
    """The one decision of where a MAGI-1 model's parts go on `device` with `free` bytes (torch-free: the
    loader, `generate` and the Settings dialog all ask it).

    1. The text encoder: `text_encoder`, or the first of gpu, offload, cpu that fits (choose_text_placement).
    2. The DiT: `dit_offload`, or the measured mode that fits and copies least (choose_dit_offload).
    3. The VAE decode: MAGI-1's own tiles while the plan fits with them. When it does not, the decode gets what
       is left beside the DiT (`decode_budget`, in smaller tiles: `tile_px_of(budget)` names their side) when
       that makes it fit, or lets a mode that copies fewer bytes fit.
    `chunks`: a run makes at most this many chunks, so it never fills a longer window or cache.
    `quantize_on_load`: a bf16 checkpoint quantised to FP8 as it loads (estimate_memory).
    """
    window, cache_chunks = fitted_window_and_cache(window, cache_chunks, chunks)
    kind = getattr(device, "type", str(device).split(":")[0])

    def estimate(text_on_device: bool, offload: str, tile_px: int | None = None) -> MemoryEstimate:
        return estimate_memory(dit, width=width, height=height, window=window, cache_chunks=cache_chunks,
                               weight_dtype_bytes=weight_dtype_bytes, fp8=fp8, keep_fp8=keep_fp8,
                               text_encoder_params=text_encoder_params, text_encoder_on_device=text_on_device,
                               text_encoder_bytes_per_param=weight_dtype_bytes, offload=offload,
                               decode_tile_px=tile_px, quantize_on_load=quantize_on_load)

    from magi_engine.config import DIT_OFFLOAD_MODES

    text = choose_text_placement(text_encoder, device=device, with_text=estimate(True, "none"),
                                 without_text=estimate(False, "none"), free=free, headroom=headroom)
    on_device = text.placement == "gpu"
    copies = {mode: offload_copy_bytes(dit, width=width, height=height, cache_chunks=cache_chunks, offload=mode,
                                       weight_dtype_bytes=weight_dtype_bytes, fp8=fp8, keep_fp8=keep_fp8,
                                       quantize_on_load=quantize_on_load)
              for mode in DIT_OFFLOAD_MODES}
    estimates = {mode: estimate(on_device, mode) for mode in DIT_OFFLOAD_MODES}
    offload = choose_dit_offload(dit_offload, device=device, estimates=estimates, copy_bytes=copies, free=free,
                                 headroom=headroom)
    plan = MemoryPlan(text, offload, estimates, copies, None, "", free)
    if kind != "cuda" or free is None or (offload.mode == "none" and offload.estimate.total_bytes <= headroom * free):
        return plan
    # The decode in its smallest even tiles (a quarter overlap of whole latent pixels: 4 latent pixels a side).
    smallest = vae.spatial_factor * 4
    small = {mode: estimate(on_device, mode, smallest) for mode in DIT_OFFLOAD_MODES}
    tiled = choose_dit_offload(dit_offload, device=device, estimates=small, copy_bytes=copies, free=free,
                               headroom=headroom)
    fits = lambda choice: choice.estimate.total_bytes <= headroom * free  # noqa: E731
    if not fits(tiled) or (fits(offload) and copies[offload.mode] <= copies[tiled.mode]):
        return plan
    pixels = decode_pixels_bytes(vae, width, height)
    budget = int(headroom * free - tiled.estimate.resident_bytes - pixels)
    tile_px = tile_px_of(budget) if tile_px_of is not None else None
    if tile_px is not None:
        small = {mode: estimate(on_device, mode, tile_px) for mode in DIT_OFFLOAD_MODES}
        tiled = dataclasses.replace(tiled, estimate=small[tiled.mode])
    tiles = f"{tile_px}-px tiles" if tile_px else "smaller tiles"
    reason = (f"VAE decode in {tiles} (MAGI-1's own are {vae.tile_size} px), within the {_gib_text(budget)} GiB "
              f"left beside the DiT.")
    return MemoryPlan(text, tiled, small, copies, budget, reason, free)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def device_memory_bytes(device: str | torch.device) -> int | None:
    """Bytes a new model could use on `device` now, or None if unknown.

    cuda: free memory reported by the driver plus what PyTorch holds in its cache but no tensor uses
    (reserved − allocated; the driver counts that as used although torch will hand it out again), within
    the process's memory fraction if one is set.
    cpu: MemAvailable from /proc/meminfo (os.sysconf elsewhere). mps: Metal's recommended working set
    minus what is already allocated.
    """
    import torch

    device = torch.device(device)
    try:
        if device.type == "cuda":
            if not torch.cuda.is_available():
                return None
            index = device.index if device.index is not None else torch.cuda.current_device()
            free, total = torch.cuda.mem_get_info(index)
            cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
            available = int(free + max(0, cached))
            # A process capped by torch.cuda.set_per_process_memory_fraction gets no more than its share.
            fraction_of = getattr(torch.cuda, "get_per_process_memory_fraction", None)
            fraction = fraction_of(index) if fraction_of is not None else 1.0
            if fraction < 1.0:
                available = min(available, int(fraction * total) - torch.cuda.memory_allocated(index))
            return max(0, available)
        if device.type == "cpu":
            return _meminfo_available()
        if device.type == "mps":
            mps = getattr(torch, "mps", None)
            if mps is None or not hasattr(mps, "recommended_max_memory") or not torch.backends.mps.is_available():
                return None
            used = mps.current_allocated_memory() if hasattr(mps, "current_allocated_memory") else 0
            return max(0, int(mps.recommended_max_memory()) - int(used))
    except (RuntimeError, AssertionError) as exc:  # no driver, device gone, backend not built
        log.warning("could not query memory of %s: %s", device, exc)
    return None


def _gib_text(nbytes: float) -> str:
    value = nbytes / GIB
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def check_fits(estimate: MemoryEstimate, device: str | torch.device, *, label: str = "The model",
               headroom: float = 0.9, suggestion: str = "Choose a smaller model (4.5B-distill) or a smaller resolution.",
               available_bytes: int | None = None) -> int | None:
    """Raise OutOfMemory if `estimate` exceeds `headroom` × the device's free memory.

    `label` starts the sentence ("The 24B base model"). Returns the free bytes used for the decision, or
    None (with a log warning) when the device cannot be asked, in which case nothing is raised.
    """
    free = available_bytes if available_bytes is not None else device_memory_bytes(device)
    if free is None:
        log.warning("free memory of %s is unknown; not checking whether %s fits", device, label)
        return None
    if estimate.total_bytes <= free * headroom:
        return free
    kind = str(device).split(":")[0]
    where = {"cuda": "this GPU has {} GiB free", "cpu": "this computer has {} GiB of RAM free",
             "mps": "this Mac's GPU has {} GiB available"}.get(kind, f"device {device} has {{}} GiB free")
    at = f" at {estimate.width}×{estimate.height}" if estimate.width and estimate.height else ""
    raise OutOfMemory(f"{label}{at} needs about {_gib_text(estimate.total_bytes)} GiB; "
                      f"{where.format(_gib_text(free))}. {suggestion}")
