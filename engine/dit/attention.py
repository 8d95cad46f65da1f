"""Block-causal chunk attention and per-chunk text cross-attention (MAGI-1, arXiv 2505.13211 §2).

A forward pass holds a run of consecutive chunks. Chunk j attends, with full attention, to the
contiguous span of chunks [key_start_j, j] taken from [cached context chunks] ++ [chunks of this
forward] — never to later chunks. Spans are contiguous, so plain scaled_dot_product_attention per
chunk reproduces the reference's varlen kernels exactly; GQA is SDPA's `enable_gqa`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from magi_engine.errors import ConfigError


@dataclass(frozen=True)
class ChunkLayout:
    """Where the chunks of one forward sit in the video and which keys each one sees.

    Chunk indices are absolute positions in the video (they also drive the RoPE time axis).
    The keys of chunk `first_chunk + j` are the chunks [key_starts[j], first_chunk + j], drawn from
    the context (chunks [context_first, first_chunk), already encoded) and from this forward.
    """

    first_chunk: int
    num_chunks: int
    tokens_per_chunk: int
    key_starts: tuple[int, ...]
    context_first: int

    def __post_init__(self) -> None:
        if len(self.key_starts) != self.num_chunks:
            raise ConfigError(f"ChunkLayout: {len(self.key_starts)} key starts for {self.num_chunks} chunks")
        if self.context_first > self.first_chunk:
            raise ConfigError("ChunkLayout: the context must end where the forward's chunks begin")
        for j, start in enumerate(self.key_starts):
            if not self.context_first <= start <= self.first_chunk + j:
                raise ConfigError(
                    f"ChunkLayout: chunk {self.first_chunk + j} cannot attend from chunk {start} "
                    f"(available: {self.context_first}..{self.first_chunk + j})")

    @classmethod
    def causal(cls, first_chunk: int, num_chunks: int, tokens_per_chunk: int, *, span: int | None = None,
               context_first: int | None = None) -> "ChunkLayout":
        """Every chunk attends to itself and up to `span - 1` earlier chunks (all earlier when None)."""
        lowest = first_chunk if context_first is None else context_first
        starts = []
        for j in range(num_chunks):
            own = first_chunk + j
            starts.append(lowest if span is None else max(lowest, own - span + 1))
        return cls(first_chunk, num_chunks, tokens_per_chunk, tuple(starts), lowest)

    @classmethod
    def isolated(cls, first_chunk: int, num_chunks: int, tokens_per_chunk: int) -> "ChunkLayout":
        """Each chunk attends to itself only (clean-chunk encoding, unconditional guidance pass)."""
        starts = tuple(first_chunk + j for j in range(num_chunks))
        return cls(first_chunk, num_chunks, tokens_per_chunk, starts, first_chunk)

    @property
    def context_chunks(self) -> int:
        return self.first_chunk - self.context_first

    def key_token_range(self, j: int) -> tuple[int, int]:
        """Token range of chunk j's keys inside [context tokens] ++ [forward tokens]."""
        t = self.tokens_per_chunk
        return (self.key_starts[j] - self.context_first) * t, (self.context_chunks + j + 1) * t


#: Above this many query x key pairs the per-chunk loop is used even when masking is allowed.
MASKED_PATH_MAX_PAIRS = 2**25


def span_mask(layout: ChunkLayout, device: torch.device) -> torch.Tensor:
    """bool [S, context + S]: True where a query token may attend a key token (the layout's spans)."""
    t = layout.tokens_per_chunk
    keys = (layout.context_chunks + layout.num_chunks) * t
    mask = torch.zeros(layout.num_chunks, keys, dtype=torch.bool, device=device)
    for j in range(layout.num_chunks):
        lo, hi = layout.key_token_range(j)
        mask[j, lo:hi] = True
    return mask.repeat_interleave(t, dim=0)


