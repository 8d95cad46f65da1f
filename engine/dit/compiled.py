"""Compiled transformer layers and the runtime choices for a device (compile, native FP8).

Between the matmuls and attention, a MAGI-1 layer spends about a quarter of a step on memory-bound
work: float32 LayerNorms, gates, residual adds, RoPE, casts (issue 18's profile of the 4.5B on an
H100). torch.compile fuses it. Only the two dense parts of each layer are compiled
(`TransformerLayer.dense_in` / `dense_out`); block-causal attention stays an eager per-chunk loop,
because its Python control flow follows the layout, which changes every stage. The dense parts see
only tensors whose token count changes with the window (chunks in the window, text length), and
those dimensions are marked dynamic, so one graph serves every step, every window size and every
layer (the layers share their code; their weights are graph inputs). No CUDA graphs: the shapes move.

Compiled output equals eager to bf16 rounding (fused float32 math rounds differently, not more).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch

from magi_engine.config import RuntimeConfig
from magi_engine.dit.fp8_linear import native_fp8_supported
from magi_engine.errors import ConfigError

log = logging.getLogger(__name__)

#: Compiled layers are the default on CUDA (measured faster on an H100: BENCHMARKS.md, "Compiled layers").
COMPILE_BY_DEFAULT_ON_CUDA = True

#: FP8 attention where it can run, unless turned off: with k and v centred it is as accurate as bf16 attention on the
#: inputs that had made it 39% off, and the FP8 4.5B's chunk 12% faster on an H100 (BENCHMARKS.md, "k and v centred on
#: their token means").
FP8_ATTENTION_BY_DEFAULT = True
#: The kernels it runs on by default, FlashAttention 3 first where it is installed (its FP8 kernel ran the 4.5B's
#: attention 1.12x as fast as cuDNN's on an H100: BENCHMARKS.md, "FlashAttention 3"). Our Triton kernel only when
#: asked for: no faster than bf16 attention.
FP8_ATTENTION_KERNELS_BY_DEFAULT = ("fa3", "cudnn")

#: FlashAttention where it can run, unless turned off: FlashAttention 4's kernel ran the 4.5B's attention 1.145x as
#: fast as SDPA's cuDNN kernel on an H100 (BENCHMARKS.md, "FlashAttention 4 and fused kernels"), FlashAttention 3's
#: bf16 kernel 1.21x (BENCHMARKS.md, "FlashAttention 3").
FLASH_ATTENTION_BY_DEFAULT = True

#: The fused Triton kernels (magi_engine.dit.fused) where they can run, unless turned off: measured faster end to end
#: on an H100 (benchmarks/run_gpu_fusions.sh; BENCHMARKS.md,
#: "FlashAttention 4 and fused kernels"), within bf16 rounding of compile's.
FUSED_KERNELS_BY_DEFAULT = True

#: Model dtypes whose GELU MLPs take the GELU epilogue with the fused kernels (magi_engine.dit.gelu_epilogue): its
#: tanh form is as far from the exact GELU as bf16 rounding is (the same error against eager bf16, BENCHMARKS.md).
HALF_DTYPES = (torch.bfloat16, torch.float16)

#: The dimensions of each dense part's arguments that change with the window: tokens, chunks, text length.
DENSE_IN_DYNAMIC = ((1,), (1,), (0,), (1, 2))  # x [N, S, D], condition [N, chunks, C], angles [S, A], text
DENSE_OUT_DYNAMIC = ((1,), (1,), (1,), (1,), ())  # x, attended (self | cross), gate_attn, gate_mlp, its offset


@dataclass(frozen=True)
class RuntimeChoice:
    """What the engine does on one device, resolved from a RuntimeConfig."""

    compile_layers: bool
    compile_mode: str
    native_fp8: bool
    #: The FP8 attention kernel of the FP8 layers (magi_engine.dit.fp8_attention: "cudnn", "fa3" or "triton"); None: SDPA.
    fp8_attention: str | None = None
    #: Each layer's norm + gate + residual and QK-norm + RoPE as fused Triton kernels (magi_engine.dit.fused).
    fused_kernels: bool = False
    #: A bf16 MAGI-1 checkpoint is quantised to native FP8 as it loads (magi_engine.dit.fp8_quantize).
    quantize_fp8: bool = False
    #: bf16 self-attention through FlashAttention 4 (or 3) in the layers without FP8 attention (dit.flash_attention).
    flash_attention: bool = False


def resolve_runtime(runtime: RuntimeConfig | None, device: torch.device | str) -> RuntimeChoice:
    """Fill in the settings left to the engine (None) for `device`; refuse native FP8, and quantising to it on
    load, where it cannot run."""
    runtime = runtime or RuntimeConfig()
    device = torch.device(device)
    compile_layers = runtime.compile_layers
    if compile_layers is None:
        compile_layers = device.type == "cuda" and COMPILE_BY_DEFAULT_ON_CUDA
    native_fp8 = runtime.native_fp8
    supported = native_fp8_supported(device)
    if native_fp8 is None:
        native_fp8 = supported
    elif native_fp8 and not supported:
        raise ConfigError(f"Native FP8 needs a CUDA GPU of compute capability 8.9 or later; {device} is not one. "
                          "Leave it to the engine, which then dequantises FP8 checkpoints.")
    if runtime.quantize_fp8 and not supported:
        raise ConfigError(f"Quantising to FP8 on load needs a CUDA GPU of compute capability 8.9 or later; {device} "
                          "is not one. Turn it off to load the checkpoint in bf16.")
    if runtime.quantize_fp8 and not native_fp8:
        raise ConfigError("Quantising to FP8 on load makes native FP8 linears, and native FP8 is turned off. "
                          "Turn one of the two settings off.")
    return RuntimeChoice(bool(compile_layers), runtime.compile_mode, bool(native_fp8),
                         _fp8_attention(runtime.fp8_attention, bool(native_fp8), device),
                         _fused_kernels(runtime.fused_kernels, device), runtime.quantize_fp8,
                         _flash_attention(runtime.flash_attention, device))


def _flash_attention(wanted: bool | None, device: torch.device) -> bool:
    """FlashAttention runs on Hopper GPUs with flash-attn-4 or FlashAttention 3's Hopper build; elsewhere SDPA."""
    from magi_engine.dit.flash_attention import flash_attention_supported

    return _wanted_where_supported(
        wanted, FLASH_ATTENTION_BY_DEFAULT, lambda: flash_attention_supported(device),
        f"FlashAttention needs a Hopper GPU (compute capability 9.x) with flash-attn-4 or FlashAttention 3 installed; "
        f"{device} is not one or lacks it. Leave it to the engine, which then runs attention through SDPA.")


