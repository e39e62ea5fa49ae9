"""Tiled evaluation of a denoiser: the grid is covered by overlapping tiles of the size
the network was trained on, each tile is denoised and the results are blended.

A network trained on tiles sees tile-sized group-norm statistics and receptive
fields; applying it to the whole grid at once changes both. Blending the denoiser
outputs (not the final samples) at every sampler step keeps neighbouring tiles
consistent, as in MultiDiffusion (Bar-Tal et al. 2023). The wrapper keeps the
``net(x, sigma, cond)`` call, so samplers are unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from .networks import Cond

__all__ = ["TiledDenoiser", "tile_origins", "tile_shape"]


def tile_origins(n: int, tile: int, overlap: int) -> list[int]:
    """Start indices covering 0..n-1 with tiles of ``tile`` points overlapping by >= ``overlap``."""
    if tile >= n:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, n - tile, step))
    return starts + [n - tile]


def _window(tile: int, overlap: int, device) -> torch.Tensor:
    """1-D blending weight: linear ramps over the overlap, so seams fade instead of jump."""
    ramp = torch.ones(tile, device=device)
    if overlap > 0:
        edge = (torch.arange(overlap, device=device) + 0.5) / overlap
        ramp[:overlap], ramp[-overlap:] = edge, edge.flip(0)
    return ramp


def tile_shape(tile: int | tuple[int, int], ny: int, nx: int) -> tuple[int, int]:
    """(ty, tx) of the tiles on an (ny, nx) grid: ``tile`` (square if one int), never beyond the grid."""
    ty, tx = (tile, tile) if isinstance(tile, int) else tuple(tile)
    return min(ty, ny), min(tx, nx)


class TiledDenoiser(nn.Module):
    """``net`` evaluated on overlapping ``tile``-sized tiles (int: square; (ty, tx)) of any grid,
    blended with linear ramps over ``overlap`` points (default: a quarter of the smaller side)."""

    def __init__(self, net: nn.Module, tile: int | tuple[int, int], overlap: int | None = None):
        super().__init__()
        sides = (tile, tile) if isinstance(tile, int) else tuple(tile)
        if len(sides) != 2 or min(sides) < 1:
            raise ValueError(f"TiledDenoiser.tile must be >= 1 (or two such sizes), got {tile!r}")
        self.net, self.tile = net, sides
        self.overlap = min(sides) // 4 if overlap is None else overlap
        if not 0 <= self.overlap < min(sides):
            raise ValueError(f"TiledDenoiser.overlap must be in [0, tile), got {self.overlap!r}")

    def row_origins(self, ny: int, nx: int) -> list[int]:
        """First rows of the tiles covering a (ny, nx) grid."""
        return tile_origins(ny, tile_shape(self.tile, ny, nx)[0], self.overlap)

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        ny, nx = x.shape[-2:]
        out, total = self.blend(x, sigma, cond, (ny, nx), self.row_origins(ny, nx), first_row=0)
        return out / total

    def blend(self, x: torch.Tensor, sigma, cond: Cond | None, grid: tuple[int, int], rows: list[int],
              first_row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted sum of the tile outputs and the sum of the weights, on ``x``'s rows, which are rows
        ``first_row``.. of a ``grid`` (ny, nx) grid; ``rows``: the tiles' first rows (grid indices).
        Tiles are added in the order (row, column) whatever part of the grid ``x`` holds, so a point gets
        bit for bit the same sum from a band of the grid as from the whole (models/bands.py)."""
        ty, tx = tile_shape(self.tile, *grid)
        weight = _window(ty, min(self.overlap, ty - 1), x.device)[:, None] * \
            _window(tx, min(self.overlap, tx - 1), x.device)[None, :]
        dtype = torch.promote_types(x.dtype, torch.float32)  # float64 samplers stay float64
        out = torch.zeros(x.shape, dtype=dtype, device=x.device)
        total = torch.zeros(x.shape[-2:], dtype=torch.float32, device=x.device)
        for j in rows:
            for i in tile_origins(grid[1], tx, self.overlap):
                j_local = j - first_row
                crop = (..., slice(j_local, j_local + ty), slice(i, i + tx))
                tile_cond = None if cond is None else cond._map(lambda t: t[crop] if t.ndim == 4 else t)
                out[crop] += self.net(x[crop], sigma, tile_cond).to(dtype) * weight
                total[crop[1:]] += weight
        return out, total