def block_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: ChunkLayout,
                           masked: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """q [N, S, H, D] (S = chunks·tokens); k, v [N, context+S, G, D] -> [N, S, H, D], written into `out` when
    given (a view of the layer's attention buffer: magi_engine.dit.layer.ParallelAttention.attend).

    By default each chunk attends its contiguous span in its own call: exact block causality (a later
    chunk cannot change an earlier chunk's bits) and what flash kernels run fastest at MAGI-1 scale.
    `masked` (training small models) does one masked call instead: the same math, far fewer launches.
    """
    if masked and layout.num_chunks > 1 and q.shape[1] * k.shape[1] <= MASKED_PATH_MAX_PAIRS:
        got = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=span_mask(layout, q.device),
                                             enable_gqa=q.shape[2] != k.shape[2])
        return _written(got.transpose(1, 2), out)
    t = layout.tokens_per_chunk
    outputs = []
    for j in range(layout.num_chunks):
        lo, hi = layout.key_token_range(j)
        q_chunk = q[:, j * t : (j + 1) * t].transpose(1, 2)  # [N, H, t, D]
        k_span = k[:, lo:hi].transpose(1, 2)  # [N, G, span, D]
        v_span = v[:, lo:hi].transpose(1, 2)
        got = F.scaled_dot_product_attention(q_chunk, k_span, v_span, enable_gqa=q_chunk.shape[1] != k_span.shape[1])
        outputs.append(_written(got.transpose(1, 2), None if out is None else out[:, j * t : (j + 1) * t]))
    return torch.cat(outputs, dim=1) if out is None else out


def _written(result: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    """`result`, copied into `out` when there is one. Without `out` (autograd: training) nothing is written in place:
    writes into views of one shared buffer are what autograd's view tracking refuses."""
    return result if out is None else out.copy_(result)


def text_lengths(text_mask: torch.Tensor) -> list[int]:
    """Valid text tokens of each chunk of one item (text_mask [1, chunks, L], valid tokens first): one host read
    for all chunks, where reading each chunk's alone would wait on the GPU once per chunk."""
    return [int(n) for n in text_mask[0].sum(dim=-1).tolist()]


def chunk_cross_attention(q: torch.Tensor, k_text: torch.Tensor, v_text: torch.Tensor, text_mask: torch.Tensor | None,
                          tokens_per_chunk: int, masked: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """Each chunk's queries attend to that chunk's own text tokens.

    q [N, S, H, D]; k_text, v_text [N, chunks, L, G, D]; text_mask [N, chunks, L] bool (valid tokens
    first) or None when every token is valid. Returns [N, S, H, D], written into `out` when given.
    """
    t = tokens_per_chunk
    n_batch, num_chunks, length = k_text.shape[:3]
    if masked and num_chunks > 1 and q.shape[1] * num_chunks * length <= MASKED_PATH_MAX_PAIRS:
        # One call: queries of chunk j see the valid text tokens of chunk j only (block diagonal).
        own = torch.arange(num_chunks, device=q.device)
        allowed = (own[:, None, None] == own[None, :, None]).expand(num_chunks, num_chunks, length)
        allowed = allowed[None].expand(n_batch, -1, -1, -1)
        if text_mask is not None:
            allowed = allowed & text_mask[:, None, :, :]
        mask = allowed.reshape(n_batch, num_chunks, num_chunks * length).repeat_interleave(t, dim=1)[:, None]
        got = F.scaled_dot_product_attention(q.transpose(1, 2), k_text.flatten(1, 2).transpose(1, 2),
                                             v_text.flatten(1, 2).transpose(1, 2), attn_mask=mask,
                                             enable_gqa=q.shape[2] != k_text.shape[3])
        return _written(got.transpose(1, 2), out)
    # One item: drop the padding instead of masking it, as the reference's varlen kernel does.
    lengths = text_lengths(text_mask) if text_mask is not None and n_batch == 1 else None
    outputs = []
    for j in range(num_chunks):
        q_chunk = q[:, j * t : (j + 1) * t].transpose(1, 2)  # [N, H, t, D]
        k_chunk, v_chunk = k_text[:, j], v_text[:, j]  # [N, L, G, D]
        mask = None
        if lengths is not None:
            k_chunk, v_chunk = k_chunk[:, :lengths[j]], v_chunk[:, :lengths[j]]
        elif text_mask is not None:
            mask = text_mask[:, j][:, None, None, :]  # [N, 1, 1, L]
        got = F.scaled_dot_product_attention(q_chunk, k_chunk.transpose(1, 2), v_chunk.transpose(1, 2), attn_mask=mask,
                                             enable_gqa=q_chunk.shape[1] != k_chunk.shape[2])
        outputs.append(_written(got.transpose(1, 2), None if out is None else out[:, j * t : (j + 1) * t]))
    return torch.cat(outputs, dim=1) if out is None else out
