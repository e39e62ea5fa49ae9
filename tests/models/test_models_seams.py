"""The band layout of decomposed sampling, and the seam metric on an analytic case.

A Gaussian random field with a separable squared-exponential covariance has an exact denoiser,
D(x; sigma) = K (K + sigma^2 I)^-1 x, which is evaluated here on each tile with the tile's own
covariance: a 'network' trained on tiles, with no training noise. Sampled as one grid with blended
tiles (what the M-rank sample equals, tests/worker/test_worker_bands_mpi.py) its seam ratio is the
truth's; each band denoised on its own (no halo exchange) fails the seam check.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.bands import BandLayout
from models.sampling import GridNoise, SamplerConfig, edm_sampler
from models.seams import band_edges, seam_ratio, seams_match

NY, NX, LENGTH = 32, 24, 3.0  # grid, correlation length (points)
TILE = (16, 16)


def test_layout_reads_a_tile_beyond_the_band():
    layout = BandLayout(40, 16, [(0, 20), (20, 20)], (16, 16), overlap=4)
    assert layout.tile_rows(0) == [0, 12] and layout.tile_rows(1) == [12, 24]
    assert layout.reads(0) == (0, 28) and layout.reads(1) == (12, 40)
    assert layout.overlaps(0, 1) == (20, 28) and layout.overlaps(1, 0) == (12, 20) and layout.overlaps(0, 0) is None
    assert layout.tiles_evaluated() == (4, 3)  # tile row 12 on both ranks
    half = BandLayout(40, 16, [(0, 20), (20, 20)], (16, 16))  # the default overlap: half a tile
    assert half.overlap == 8 and half.tile_rows(0) == [0, 8, 16] and half.tile_rows(1) == [8, 16, 24]
    assert BandLayout.training_shaped(40, 16, [(0, 14), (14, 13), (27, 13)]).tile == (14, 16)


def test_layout_refuses_bands_that_do_not_cover_the_grid():
    with pytest.raises(ValueError, match="rank 1's band starts at row 21"):
        BandLayout(40, 16, [(0, 20), (21, 19)], (16, 16))
    with pytest.raises(ValueError, match="end at row 30, the grid has ny = 40"):
        BandLayout(40, 16, [(0, 20), (20, 10)], (16, 16))
    with pytest.raises(ValueError, match="overlap"):
        BandLayout(40, 16, [(0, 40)], (16, 16), overlap=16)


def test_seam_ratio_of_known_fields():
    ramp = np.broadcast_to(np.arange(8.0)[:, None], (8, 5))  # every j-gradient 1
    assert seam_ratio(ramp, [4]) == 1.0
    step = ramp + 3.0 * (np.arange(8) >= 4)[:, None]  # the edge gradient is 4
    assert seam_ratio(step, [4]) == 16.0
    mask = np.ones((8, 5))
    mask[4:, 2:] = 0  # the step only where both rows are ocean
    assert seam_ratio(step * mask, [4], mask) == 16.0
    assert band_edges([(0, 4), (4, 4)]) == [4]
    with pytest.raises(ValueError, match="edges must be rows in 1..7"):
        seam_ratio(ramp, [0])
    assert seams_match(1.04, 1.0) and not seams_match(1.06, 1.0) and not seams_match(0.94, 1.0)


def _se_kernel(n: int) -> torch.Tensor:
    d = torch.arange(n, dtype=torch.float64)
    return torch.exp(-0.5 * ((d[:, None] - d[None, :]) / LENGTH) ** 2) + 1e-6 * torch.eye(n, dtype=torch.float64)


class GaussianTileDenoiser(torch.nn.Module):
    """The exact denoiser of the field's marginal on whatever (tile) grid it is given."""

    def forward(self, x, sigma, cond=None):
        ly, uy = torch.linalg.eigh(_se_kernel(x.shape[-2]))
        lx, ux = torch.linalg.eigh(_se_kernel(x.shape[-1]))
        lam = ly[:, None] * lx[None, :]
        coef = uy.T @ x.double() @ ux
        return (uy @ (coef * lam / (lam + float(sigma) ** 2)) @ ux.T).to(x.dtype)


def _truth(n: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(3)
    ly, lx = torch.linalg.cholesky(_se_kernel(NY)), torch.linalg.cholesky(_se_kernel(NX))
    return (ly @ torch.randn((n, 1, NY, NX), generator=gen, dtype=torch.float64) @ lx.T).numpy()


def _sample(net, n: int, rows: slice, seed: int) -> np.ndarray:
    noise = GridNoise(torch.Generator().manual_seed(seed), (NY, NX), rows, slice(None))
    height = len(range(NY)[rows])
    latents = noise((n, 1, height, NX), torch.float64, "cpu")
    return edm_sampler(net, latents, None, SamplerConfig(num_steps=12, sigma_max=20.0), noise=noise).numpy()


def test_no_halo_fails_the_seam_check_and_blended_tiles_pass():
    n, bands = 600, [(0, 16), (16, 16)]
    edges = band_edges(bands)
    truth = seam_ratio(_truth(n), edges)
    tiled = BandLayout(NY, NX, [(0, NY)], TILE).tiler(GaussianTileDenoiser())  # the bands' overlap
    one_grid = seam_ratio(_sample(tiled, n, slice(None), seed=5), edges)
    no_halo = seam_ratio(np.concatenate([_sample(tiled, n, slice(j0, j0 + nj), seed=5) for j0, nj in bands],
                                        axis=-2), edges)
    assert abs(truth - 1.0) < 0.05  # a uniform field: no row is special
    assert seams_match(one_grid, truth), (one_grid, truth)
    assert not seams_match(no_halo, truth) and no_halo > 10 * truth, (no_halo, truth)
