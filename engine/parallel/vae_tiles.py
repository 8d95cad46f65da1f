"""The VAE's tiles spread over the ranks: each rank encodes or decodes a share, rank 0 stitches them.

A tiled pass (magi_engine.vae.tiling) computes every tile from its own input and only then blends the
seams, so the tiles can be computed anywhere. Rank 0 tells the other ranks (a VAE command naming the
direction), broadcasts the whole input as the VAE receives it, computes the tiles it owns while the
others compute theirs, and receives their outputs point to point in tile order. Tile i belongs to rank
i mod world (tile 0, and with it the first output's dtype, to rank 0), so every rank derives its share
from the input's shape alone. The stitching runs on rank 0 only, with the single-device code.

The input travels as float32 (it is small, and exact in it from any of the VAE's dtypes); the tiles in
the VAE's dtype on GPUs and as float32 on CPUs (gloo), exactly either way.
"""

from __future__ import annotations

import torch

from magi_engine.parallel.jobs import VAE, send_command
from magi_engine.parallel.runtime import ParallelRuntime
from magi_engine.vae.tiling import TileFn

DIRECTIONS = ("decode", "encode")


def _mine(count: int, rank: int, world: int) -> range:
    return range(rank, count, world)


def _wire(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.device.type == "cpu" else tensor


class SpreadTiles:
    """Rank 0's TileRunner: the tiles of one pass computed by every rank of the world."""

    def __init__(self, runtime: ParallelRuntime) -> None:
        self.runtime = runtime

    def __call__(self, direction: str, x: torch.Tensor, fn: TileFn, inputs: list) -> list:
        runtime, world = self.runtime, self.runtime.plan.world
        send_command(runtime, VAE, DIRECTIONS.index(direction))
        runtime.broadcast(torch.tensor([x.dim(), *x.shape], dtype=torch.int64, device=runtime.device), 0,
                          kind="vae_tiles")
        runtime.broadcast(x.float().contiguous(), 0, kind="vae_tiles")
        outputs: list = [None] * len(inputs)
        for i in _mine(len(inputs), 0, world):  # the others compute theirs meanwhile
            outputs[i] = fn(inputs[i])
        for i in range(len(inputs)):
            if outputs[i] is None:
                outputs[i] = runtime.receive(i % world, _wire(outputs[0]).dtype).to(outputs[0].dtype)
        return outputs


def follow_tiles(runtime: ParallelRuntime, vae, direction_index: int) -> None:
    """A follower's side of a VAE command: its share of the tiles, sent to rank 0."""
    header = torch.empty(6, dtype=torch.int64, device=runtime.device)
    runtime.broadcast(header, 0, kind="vae_tiles")
    x = torch.empty([int(n) for n in header[1:1 + int(header[0])].tolist()], dtype=torch.float32,
                    device=runtime.device)
    runtime.broadcast(x, 0, kind="vae_tiles")
    fn, inputs = vae.tile_work(DIRECTIONS[direction_index], x.to(vae.dtype))
    for i in _mine(len(inputs), runtime.rank, runtime.plan.world):
        runtime.send(_wire(fn(inputs[i])), 0, kind="vae_tiles")