def _fused_kernels(wanted: bool | None, device: torch.device) -> bool:
    """The fused kernels run on CUDA with Triton only; elsewhere (CPU, MPS) the layers' torch expressions."""
    from magi_engine.dit.fused import fused_kernels_supported

    return _wanted_where_supported(
        wanted, FUSED_KERNELS_BY_DEFAULT, lambda: fused_kernels_supported(device),
        f"The fused kernels need a CUDA GPU with Triton installed (and torch 2.6 or later); {device} is not one. "
        "Leave it to the engine, which then runs the layers' torch code.")


def _wanted_where_supported(wanted: bool | None, by_default: bool, supported: Callable[[], bool],
                            refusal: str) -> bool:
    """An optional kernel's setting: off when turned off (or, left to the engine, not on by default); on where
    `supported()`; asked for where it is not, refused with `refusal`; left to the engine there, off."""
    if wanted is False or (wanted is None and not by_default):
        return False
    if supported():
        return True
    if wanted:
        raise ConfigError(refusal)
    return False


def _fp8_attention(wanted: bool | None, native_fp8: bool, device: torch.device) -> str | None:
    """FP8 attention runs with native FP8 only, where a kernel for it exists (None: off)."""
    if wanted is False or (wanted is None and not FP8_ATTENTION_BY_DEFAULT):
        return None
    if not native_fp8:
        if wanted:
            raise ConfigError("FP8 attention runs only with native FP8 (the FP8 layers of an FP8 checkpoint on a "
                              "GPU with FP8 matmuls); this device or these settings dequantise FP8 checkpoints.")
        return None
    from magi_engine.dit.fp8_attention import fp8_attention_backend

    backend = fp8_attention_backend(device)
    if wanted is None and backend not in FP8_ATTENTION_KERNELS_BY_DEFAULT:
        return None
    if backend is None and wanted:
        raise ConfigError(f"FP8 attention needs a Hopper GPU (compute capability 9.x) with the cuDNN frontend "
                          f"(nvidia-cudnn-frontend), FlashAttention 3 or Triton installed; {device} has none. Leave "
                          "it to the engine, which then runs attention in bf16.")
    return backend


def _marking_dynamic(fn: Callable, dynamic_dims: tuple[tuple[int, ...], ...]) -> Callable:
    def run(*args):
        for arg, dims in zip(args, dynamic_dims):
            for dim in dims:
                torch._dynamo.maybe_mark_dynamic(arg, dim)
        return fn(*args)

    return run


