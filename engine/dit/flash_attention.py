"""bf16 block-causal self-attention through FlashAttention 4 on Hopper GPUs (issue 18).

torch's scaled_dot_product_attention runs cuDNN's Hopper flash kernel for the engine's per-chunk spans: 586
TFLOP/s on the 4.5B's steady window-4 step at 720x720 on an H100. FlashAttention 4 (the `flash-attn-4`
package: kernels written in the CuTe DSL and compiled on first use; its SM90 forward is FlashAttention 3's
design) runs the same spans at 671 TFLOP/s (BENCHMARKS.md, "FlashAttention 4 and fused kernels"). Same attention: exact
softmax, float32 accumulation, native GQA; it rounds differently, within bf16.

`FlashBlockCausalAttention` is what a layer calls instead of SDPA's per-chunk loop (ParallelAttention.
self_attention). Should the package refuse a call (a geometry it does not take, a compile that fails), the
layer falls back to SDPA from then on, with one log line. `flash_attention_supported(device)` says where it
runs: a CUDA GPU of compute capability 9.x (the kernels measured here) with the package importable. Nothing
here imports it before then.
"""

from __future__ import annotations

import logging

import torch

from magi_engine.dit.attention import ChunkLayout, block_causal_attention

log = logging.getLogger(__name__)

#: The GPUs the kernel was measured faster on (Hopper: H100; BENCHMARKS.md). Elsewhere SDPA.
FLASH_ATTENTION_CAPABILITY_MAJOR = 9


def flash_attention_importable() -> bool:
    try:
        from flash_attn.cute import flash_attn_func  # noqa: F401  (flash-attn-4)
    except Exception:  # ImportError, or a CuTe DSL build that does not load against this CUDA
        return False
    return True


def flash_attention_supported(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major == FLASH_ATTENTION_CAPABILITY_MAJOR and flash_attention_importable()


class FlashBlockCausalAttention:
    """Block-causal self-attention as magi_engine.dit.attention.block_causal_attention computes it (unmasked),
    one FlashAttention 4 call per chunk over its span of keys."""

    def __init__(self, attend=None) -> None:
        if attend is None:
            from flash_attn.cute import flash_attn_func as attend
        self._attend = attend
        self.failed = False

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ChunkLayout) -> torch.Tensor:
        """q [N, S, H, D]; k, v [N, context+S, G, D] (G divides H) -> [N, S, H, D]."""
        if not self.failed:
            try:
                return self._chunks(q, k, v, layout)
            except Exception as exc:  # noqa: BLE001  (any refusal: SDPA gives the same result)
                log.warning("FlashAttention 4 failed, attention runs through SDPA from now on: %s", exc)
                self.failed = True
        return block_causal_attention(q, k, v, layout)

    def _chunks(self, q, k, v, layout: ChunkLayout) -> torch.Tensor:
        t = layout.tokens_per_chunk
        out = torch.empty_like(q)
        for j in range(layout.num_chunks):
            lo, hi = layout.key_token_range(j)
            got = self._attend(q[:, j * t:(j + 1) * t], k[:, lo:hi], v[:, lo:hi])
            out[:, j * t:(j + 1) * t] = got[0] if isinstance(got, tuple) else got
        return out
