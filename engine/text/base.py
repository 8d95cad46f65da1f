"""The interface every text encoder of the engine implements.

A text encoder turns one chunk's prompt into a sequence of feature vectors for the DiT's
cross-attention: only valid tokens, no padding, shape [tokens, channels], float32 on the CPU.
`chunks_remaining` (counting the chunk itself) lets MAGI-1's T5 path prepend its per-chunk
duration token; encoders without such a token ignore it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class TextEncoder(Protocol):
    #: Width of the feature vectors (the DiT's `caption_channels`).
    embed_dim: int
    #: Longest token sequence the encoder returns (the DiT's `caption_max_length`).
    max_tokens: int

    def encode(self, prompt: str, chunks_remaining: int = 1) -> torch.Tensor:
        """Features of the valid tokens of `prompt`, float32 [tokens, embed_dim], tokens >= 1."""
        ...
