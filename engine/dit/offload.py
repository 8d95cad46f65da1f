"""DiT layers kept in pinned CPU memory and streamed to the GPU one layer ahead (issue 18, "Fewer gigabytes").

For cards that cannot hold the weights. A forward visits the layers in order, so layer i+1 is copied
to the device on a side CUDA stream while layer i computes, and layer i's device copy is dropped as
soon as its forward returns: at most two layers' weights are on the device at once, whatever the
model's depth. After the last layer the first is fetched again, ready for the next forward.

`Prefetcher` is that schedule for any sequence of per-layer items; the KV cache's host copy uses it
too (magi_engine.dit.kv_cache.HostKVCache). On a CPU "device" (tests) there is no side stream and a
fetch is a synchronous copy: the order is the same, which is what the tests check (`trace`).

FP8 layers move as they are: their float8_e4m3fn weights and float32 scales are buffers of the layer
like any other, so a streamed Fp8Linear runs the same scaled matmul on the same bytes.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Generic, TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)

Item = TypeVar("Item")
#: ("fetch" | "take" | "release", index): what a Prefetcher or LayerStreamer did, in order (tests).
Trace = list[tuple[str, int]]

_SIDE_STREAMS: dict[torch.device, Any] = {}


def side_stream(device: torch.device):
    """The one copy stream of a CUDA device (None elsewhere): weights and KV copies share it, so they
    stay in order with one another."""
    if device.type != "cuda":
        return None
    device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream(device)
    return _SIDE_STREAMS[device]


def to_host(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU copy of `tensor`, pinned when it will be copied to a CUDA `device` (pinned copies run async)."""
    host = tensor.detach().to("cpu")
    if device.type == "cuda":
        host = host.pin_memory()
    elif host.data_ptr() == tensor.data_ptr():
        host = host.clone()
    return host


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A device copy of a host tensor (asynchronous from pinned memory; always a new tensor)."""
    return host.to(device, non_blocking=True, copy=True)


def _tensors(item: Any):
    if isinstance(item, torch.Tensor):
        yield item
    elif isinstance(item, dict):
        for value in item.values():
            yield from _tensors(value)
    elif isinstance(item, (list, tuple)):
        for value in item:
            yield from _tensors(value)


class Prefetcher(Generic[Item]):
    """Items 0..count-1 fetched one ahead of use: `take(i)` waits for item i's copy (fetching it now if
    it was not started) and starts the copy of item i+1 (of item 0 after the last, if `cyclic`)."""

    def __init__(self, count: int, fetch: Callable[[int], Item], device: torch.device, *, cyclic: bool = False,
                 trace: Trace | None = None) -> None:
        self.count = count
        self.fetch = fetch
        self.device = device
        self.cyclic = cyclic
        self.trace = trace
        self._stream = side_stream(device)
        self._pending: dict[int, tuple[Item, Any]] = {}

    @property
    def pending(self) -> list[int]:
        """Indices copied (or being copied) and not yet taken."""
        return list(self._pending)

    def start(self, index: int) -> None:
        if index in self._pending or not 0 <= index < self.count:
            return
        if self.trace is not None:
            self.trace.append(("fetch", index))
        if self._stream is None:
            self._pending[index] = (self.fetch(index), None)
            return
        # The copy may read what the compute stream wrote (a chunk's keys just made): wait for it first.
        self._stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._stream):
            item = self.fetch(index)
            done = torch.cuda.Event()
            done.record(self._stream)
        self._pending[index] = (item, done)

    def take(self, index: int) -> Item:
        self.start(index)
        item, done = self._pending.pop(index)
        if done is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(done)
            for tensor in _tensors(item):  # made on the side stream, used and freed on this one
                tensor.record_stream(compute)
        if self.trace is not None:
            self.trace.append(("take", index))
        following = index + 1
        if self.cyclic:
            following %= self.count
        self.start(following)
        return item

    def clear(self) -> None:
        self._pending.clear()


def layer_tensors(layer: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of a layer by its name inside the layer."""
    found = dict(layer.named_parameters())
    found.update(dict(layer.named_buffers()))
    return found


class LayerStreamer:
    """Streams a MagiDiT's transformer layers from pinned CPU memory (see the module docstring).

    The rest of the model (embedders, final norm and projection, RoPE bands) moves to `device` for good.
    Built on a model on the CPU (or anywhere: its layers' tensors are copied to the host first).
    """

    def __init__(self, dit: nn.Module, device: torch.device | str, *, trace: Trace | None = None) -> None:
        self.device = torch.device(device)
        self.trace = trace
        self.layers = list(dit.layers)
        for name, child in dit.named_children():
            if name != "layers":
                child.to(self.device)
        self._tensors = [layer_tensors(layer) for layer in self.layers]
        self._host: list[dict[str, torch.Tensor]] = []
        for tensors in self._tensors:
            host = {name: to_host(tensor, self.device) for name, tensor in tensors.items()}
            for name, tensor in tensors.items():
                tensor.data = host[name]
            self._host.append(host)
        self._prefetch = Prefetcher(len(self.layers), self._fetch, self.device, cyclic=True, trace=trace)
        self._hooks = []
        for index, layer in enumerate(self.layers):
            self._hooks.append(layer.register_forward_pre_hook(self._entering(index)))
            self._hooks.append(layer.register_forward_hook(self._leaving(index)))
        dit.layer_streamer = self
        log.info("%d DiT layers stream from pinned CPU memory (%.2f GiB there, at most two layers on %s)",
                 len(self.layers), self.host_bytes / 2**30, self.device)

    @property
    def host_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for host in self._host for t in host.values())

    @property
    def layer_bytes(self) -> list[int]:
        return [sum(t.numel() * t.element_size() for t in host.values()) for host in self._host]

    def resident_layers(self) -> list[int]:
        """Layers whose tensors are on the device now (not their host copies)."""
        return [i for i, (tensors, host) in enumerate(zip(self._tensors, self._host))
                if any(t.data_ptr() != host[name].data_ptr() for name, t in tensors.items())]

    def fetching_layers(self) -> list[int]:
        return self._prefetch.pending

    def _fetch(self, index: int) -> dict[str, torch.Tensor]:
        return {name: to_device(host, self.device) for name, host in self._host[index].items()}

    def _entering(self, index: int):
        def hook(module, args):
            for name, tensor in self._prefetch.take(index).items():
                self._tensors[index][name].data = tensor

        return hook

    def _leaving(self, index: int):
        def hook(module, args, output):
            for name, tensor in self._tensors[index].items():
                tensor.data = self._host[index][name]
            if self.trace is not None:
                self.trace.append(("release", index))

        return hook

    def remove(self, dit: nn.Module) -> None:
        """Stop streaming: the layers stay on the host (their `.data` is the host copy)."""
        for hook in self._hooks:
            hook.remove()
        self._prefetch.clear()
        dit.layer_streamer = None


def stream_layers(dit: nn.Module, device: torch.device | str, *, trace: Trace | None = None) -> LayerStreamer:
    """Keep `dit`'s layers in (pinned) CPU memory and stream them to `device` during each forward."""
    return LayerStreamer(dit, device, trace=trace)
