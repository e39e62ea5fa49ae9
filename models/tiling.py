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

__all__ = ["TiledDenoiser", "tile_origins"]


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


class TiledDenoiser(nn.Module):
    def __init__(self, net: nn.Module, tile: int, overlap: int | None = None):
        super().__init__()
        if tile < 1:
            raise ValueError(f"TiledDenoiser.tile must be >= 1, got {tile!r}")
        self.net, self.tile = net, tile
        self.overlap = tile // 4 if overlap is None else overlap
        if not 0 <= self.overlap < tile:
            raise ValueError(f"TiledDenoiser.overlap must be in [0, tile), got {self.overlap!r}")

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        ny, nx = x.shape[-2:]
        ty, tx = min(self.tile, ny), min(self.tile, nx)
        boxes = [(j, i) for j in tile_origins(ny, ty, self.overlap) for i in tile_origins(nx, tx, self.overlap)]
        weight = _window(ty, min(self.overlap, ty - 1), x.device)[:, None] * \
            _window(tx, min(self.overlap, tx - 1), x.device)[None, :]
        dtype = torch.promote_types(x.dtype, torch.float32)  # float64 samplers stay float64
        out = torch.zeros(x.shape, dtype=dtype, device=x.device)
        total = torch.zeros((ny, nx), dtype=torch.float32, device=x.device)
        for j, i in boxes:
            crop = (..., slice(j, j + ty), slice(i, i + tx))
            tile_cond = None if cond is None else cond._map(lambda t: t[crop] if t.ndim == 4 else t)
            out[crop] += self.net(x[crop], sigma, tile_cond).to(dtype) * weight
            total[j:j + ty, i:i + tx] += weight
        return out / total
