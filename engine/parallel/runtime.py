"""The process groups of one parallel run, and a meter of what their collectives move.

Every collective of magi_engine.parallel goes through `ParallelRuntime`, which counts the bytes each rank
sends and the seconds it waits (on CUDA the wait includes a synchronisation, so only measuring runs
turn `timed` on: it serialises the stream).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from magi_engine.parallel.plan import ParallelPlan


@dataclass
class CommMeter:
    """Bytes this rank sent and seconds spent in collectives, per kind of collective."""

    bytes_sent: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, nbytes: int, seconds: float) -> None:
        self.bytes_sent[kind] = self.bytes_sent.get(kind, 0) + nbytes
        self.seconds[kind] = self.seconds.get(kind, 0.0) + seconds
        self.calls[kind] = self.calls.get(kind, 0) + 1

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_sent.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def reset(self) -> None:
        self.bytes_sent.clear()
        self.seconds.clear()
        self.calls.clear()


class ParallelRuntime:
    """This rank's view of the world: its device, its sequence group, and the collectives it uses."""

    def __init__(self, plan: ParallelPlan, rank: int, device: torch.device, *, timed: bool = False) -> None:
        self.plan = plan
        self.rank = rank
        self.device = device
        self.timed = timed
        self.meter = CommMeter()
        self.group = plan.group_of(rank)
        self.position = plan.position_of(rank)
        # new_group is collective: every rank creates every group, in the same order.
        # A plan smaller than the process group runs on its first plan.world ranks (the tests run several
        # plans in one launch); a launch's plan is its whole world.
        world = dist.get_world_size() if dist.is_initialized() else plan.world
        self.world_group = dist.new_group(list(range(plan.world))) if plan.world < world else None
        self.sequence_group = None
        for g in range(plan.guidance):
            ranks = list(range(plan.leader_of(g), plan.leader_of(g) + plan.sequence))
            handle = dist.new_group(ranks) if plan.sequence > 1 and plan.world > 1 else None
            if g == self.group:
                self.sequence_group = handle

    @property
    def sequence_ranks(self) -> int:
        return self.plan.sequence

    def _timed(self, kind: str, nbytes: int, run) -> None:
        if not self.timed:
            run()
            self.meter.add(kind, nbytes, 0.0)
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        run()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.meter.add(kind, nbytes, time.perf_counter() - start)

    def all_to_all(self, send: torch.Tensor) -> torch.Tensor:
        """Within the sequence group: block r of `send` (split on dim 0) goes to position r; block r of
        the result came from position r."""
        send = send.contiguous()
        received = torch.empty_like(send)
        # What leaves this rank: every block but its own.
        nbytes = send.numel() * send.element_size() * (self.sequence_ranks - 1) // self.sequence_ranks
        self._timed("all_to_all", nbytes,
                    lambda: dist.all_to_all_single(received, send, group=self.sequence_group))
        return received

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Within the sequence group: [positions, *tensor.shape], position order."""
        tensor = tensor.contiguous()
        out = torch.empty((self.sequence_ranks * tensor.shape[0], *tensor.shape[1:]), dtype=tensor.dtype,
                          device=tensor.device)
        nbytes = tensor.numel() * tensor.element_size()
        gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        self._timed("all_gather", nbytes, lambda: gather(out, tensor, group=self.sequence_group))
        return out.view(self.sequence_ranks, *tensor.shape)

    def broadcast(self, tensor: torch.Tensor, src: int, kind: str = "broadcast") -> None:
        """In place, over the plan's ranks, from global rank `src`."""
        nbytes = tensor.numel() * tensor.element_size() if self.rank == src else 0
        self._timed(kind, nbytes, lambda: dist.broadcast(tensor, src, group=self.world_group))

    def send(self, tensor: torch.Tensor, dst: int, kind: str = "send") -> None:
        """Point to point, to global rank `dst`: the shape (int64, up to 8 dimensions), then the values."""
        header = torch.zeros(9, dtype=torch.int64, device=self.device)
        header[0] = tensor.dim()
        header[1:1 + tensor.dim()] = torch.tensor(tensor.shape, dtype=torch.int64)
        tensor = tensor.contiguous()
        self._timed(kind, header.numel() * 8 + tensor.numel() * tensor.element_size(),
                    lambda: (dist.send(header, dst), dist.send(tensor, dst)))

    def receive(self, src: int, dtype: torch.dtype) -> torch.Tensor:
        """What `send` sent from global rank `src` (its dtype must be `dtype`)."""
        header = torch.empty(9, dtype=torch.int64, device=self.device)
        dist.recv(header, src)
        shape = [int(n) for n in header[1:1 + int(header[0])].tolist()]
        tensor = torch.empty(shape, dtype=dtype, device=self.device)
        dist.recv(tensor, src)
        return tensor
