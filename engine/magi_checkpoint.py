"""Loading the official MAGI-1 checkpoints (local folder or hub snapshot) into a ModelBundle.

Accepted layouts (shared/reference/magi1.md §2.9): the hub snapshot root (`ckpt/magi/<variant>/
inference_weight{,.distill,.fp8.distill}`, `ckpt/vae`, `ckpt/t5/t5-v1_1-xxl`), a variant folder, or an
`inference_weight*` folder itself (then the VAE and T5 are searched next to it). The DiT is built on
the meta device and filled tensor by tensor straight into the target device and dtype; every key and
shape is checked against the configuration before a single tensor is read.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

import torch

from magi_engine.bundle import ModelBundle
from magi_engine.dit.model import MagiDiT, is_float32_island
from magi_engine.dit.official_keys import expected_official_shapes, fp8_layers_in, official_key_plan
from magi_engine.errors import CheckpointError, OutOfMemory
from magi_engine.loading import CheckpointReader, LazyTensor, check_fits, estimate_memory, load_into_module
from magi_engine.model_files import MagiCheckpoint
from magi_engine.variants import T5_XXL_ENCODER_PARAMS, MagiVariant
from magi_engine.vae import VideoVAE, fit_latent_rgb_projection
from magi_engine.vae.config import VAEConfig

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
#: MAGI-1's smaller standard size: a card too small for a model's default size may still load for it.
SMALLER_SIZE = (832, 480)


def check_official_keys(reader: CheckpointReader, expected: dict[str, tuple[int, ...]], what: str) -> None:
    present = set(reader.keys())
    missing = sorted(set(expected) - present)
    unexpected = sorted(present - set(expected))
    mismatched = [f"{k} (model {list(expected[k])} vs checkpoint {list(reader.shape(k))})"
                  for k in sorted(present & set(expected)) if tuple(reader.shape(k)) != expected[k]]
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if items:
            shown = ", ".join(items[:8]) + (f" and {len(items) - 8} more" if len(items) > 8 else "")
            problems.append(f"{len(items)} {title}: {shown}")
    if problems:
        raise CheckpointError(f"{what} does not match the selected model — " + "; ".join(problems) +
                              ". Check that the folder holds the complete variant you chose.")


def load_magi_dit(weights: Path, variant: MagiVariant, device: torch.device, dtype: torch.dtype, *,
                  native_fp8: bool = False, quantize_fp8: bool = False, size: tuple[int, int] | None = None,
                  compute_device: torch.device | None = None) -> MagiDiT:
    """The DiT of an official checkpoint folder. FP8 checkpoints are dequantised to `dtype`, or with
    `native_fp8` (a GPU with FP8 matmuls) keep their quantised linears FP8 (magi_engine.dit.fp8_linear).
    `quantize_fp8`: a bf16 checkpoint has the same linears quantised to native FP8 as it loads, calibrated at
    `size` (width, height; default: the variant's) on `compute_device` (default: `device`), one layer at a time
    (magi_engine.dit.fp8_quantize); the model's `fp8_quantization` says what was done (None otherwise)."""
    from magi_engine.dit.fp8_linear import FP8_SCALE_BUFFERS, fp8_module_names, use_fp8_linears

    with CheckpointReader(weights) as reader:
        fp8_layers = fp8_layers_in(reader.keys())
        if bool(fp8_layers) != variant.fp8:
            kind = "FP8" if fp8_layers else "non-FP8"
            raise CheckpointError(f"{weights} holds a {kind} checkpoint, but {variant.label} was selected.")
        config = variant.dit
        check_official_keys(reader, expected_official_shapes(config, fp8_layers), f"The DiT checkpoint in {weights}")
        native_fp8 = native_fp8 and bool(fp8_layers)
        if quantize_fp8 and fp8_layers:
            log.info("%s is an FP8 checkpoint: its own FP8 weights and scales are used, nothing is quantised on load",
                     variant.label)
        quantize_fp8 = quantize_fp8 and not fp8_layers
        with torch.device("meta"):
            dit = MagiDiT(config)
            if native_fp8:
                use_fp8_linears(dit, fp8_layers)
        native_shapes = {k: tuple(v.shape) for k, v in dit.state_dict().items()}
        fp8_weights = {f"{m}.weight" for m in fp8_module_names(fp8_layers)} if native_fp8 else set()
        fp8_scales = {f"{m}.{b}" for m in fp8_module_names(fp8_layers) for b in FP8_SCALE_BUFFERS} if native_fp8 else set()

        def lazy(name: str, source) -> LazyTensor:
            return LazyTensor(native_shapes[name], lambda: source.build(reader.get))

        def dtype_for(key: str) -> torch.dtype:
            if key in fp8_weights:
                return torch.float8_e4m3fn
            return torch.float32 if key in fp8_scales or is_float32_island(key) else dtype

        plan = official_key_plan(config, fp8_layers, native_fp8=native_fp8)
        tensors = {name: lazy(name, source) for name, source in plan.items()}
        what = f"the DiT checkpoint in {weights}"
        if quantize_fp8:
            from magi_engine.dit.fp8_quantize import load_quantized

            dit.fp8_quantization = load_quantized(dit, tensors, fp8_calibration(variant, size), device=device,
                                                  compute_device=compute_device, dtype_for=dtype_for, what=what)
        else:
            load_into_module(dit, tensors, device=device, what=what, dtype_for=dtype_for)
    if native_fp8:
        log.info("%s: %d layers keep their FP8 linears (native FP8 matmuls)", variant.label, len(fp8_layers))
    if quantize_fp8:
        log.info("%s: bf16 checkpoint quantised to FP8 on load in %d layers (native FP8 matmuls)", variant.label,
                 len(dit.fp8_quantization.layers))
    return dit.eval()


def fp8_calibration(variant: MagiVariant, size: tuple[int, int] | None = None):
    """How quantising `variant` on load calibrates (magi_engine.dit.fp8_quantize): at `size` (default: the
    variant's), with the step size of its default schedule for a distilled model."""
    from magi_engine.dit.fp8_quantize import Fp8Calibration
    from magi_engine.sampler.schedule import shortcut_step_sizes

    width, height = size or (variant.width, variant.height)
    sampling = variant.sampling
    step_size = shortcut_step_sizes(sampling.num_steps, sampling.shortcut_mode)[0] if variant.dit.distilled else None
    return Fp8Calibration(width, height, step_size=step_size)


def load_magi_vae(folder: Path, device: torch.device, dtype: torch.dtype) -> VideoVAE:
    try:
        config = VAEConfig.from_official(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"The VAE config {folder / 'config.json'} cannot be read ({exc}).") from None
    with torch.device("meta"):
        vae = VideoVAE(config)
    with CheckpointReader(folder) as reader:
        load_into_module(vae, reader, device=device, dtype_for=lambda key: dtype, what=f"the VAE in {folder}")
    return vae.eval()


def _parameter_count(folder: Path) -> int | None:
    """Parameters stored in a folder's safetensors files, from their headers alone (None if unreadable)."""
    try:
        with CheckpointReader(folder) as reader:
            return sum(math.prod(reader.shape(key)) for key in reader.keys())
    except CheckpointError:
        return None


def magi_memory_estimate(checkpoint: MagiCheckpoint, dtype: torch.dtype, *, width: int, height: int,
                         window: int | None = None, native_fp8: bool = False, text_on_device: bool = True,
                         offload: str = "none", quantize_fp8: bool = False):
    """The loader's memory estimate for a checkpoint at a size (magi_engine.loading.memory.estimate_memory);
    `offload`: what of the DiT lives in CPU memory (magi_engine.config.DIT_OFFLOAD_MODES); `quantize_fp8`: a
    bf16 checkpoint is quantised to FP8 on load."""
    variant = checkpoint.variant
    t5_params = (_parameter_count(checkpoint.t5) if checkpoint.t5 else None) or T5_XXL_ENCODER_PARAMS
    return estimate_memory(variant.dit, width=width, height=height, window=window or variant.sampling.window,
                           cache_chunks=variant.sampling.cache_chunks, weight_dtype_bytes=torch.finfo(dtype).bits // 8,
                           fp8=variant.fp8, keep_fp8=native_fp8, text_encoder_params=t5_params,
                           text_encoder_bytes_per_param=torch.finfo(dtype).bits // 8,
                           text_encoder_on_device=text_on_device, offload=offload,
                           quantize_on_load=quantize_fp8 and not variant.fp8)


def plan_checkpoint_memory(checkpoint: MagiCheckpoint, dtype: torch.dtype, *, device: torch.device, free: int | None,
                           width: int | None = None, height: int | None = None, window: int | None = None,
                           chunks: int | None = None, native_fp8: bool = False, text_encoder: str | None = None,
                           dit_offload: str | None = None, quantize_fp8: bool = False):
    """The memory plan for this checkpoint on `device` (magi_engine.loading.memory.plan_memory): where T5 and the
    DiT's memory go and the VAE decode's budget, for a run at `width`×`height` (the variant's size by default);
    `quantize_fp8`: a bf16 checkpoint is quantised to FP8 on load."""
    from magi_engine.loading.memory import plan_memory
    from magi_engine.vae.config import VAEConfig
    from magi_engine.vae.tiling import budget_tile_px

    variant = checkpoint.variant
    width, height = width or variant.width, height or variant.height
    t5_params = (_parameter_count(checkpoint.t5) if checkpoint.t5 else None) or T5_XXL_ENCODER_PARAMS
    vae = VAEConfig()  # the released VAE, as the estimate counts it
    return plan_memory(variant.dit, width=width, height=height, window=window or variant.sampling.window,
                       cache_chunks=variant.sampling.cache_chunks, chunks=chunks, device=device, free=free,
                       weight_dtype_bytes=torch.finfo(dtype).bits // 8, fp8=variant.fp8, keep_fp8=native_fp8,
                       text_encoder_params=t5_params, text_encoder=text_encoder, dit_offload=dit_offload, vae=vae,
                       tile_px_of=lambda budget: budget_tile_px(vae, height, width, budget),
                       quantize_on_load=quantize_fp8 and not variant.fp8)


def choose_offload(checkpoint: MagiCheckpoint, dtype: torch.dtype, requested: str | None, *, device: torch.device,
                   width: int, height: int, window: int | None, native_fp8: bool, text_on_device: bool,
                   free: int | None, quantize_fp8: bool = False):
    """The DiT offload mode alone for this checkpoint on `device`, beside a text encoder placed as said and with
    the VAE in MAGI-1's own tiles (magi_engine.loading.memory.choose_dit_offload; the loader's whole plan is
    plan_checkpoint_memory)."""
    from magi_engine.loading.memory import choose_dit_offload

    plan = plan_checkpoint_memory(checkpoint, dtype, device=device, free=None, width=width, height=height,
                                  window=window, native_fp8=native_fp8, text_encoder="gpu" if text_on_device else "cpu",
                                  quantize_fp8=quantize_fp8)
    return choose_dit_offload(requested, device=device, estimates=plan.estimates, copy_bytes=plan.copy_bytes, free=free)


def load_magi_checkpoint(checkpoint: MagiCheckpoint, device: torch.device, dtype: torch.dtype, *,
                         width: int | None = None, height: int | None = None, window: int | None = None,
                         text_on_cpu: bool = False, progress: Progress | None = None,
                         native_fp8: bool = False, text_encoder: str | None = None,
                         dit_offload: str | None = None, chunks: int | None = None,
                         quantize_fp8: bool = False) -> ModelBundle:
    """Load DiT, VAE and T5 onto `device`; `native_fp8`: an FP8 checkpoint keeps its quantised linears FP8
    (a GPU with FP8 matmuls); `quantize_fp8`: a bf16 checkpoint is quantised to FP8 as it loads, calibrated at
    `width`×`height` (magi_engine.dit.fp8_quantize). `text_encoder` places T5
    (magi_engine.config.TEXT_ENCODER_PLACEMENTS: on the GPU, on the CPU in float32, or offloaded); None picks the
    first that fits the device's free memory
    (`text_on_cpu` asks for "cpu"). `dit_offload` keeps the KV cache and/or the DiT's layers in pinned CPU
    memory (magi_engine.config.DIT_OFFLOAD_MODES); None picks, of the modes that fit beside that text encoder,
    the one that copies the least; `chunks`: a run makes at most this many. Where the plan fits only with the VAE
    decoding in smaller tiles, the bundle's `vae_decode_budget` holds the decode to what is left. The bundle's
    `memory_plan` says what was chosen and why, `dit_offload` which mode runs."""
    from magi_engine.dit.offload import stream_layers
    from magi_engine.loading.memory import MemoryTarget, device_memory_bytes, offload_parts
    from magi_engine.text import SpecialTokens, T5TextEncoder

    variant = checkpoint.variant
    width, height = width or variant.width, height or variant.height
    if checkpoint.vae is None:
        raise CheckpointError(f"No VAE found next to {checkpoint.weights} (expected ckpt/vae/config.json). "
                              "Download the VAE folder as well.")
    if checkpoint.t5 is None:
        raise CheckpointError(f"No T5 text encoder found next to {checkpoint.weights} "
                              "(expected ckpt/t5/t5-v1_1-xxl). Download the T5 folder as well.")

    free = device_memory_bytes(device)
    plan = plan_checkpoint_memory(checkpoint, dtype, device=device, free=free, width=width, height=height,
                                  window=window, chunks=chunks, native_fp8=native_fp8,
                                  text_encoder="cpu" if text_on_cpu and text_encoder is None else text_encoder,
                                  dit_offload=dit_offload, quantize_fp8=quantize_fp8)
    placement, offload = plan.text, plan.offload
    for reason in (placement.reason, offload.reason, plan.decode_reason):
        if reason:
            log.info("%s", reason)
    plan_text, decode_budget = plan.describe(), plan.decode_budget
    try:
        check_fits(offload.estimate, device, label=variant.label, available_bytes=free,
                   suggestion="Choose a distilled or 4.5B variant, a smaller size, or a GPU with more memory.")
    except OutOfMemory:
        # Too little for the model's own size may still be enough for MAGI-1's smaller one (832x480):
        # load, and say which size fits; a larger request then fails with the engine's out-of-memory sentence.
        smaller = plan_checkpoint_memory(checkpoint, dtype, device=device, free=free, width=SMALLER_SIZE[0],
                                         height=SMALLER_SIZE[1], window=window, chunks=chunks, native_fp8=native_fp8,
                                         text_encoder=placement.placement, dit_offload=offload.mode,
                                         quantize_fp8=quantize_fp8)
        if SMALLER_SIZE[0] * SMALLER_SIZE[1] >= width * height or free is None \
                or smaller.estimate.total_bytes > 0.9 * free:
            raise
        decode_budget = smaller.decode_budget
        plan_text = f"{plan_text} It fits at {SMALLER_SIZE[0]}x{SMALLER_SIZE[1]}, not at {width}x{height}."
    report = progress or (lambda message, fraction: None)
    report("Loading the diffusion transformer", 0.0)
    kv_on_host, layers_on_host = offload_parts(offload.mode)
    dit = load_magi_dit(checkpoint.weights, variant, torch.device("cpu") if layers_on_host else device, dtype,
                        native_fp8=native_fp8, quantize_fp8=quantize_fp8, size=(width, height), compute_device=device)
    if layers_on_host:
        stream_layers(dit, device)
    dit.kv_cache_on_host = kv_on_host
    report("Loading the VAE", 0.6)
    vae = load_magi_vae(checkpoint.vae, device, dtype)
    report("Loading the T5 text encoder", 0.7)
    tokens = SpecialTokens.load(checkpoint.special_tokens) if checkpoint.special_tokens else None
    if tokens is None:
        log.warning("special_tokens.npz not found near %s: prompts go without MAGI-1's quality and duration tokens",
                    checkpoint.weights)
    if placement.placement == "cpu":  # float32, unpadded: only the valid rows cost CPU time
        t5 = T5TextEncoder.from_folder(checkpoint.t5, device="cpu", dtype=torch.float32, special_tokens=tokens,
                                       pad_to_max_length=False)
    elif placement.placement == "offload":
        t5 = T5TextEncoder.from_folder(checkpoint.t5, device="cpu", dtype=dtype, special_tokens=tokens,
                                       offload_to=device)
    else:
        t5 = T5TextEncoder.from_folder(checkpoint.t5, device=device, dtype=dtype, special_tokens=tokens)
    report("Fitting the preview colours", 0.95)
    preview = fit_latent_rgb_projection(vae, device=device, dtype=dtype)
    report("Ready", 1.0)
    return ModelBundle(name=variant.name, label=variant.label, dit=dit, vae=vae, text_encoder=t5,
                       sampling=variant.sampling, width=variant.width, height=variant.height, preview=preview,
                       source=str(checkpoint.weights), memory_plan=plan_text, dit_offload=offload.mode,
                       vae_decode_budget=decode_budget,
                       # Only a plan made for a GPU's known free memory chose anything worth re-planning for.
                       memory_target=MemoryTarget(width, height, window, chunks)
                       if device.type == "cuda" and free is not None else None)
