"""bf16 block-causal self-attention through FlashAttention 4 (or 3) on Hopper GPUs (issue 18).

torch's scaled_dot_product_attention runs cuDNN's Hopper flash kernel for the engine's per-chunk spans: 586
TFLOP/s on the 4.5B's steady window-4 step at 720x720 on an H100. FlashAttention 4 (the `flash-attn-4`
package: kernels written in the CuTe DSL and compiled on first use; its SM90 forward is FlashAttention 3's
design) runs the same spans at 671 TFLOP/s (BENCHMARKS.md, "FlashAttention 4 and fused kernels"). Same attention: exact
softmax, float32 accumulation, native GQA; it rounds differently, within bf16.

`FlashBlockCausalAttention` is what a layer calls instead of SDPA's per-chunk loops (ParallelAttention.
self_attention), for the self-attention spans and, unmasked, for each chunk's cross-attention to its text. Each
call writes its chunk's rows straight into the layer's attention buffer (the kernel's `out`), so nothing is
copied after it. Where flash-attn-4 is not installed but FlashAttention 3's Hopper build is (the one FP8
attention uses, magi_engine.dit.fp8_attention; benchmarks/fa3_build.sh), its bf16 kernel does the same: 700
TFLOP/s on the same spans against SDPA's 579 (BENCHMARKS.md, "FlashAttention 3"). Should the package refuse a
call (a geometry it does not take, a compile that fails), the layer falls back to SDPA from then on, with one
log line. `flash_attention_supported(device)` says where it runs: a CUDA GPU of compute capability 9.x (the
kernels measured here) with either package importable. Nothing here imports them before then.
"""

from __future__ import annotations

import logging

import torch

from magi_engine.dit.attention import ChunkLayout, block_causal_attention, chunk_cross_attention, text_lengths

log = logging.getLogger(__name__)

#: The GPUs the kernel was measured faster on (Hopper: H100; BENCHMARKS.md). Elsewhere SDPA.
FLASH_ATTENTION_CAPABILITY_MAJOR = 9


def flash_attention_package() -> str | None:
    """"fa4" (flash-attn-4) or "fa3" (FlashAttention 3's Hopper build) where importable, FlashAttention 4 first (the
    one measured end to end); None where neither is."""
    try:
        from flash_attn.cute import flash_attn_func  # noqa: F401  (flash-attn-4)
    except Exception:  # ImportError, or a CuTe DSL build that does not load against this CUDA
        from magi_engine.dit.fp8_attention import fa3_available

        return "fa3" if fa3_available() else None
    return "fa4"


def flash_attention_importable() -> bool:
    return flash_attention_package() is not None


def flash_attention_supported(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major == FLASH_ATTENTION_CAPABILITY_MAJOR and flash_attention_importable()


def flash_attention_writer():
    """(q, k, v, out) -> out: FlashAttention 4's forward writing into `out` (a strided view is fine: last dimension
    contiguous, 16-byte aligned), or FlashAttention 3's where only it is installed. FA4's `out` argument is on the
    package's inner forward only; where a version lacks it, the public function and one copy."""
    if flash_attention_package() == "fa3":
        from magi_engine.dit.fp8_attention import fa3_forward

        def write(q, k, v, out):
            fa3_forward()(q, k, v, out=out, is_causal=False, num_splits=1)
            return out
        return write
    try:
        from flash_attn.cute.interface import _flash_attn_fwd
    except ImportError:
        from flash_attn.cute import flash_attn_func

        def write(q, k, v, out):
            got = flash_attn_func(q, k, v)
            return out.copy_(got[0] if isinstance(got, tuple) else got)
        return write

    def write(q, k, v, out):
        _flash_attn_fwd(q, k, v, out=out)
        return out
    return write


class FlashBlockCausalAttention:
    """Block-causal self-attention as magi_engine.dit.attention.block_causal_attention computes it (unmasked), and
    chunk_cross_attention's, one FlashAttention call per chunk. `write`: (q, k, v, out) -> out, the kernel
    (flash_attention_writer's; tests pass a stand-in)."""

    def __init__(self, write=None) -> None:
        self._write = flash_attention_writer() if write is None else write
        self.failed = False

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ChunkLayout,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """q [N, S, H, D]; k, v [N, context+S, G, D] (G divides H) -> [N, S, H, D], written into `out` when given."""
        out = torch.empty_like(q) if out is None else out
        if not self.failed:
            try:
                t = layout.tokens_per_chunk
                for j in range(layout.num_chunks):
                    lo, hi = layout.key_token_range(j)
                    self._write(q[:, j * t:(j + 1) * t], k[:, lo:hi], v[:, lo:hi], out[:, j * t:(j + 1) * t])
                return out
            except Exception as exc:  # noqa: BLE001  (any refusal: SDPA gives the same result)
                self._refused(exc)
        return block_causal_attention(q, k, v, layout, out=out)

    def cross_attention(self, q: torch.Tensor, k_text: torch.Tensor, v_text: torch.Tensor,
                        text_mask: torch.Tensor | None, tokens_per_chunk: int, out: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """As chunk_cross_attention (unmasked), into `out`. A batch of several items with padded text goes to SDPA
        (padding is dropped here, which only one item's keys allow)."""
        n_batch, num_chunks = k_text.shape[:2]
        if not self.failed and (text_mask is None or n_batch == 1):
            out = torch.empty_like(q) if out is None else out
            try:
                t = tokens_per_chunk
                lengths = text_lengths(text_mask) if text_mask is not None else [k_text.shape[2]] * num_chunks
                for j in range(num_chunks):
                    self._write(q[:, j * t:(j + 1) * t], k_text[:, j, :lengths[j]], v_text[:, j, :lengths[j]],
                                out[:, j * t:(j + 1) * t])
                return out
            except Exception as exc:  # noqa: BLE001
                self._refused(exc)
        return chunk_cross_attention(q, k_text, v_text, text_mask, tokens_per_chunk, out=out)

    def _refused(self, exc: Exception) -> None:
        log.warning("FlashAttention failed, attention runs through SDPA from now on: %s", exc)
        self.failed = True
