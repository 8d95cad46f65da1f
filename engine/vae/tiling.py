"""Tiled encode and decode for the video autoencoder, as small functions over tensors.

Follows the tiling arithmetic of MAGI-1's pipeline (SandAI-org/MAGI-1, TileProcessor in
inference/infra/parallelism/tile_parallel.py), so tiled results match the official ones bit for bit
in float32:

* Space: square tiles of `tile_px` pixels (`tile_px / 8` latent pixels) start every
  `int(tile · (1 - overlap))` units. Each tile's first rows and columns are cross-faded linearly
  with the last ones of the tile above and the tile to the left (weight k/extent on the new tile for
  the k-th row), then the tile is cropped to the stride and the crops are concatenated.
* Time: tiles of `tile_frames` pixel frames (`tile_frames / 4` latent frames) are processed
  independently and concatenated, without blending, so decoding stays chunk-local.

One asymmetry is reproduced on purpose: when encoding, a tile is blended with its neighbours as
they are after their own blending; when decoding, with the neighbours as decoded.

Every tile's own encode or decode depends on its input alone (the blending comes after), so a
`TileRunner` may compute them elsewhere: magi_engine.parallel.vae_tiles spreads them over the ranks
of a several-device run and hands the outputs back in `tile_inputs` order for the stitching here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch

from magi_engine.errors import ConfigError
from magi_engine.vae.config import VAEConfig

LOG = logging.getLogger(__name__)

TileFn = Callable[[torch.Tensor], torch.Tensor]
#: Computes every tile of one tiled pass: (direction "encode" | "decode", the whole input, the tile
#: function, the tile inputs in `tile_inputs` order) -> the tile outputs in the same order.
TileRunner = Callable[[str, torch.Tensor, TileFn, list], list]


@dataclass(frozen=True)
class TileLayout:
    """Tile settings in pixel units, plus the autoencoder's compression factors."""

    tile_px: int
    overlap: float
    tile_frames: int
    spatial_factor: int = 8
    temporal_factor: int = 4

    @classmethod
    def from_config(cls, config: VAEConfig) -> "TileLayout":
        layout = cls(config.tile_size, config.tile_overlap, config.tile_frames,
                     config.spatial_factor, config.temporal_factor)
        layout.encode_plan()
        layout.decode_plan()
        return layout

    def encode_plan(self) -> "TilePlan":
        tile_latent = self.tile_px // self.spatial_factor
        blend = int(tile_latent * self.overlap)
        return _checked_plan(self, TilePlan(
            in_tile=self.tile_px, in_stride=int(self.tile_px * (1 - self.overlap)),
            in_frames=self.tile_frames, out_blend=blend, out_keep=tile_latent - blend,
            scale=1 / self.spatial_factor))

    def decode_plan(self) -> "TilePlan":
        tile_latent = self.tile_px // self.spatial_factor
        tile_out = tile_latent * self.spatial_factor
        blend = int(tile_out * self.overlap)
        return _checked_plan(self, TilePlan(
            in_tile=tile_latent, in_stride=int(tile_latent * (1 - self.overlap)),
            in_frames=self.tile_frames // self.temporal_factor, out_blend=blend, out_keep=tile_out - blend,
            scale=self.spatial_factor))


@dataclass(frozen=True)
class TilePlan:
    """One direction of tiling: input tile/stride/frames, output blend extent and kept size."""

    in_tile: int
    in_stride: int
    in_frames: int
    out_blend: int
    out_keep: int
    #: Output units per input unit (1/8 when encoding, 8 when decoding).
    scale: float


def _checked_plan(layout: TileLayout, plan: TilePlan) -> TilePlan:
    # Kept crops must butt exactly against the next tile's start, or the output would grow at each
    # seam. MAGI-1 computes both sizes with int() separately; only some overlaps make them agree.
    if plan.in_stride < 1 or plan.in_frames < 1 or plan.out_keep != plan.in_stride * plan.scale:
        raise ConfigError(
            f"VAEConfig.tile_size {layout.tile_px} with tile_overlap {layout.overlap} does not tile evenly: "
            f"the overlap must be a whole number of latent pixels (e.g. tile_size 256, tile_overlap 0.25).")
    return plan


def budget_tile_px(config: VAEConfig, height_px: int, width_px: int, budget_bytes: int, dtype_bytes: int = 2
                   ) -> int:
    """The spatial tile (pixels) a decode uses to stay within `budget_bytes` of working memory.

    The largest tile that tiles evenly (config's overlap) and whose decoder call fits the budget
    (VAEConfig.decode_tile_bytes), from one tile covering the whole frame (no seams: the untiled decode
    of each temporal tile) down to one latent patch group; never below the smallest even tile.
    """
    whole = max(height_px, width_px)
    step = config.spatial_factor * 4  # whole latent pixels on both sides of a 1/4 overlap
    candidates = sorted({whole_tile(whole, config), *range(step, whole_tile(whole, config), step)}, reverse=True)
    even = [px for px in candidates if _tiles_evenly(config, px)]
    for px in even:
        if config.decode_tile_bytes(px, dtype_bytes) <= budget_bytes:
            return px
    return even[-1]


def whole_tile(size_px: int, config: VAEConfig) -> int:
    """The smallest even tile whose kept part (without the overlap) covers `size_px`: one tile, no seams."""
    px = config.spatial_factor * 4
    while not (_tiles_evenly(config, px) and int(px * (1 - config.tile_overlap)) >= size_px):
        px += config.spatial_factor * 4
    return px


