"""The KV cache of clean chunks: per-layer keys/values of the most recent finished chunks.

A finished chunk is encoded once (t = clean_t, null caption, attending only to itself), so its keys
and values depend on its own latent alone. The cache holds at most `capacity` chunks (the longest
attention span minus the chunk itself) and the sampler also drops every chunk no remaining step can
attend (`drop_before`): with the default window of 4 only one clean chunk is attended in steady
state. Memory therefore stays flat however long the video grows, while chunk indices (and so RoPE
positions) stay absolute.

`HostKVCache` keeps the same chunks in pinned CPU memory instead, for cards that cannot hold them
(window 1 caches four chunks: 6.3 GiB at 720x720 for the 4.5B): a forward then streams each layer's
keys/values to the device one layer ahead of use (magi_engine.dit.offload.Prefetcher), so two layers'
worth are on the device at a time.
"""

from __future__ import annotations

from typing import Sequence

import torch

from magi_engine.dit.layer import LayerKV
from magi_engine.dit.model import KVContext
from magi_engine.errors import ConfigError


class KVCache:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"KVCache capacity must be at least 1 chunk, got {capacity}")
        self.capacity = capacity
        self._chunks: dict[int, list[LayerKV]] = {}  # consecutive chunk indices, oldest first

    # Queries ---------------------------------------------------------------------------------------
    @property
    def chunk_indices(self) -> range:
        if not self._chunks:
            return range(0)
        first = next(iter(self._chunks))
        return range(first, first + len(self._chunks))

    def __contains__(self, chunk: int) -> bool:
        return chunk in self._chunks

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for kv in self._chunks.values() for pair in kv for t in pair)

    # Updates ---------------------------------------------------------------------------------------
    def put(self, chunk: int, kv: list[LayerKV]) -> None:
        """Store the clean keys/values of `chunk`: the next index (or any index, which restarts the cache)."""
        if self._chunks and chunk != self.chunk_indices.stop:
            self._chunks.clear()
        self._chunks[chunk] = kv
        while len(self._chunks) > self.capacity:
            del self._chunks[next(iter(self._chunks))]

    def drop_before(self, chunk: int) -> None:
        """Forget the chunks older than `chunk` (no remaining step attends to them)."""
        for index in [i for i in self._chunks if i < chunk]:
            del self._chunks[index]

    def clear(self) -> None:
        self._chunks.clear()

    def context(self, first: int, end: int) -> KVContext:
        """Keys/values of chunks [first, end), joined per layer (a view when it is a single chunk)."""
        chunks = self._chunks_between(first, end)
        layers = list(chunks[0]) if len(chunks) == 1 else JoinedLayers(chunks)
        return KVContext(first_chunk=first, num_chunks=end - first, layers=layers)


    def _chunks_between(self, first: int, end: int) -> list[list[LayerKV]]:
        if not all(i in self._chunks for i in range(first, end)) or first > end:
            raise ConfigError(f"KV cache holds chunks {list(self.chunk_indices)}, not [{first}, {end})")
        return [self._chunks[i] for i in range(first, end)]


class HostKVCache(KVCache):
    """A KVCache whose chunks live in (pinned) CPU memory; contexts stream to `device` layer by layer."""

    def __init__(self, capacity: int, device: torch.device | str, trace: list | None = None) -> None:
        super().__init__(capacity)
        self.device = torch.device(device)
        self.trace = trace

    def put(self, chunk: int, kv: list[LayerKV]) -> None:
        from magi_engine.dit.offload import side_stream

        stream = side_stream(self.device)
        if stream is None:
            host = [(k.detach().to("cpu", copy=True), v.detach().to("cpu", copy=True)) for k, v in kv]
        else:
            stream.wait_stream(torch.cuda.current_stream(self.device))  # the keys were made on the compute stream
            host = []
            with torch.cuda.stream(stream):
                for k, v in kv:
                    pair = []
                    for tensor in (k, v):
                        copy = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
                        copy.copy_(tensor, non_blocking=True)
                        tensor.record_stream(stream)  # its memory is not reused before the copy is done
                        pair.append(copy)
                    host.append(tuple(pair))
        super().put(chunk, host)

    def context(self, first: int, end: int) -> KVContext:
        chunks = self._chunks_between(first, end)
        return KVContext(first_chunk=first, num_chunks=end - first,
                         layers=StreamedLayers(chunks, self.device, trace=self.trace))


class StreamedLayers(Sequence):
    """Per-layer keys/values of host chunks, each layer copied to the device (joined along the tokens)
    while the layer before it computes. Layers are read in order; reading one again fetches it again."""

    def __init__(self, parts: list[Sequence[LayerKV]], device: torch.device, trace: list | None = None) -> None:
        from magi_engine.dit.offload import Prefetcher

        self.parts = parts
        self.device = device
        self._prefetch = Prefetcher(len(parts[0]), self._fetch, device, trace=trace)
        self._prefetch.start(0)

    def __len__(self) -> int:
        return len(self.parts[0])

    def _fetch(self, layer: int) -> LayerKV:
        joined = []
        for which in (0, 1):
            pieces = [part[layer][which] for part in self.parts]
            shape = list(pieces[0].shape)
            shape[1] = sum(p.shape[1] for p in pieces)
            out = torch.empty(shape, dtype=pieces[0].dtype, device=self.device)
            at = 0
            for piece in pieces:
                out[:, at:at + piece.shape[1]].copy_(piece, non_blocking=True)
                at += piece.shape[1]
            joined.append(out)
        return joined[0], joined[1]

    def __getitem__(self, layer: int) -> LayerKV:
        if not isinstance(layer, int):
            raise TypeError("StreamedLayers is indexed by one layer number")
        return self._prefetch.take(layer)


def kv_cache_for(dit, capacity: int) -> KVCache:
    """The cache a sampler uses with `dit`: on the host when the model says so (`kv_cache_on_host`)."""
    if getattr(dit, "kv_cache_on_host", False):
        return HostKVCache(capacity, dit.device)
    return KVCache(capacity)


class JoinedLayers(Sequence):
    """Per-layer keys/values of several chunks, joined along the tokens when a layer asks for them.

    Joining every layer up front doubled the cache's memory during a forward (window 1 keeps four
    chunks: 6.3 GiB more at 720x720 for the 4.5B); a forward reads one layer at a time, so only that
    layer's joined copy is alive.
    """

    def __init__(self, parts: list[Sequence[LayerKV]]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return len(self.parts[0])

    def __getitem__(self, layer: int) -> LayerKV:
        if not isinstance(layer, int):
            raise TypeError("JoinedLayers is indexed by one layer number")
        pairs = [part[layer] for part in self.parts]
        return torch.cat([k for k, _ in pairs], 1), torch.cat([v for _, v in pairs], 1)


def concat_contexts(first: KVContext | None, second: KVContext) -> KVContext:
    """Context [first] ++ [second]; the two must be adjacent."""
    if first is None or first.num_chunks == 0:
        return second
    if first.first_chunk + first.num_chunks != second.first_chunk:
        raise ConfigError("KV contexts to join are not adjacent")
    return KVContext(first.first_chunk, first.num_chunks + second.num_chunks, JoinedLayers([first.layers, second.layers]))