def compile_layers(dit: torch.nn.Module, *, mode: str = "default", backend: str = "inductor") -> torch.nn.Module:
    """Compile the dense parts of every layer of `dit` (in place). `backend="eager"` traces without
    generating code: the wiring, cheaply (tests)."""
    options = {"backend": backend, "fullgraph": True, "dynamic": None}
    if backend == "inductor":
        options["mode"] = mode

    def compile_part(dims):
        return lambda fn: _marking_dynamic(torch.compile(fn, **options), dims)

    for layer in dit.layers:
        layer.compile_dense(lambda fn: compile_part(DENSE_IN_DYNAMIC if fn.__name__ == "dense_in"
                                                    else DENSE_OUT_DYNAMIC)(fn))
    log.info("compiled the dense parts of %d layers (%s, %s)", len(dit.layers), backend, mode)
    return dit


def uncompile_layers(dit: torch.nn.Module) -> torch.nn.Module:
    for layer in dit.layers:
        layer.compile_dense(None)
    return dit


def fp8_layer_indices(dit: torch.nn.Module) -> list[int]:
    """The layers whose attention projections are native FP8 (Fp8Linear): 1..L-2 of an FP8 checkpoint."""
    from magi_engine.dit.fp8_linear import Fp8Linear

    return [i for i, layer in enumerate(dit.layers) if isinstance(layer.attn.to_q, Fp8Linear)]


def use_fp8_attention(dit: torch.nn.Module, backend: str | None, *, compiled: bool = True,
                      layers: list[int] | None = None) -> torch.nn.Module:
    """Run the self-attention of `layers` (default: the native FP8 layers) in FP8 with `backend`; None undoes it.
    `compiled`: quantise q, k, v and widen the output through torch.compile (one pass each instead of several)."""
    indices = fp8_layer_indices(dit) if layers is None else list(layers)
    attention = None
    if backend is not None:
        from magi_engine.dit.fp8_attention import (Fp8BlockCausalAttention, quantize_centred, quantize_per_tensor,
                                                   widen_e4m3)

        helpers = [quantize_per_tensor, quantize_centred, widen_e4m3]
        if compiled:
            helpers = [torch.compile(fn, dynamic=True, fullgraph=True) for fn in helpers]
        attention = Fp8BlockCausalAttention(backend, *helpers)
    for i in indices:
        dit.layers[i].attn.self_attention = attention
    if backend is not None:
        log.info("FP8 attention (%s) in %d of %d layers", backend, len(indices), len(dit.layers))
    return dit


def use_flash_attention(dit: torch.nn.Module, on: bool, *, write=None) -> torch.nn.Module:
    """Run the bf16 self- and cross-attention of every layer that has no other kernel through FlashAttention (4, or 3)
    (on), or through SDPA again (off). `write`: a stand-in for the kernel (FlashBlockCausalAttention; tests)."""
    from magi_engine.dit.flash_attention import FlashBlockCausalAttention

    attention = FlashBlockCausalAttention(write) if on else None
    count = 0
    for layer in dit.layers:
        current = layer.attn.self_attention
        if current is None or isinstance(current, FlashBlockCausalAttention):
            layer.attn.self_attention = attention
            count += 1
    if on:
        from magi_engine.dit.flash_attention import flash_attention_package

        log.info("FlashAttention (%s) in %d of %d layers", flash_attention_package(), count, len(dit.layers))
    return dit


def apply_runtime(dit: torch.nn.Module, choice: RuntimeChoice) -> torch.nn.Module:
    """FP8 attention, fused kernels and compiled layers as the choice says (native FP8 is a loading choice:
    magi_engine.magi_checkpoint)."""
    if choice.fp8_attention is not None:
        use_fp8_attention(dit, choice.fp8_attention, compiled=choice.compile_layers)
    if choice.flash_attention:  # the layers FP8 attention left to SDPA
        use_flash_attention(dit, True)
    if choice.fused_kernels:  # before compiling: the compiled graphs call the kernels
        from magi_engine.dit.fused import use_fused_kernels
        from magi_engine.dit.gelu_epilogue import use_gelu_epilogue

        use_fused_kernels(dit, True)
        if next(dit.parameters()).dtype in HALF_DTYPES:  # float32 keeps the exact GELU (the conformance dtype)
            use_gelu_epilogue(dit, True)
    return compile_layers(dit, mode=choice.compile_mode) if choice.compile_layers else dit


def compile_counts() -> dict[str, int]:
    """torch._dynamo's count of distinct graphs compiled so far (flat once steps stop recompiling)."""
    from torch._dynamo.utils import counters

    return {"unique_graphs": int(counters["stats"]["unique_graphs"])}