def _tiles_evenly(config: VAEConfig, tile_px: int) -> bool:
    try:
        layout = TileLayout(tile_px, config.tile_overlap, config.tile_frames, config.spatial_factor,
                            config.temporal_factor)
        layout.decode_plan()
        return True
    except ConfigError:
        return False


def tiled_encode(encode_fn: TileFn, pixels: torch.Tensor, layout: TileLayout,
                 runner: TileRunner | None = None) -> torch.Tensor:
    """pixels [N, C, T, H, W] -> latents [N, z, T/4, H/8, W/8], calling `encode_fn` on each tile
    (or letting `runner` compute them all)."""
    return _tiled("encode", encode_fn, pixels, layout.encode_plan(), runner, chain_blended=True)


def tiled_decode(decode_fn: TileFn, latents: torch.Tensor, layout: TileLayout,
                 runner: TileRunner | None = None) -> torch.Tensor:
    """latents [N, z, T, h, w] -> pixels [N, 3, 4T, 8h, 8w], calling `decode_fn` on each tile
    (or letting `runner` compute them all)."""
    return _tiled("decode", decode_fn, latents, layout.decode_plan(), runner, chain_blended=False)


def tile_inputs(x: torch.Tensor, plan: TilePlan) -> list[torch.Tensor]:
    """The input of every tile of x [N, C, T, H, W], in the order the stitching consumes their outputs
    (time slab, then row, then column); views, not copies."""
    height, width = x.shape[-2:]
    return [x[:, :, start:start + plan.in_frames, top:top + plan.in_tile, left:left + plan.in_tile]
            for start in tile_starts(x.shape[2], plan.in_frames)
            for top in tile_starts(height, plan.in_stride)
            for left in tile_starts(width, plan.in_stride)]


def _tiled(direction: str, fn: TileFn, x: torch.Tensor, plan: TilePlan, runner: TileRunner | None,
           chain_blended: bool) -> torch.Tensor:
    if runner is not None:
        outputs = iter(runner(direction, x, fn, tile_inputs(x, plan)))
        fn = lambda _tile: next(outputs)  # noqa: E731 - the stitching asks for the tiles in tile_inputs order
    return _tile_over_time(fn, x, plan, chain_blended)


def tile_starts(length: int, stride: int) -> list[int]:
    """Start offsets of the tiles covering `length` units: one every `stride`, the last may be short."""
    return list(range(0, length, stride))


def cross_fade(previous: torch.Tensor, current: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """Blend the first `extent` slices of `current` along `dim` with the last ones of `previous`.

    Slice k gets weight k/extent on `current` and 1 - k/extent on `previous`; the extent shrinks to
    the shorter tile at the image border.
    """
    extent = min(previous.shape[dim], current.shape[dim], extent)
    if extent <= 0:
        return current
    ramp = [k / extent for k in range(extent)]
    shape = [1] * current.dim()
    shape[dim] = extent
    # Weights built from doubles, then rounded once to the tensor dtype: the same numbers the
    # per-row Python-scalar loop of the reference multiplies by.
    to_current = torch.tensor(ramp, dtype=current.dtype, device=current.device).reshape(shape)
    to_previous = torch.tensor([1 - r for r in ramp], dtype=current.dtype, device=current.device).reshape(shape)
    tail = previous.narrow(dim, previous.shape[dim] - extent, extent)
    head = tail * to_previous + current.narrow(dim, 0, extent) * to_current
    return torch.cat([head, current.narrow(dim, extent, current.shape[dim] - extent)], dim=dim)


def _tile_over_time(fn: TileFn, x: torch.Tensor, plan: TilePlan, chain_blended: bool) -> torch.Tensor:
    slabs = [_stitch_spatial(fn, x[:, :, start:start + plan.in_frames], plan, chain_blended)
             for start in tile_starts(x.shape[2], plan.in_frames)]
    return torch.cat(slabs, dim=2)


def _stitch_spatial(fn: TileFn, x: torch.Tensor, plan: TilePlan, chain_blended: bool) -> torch.Tensor:
    """Run `fn` on every spatial tile of x [N, C, t, H, W], blend the seams, crop and concatenate.

    Only the previous row of tiles is kept alive, which bounds memory to one row of full tiles.
    """
    height, width = x.shape[-2:]
    row_starts, col_starts = tile_starts(height, plan.in_stride), tile_starts(width, plan.in_stride)
    LOG.debug("tiling %s into %d x %d tiles of %d (stride %d)", tuple(x.shape), len(row_starts),
              len(col_starts), plan.in_tile, plan.in_stride)
    rows = []
    above: list[torch.Tensor] = []
    for top in row_starts:
        crops, neighbours = [], []
        for j, left in enumerate(col_starts):
            raw = fn(x[..., top:top + plan.in_tile, left:left + plan.in_tile])
            tile = raw
            if above:
                tile = cross_fade(above[j], tile, plan.out_blend, dim=-2)
            if neighbours:
                tile = cross_fade(neighbours[-1], tile, plan.out_blend, dim=-1)
            neighbours.append(tile if chain_blended else raw)
            crops.append(tile[..., :plan.out_keep, :plan.out_keep])
        rows.append(torch.cat(crops, dim=-1))
        above = neighbours
    return torch.cat(rows, dim=-2)
