"""Sampling a grid split in j-bands over several ranks, equal to sampling it on one rank.

Each rank holds rows j0..j0+nj of the (ny, nx) grid (``bridge.partition.decompose(nx, ny, 1, M)``).
The denoiser is evaluated on overlapping tiles of the whole grid, blended (``models.tiling``):
a rank evaluates every tile that touches its band, so at every network call it reads rows lo..hi,
its band and a halo of up to a tile's height on each side, which the ranks holding those rows send
(``HaloExchange``, torch.distributed: gloo on CPU, NCCL on GPU, the worker's process group). Every
point of the band then receives the same tile outputs, added in the same order, as on one rank; with
the noise drawn on the whole grid and cut (``models.sampling.GridNoise``), the M-rank sample equals
the 1-rank sample of the same tiling and seed (tests/worker/test_worker_bands_mpi.py).

Tiles that touch two bands are evaluated on both ranks: only the iterate's rows travel, once per
network call, never a denoised output (benchmarks/bench_worker_ranks.py reports the extra tiles and
the exchange's share of the sampling time).
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

import torch
from torch import nn

from .networks import Cond
from .sampling import GridNoise
from .tiling import TiledDenoiser, tile_origins, tile_shape

__all__ = ["BandLayout", "HaloExchange", "BandTiledDenoiser", "RankBand", "BAND_OVERLAP"]

# Blending overlap as a fraction of the tile height. Tiles denoised each on its own are least certain at
# their edges, and blending leaves a trace there: on a Gaussian field with the exact denoiser of each
# 16-row tile (tests/models/test_models_seams.py, 1000 samples) the seam ratio at a tile boundary was
# 1.11 with a quarter overlap (TiledDenoiser's default), 1.05 with a half, 1.02 with three quarters
# (the truth: 1.00 +- 0.03). Band-shaped tiles put a tile boundary on every band edge, so the bands
# take half: every row lies in two tiles, at about twice the network evaluations of the bands alone.
BAND_OVERLAP = 0.5


@dataclass(frozen=True)
class BandLayout:
    """The ranks' j-bands of an (ny, nx) grid and the tiling every rank shares."""

    ny: int
    nx: int
    bands: tuple[tuple[int, int], ...]  # (j0, nj) of each rank, in rank order
    tile: tuple[int, int]  # (ty, tx) of the sampling tiles
    overlap: int | None = None  # blending overlap; None: half the tile height (BAND_OVERLAP)

    def __post_init__(self):
        object.__setattr__(self, "bands", tuple((int(j0), int(nj)) for j0, nj in self.bands))
        object.__setattr__(self, "tile", tile_shape(self.tile, self.ny, self.nx))
        if self.overlap is None:
            object.__setattr__(self, "overlap", int(self.tile[0] * BAND_OVERLAP))
        row = 0
        for rank, (j0, nj) in enumerate(self.bands):
            if j0 != row or nj < 1:
                raise ValueError(f"BandLayout.bands: rank {rank}'s band starts at row {j0} with {nj} rows; the "
                                 f"bands must cover rows 0..{self.ny - 1} in rank order (next row {row})")
            row = j0 + nj
        if row != self.ny:
            raise ValueError(f"BandLayout.bands end at row {row}, the grid has ny = {self.ny}")
        object.__setattr__(self, "overlap", self.tiler(nn.Identity()).overlap)  # validated, resolved

    @classmethod
    def training_shaped(cls, ny: int, nx: int, bands) -> "BandLayout":
        """The worker's default: tiles of the tallest band's shape, which is what each rank trained on."""
        return cls(ny, nx, tuple(bands), (max(nj for _, nj in bands), nx))

    def tiler(self, net: nn.Module) -> TiledDenoiser:
        return TiledDenoiser(net, self.tile, self.overlap)

    def tile_rows(self, rank: int) -> list[int]:
        """First rows (grid indices) of the tiles touching ``rank``'s band, in the 1-rank order."""
        j0, nj = self.bands[rank]
        ty = self.tile[0]
        return [j for j in tile_origins(self.ny, ty, self.overlap)
                if j < j0 + nj and j + ty > j0]

    def reads(self, rank: int) -> tuple[int, int]:
        """Rows lo..hi (exclusive) that ``rank``'s tiles read: its band and its halo."""
        rows = self.tile_rows(rank)
        return rows[0], rows[-1] + self.tile[0]

    def overlaps(self, reader: int, owner: int) -> tuple[int, int] | None:
        """Rows of ``owner``'s band that ``reader`` reads (None: none, or the same rank)."""
        if reader == owner:
            return None
        lo, hi = self.reads(reader)
        j0, nj = self.bands[owner]
        a, b = max(lo, j0), min(hi, j0 + nj)
        return (a, b) if a < b else None

    def tiles_evaluated(self) -> tuple[int, int]:
        """(tile rows evaluated by all ranks together, tile rows of one rank): the redundancy."""
        return sum(len(self.tile_rows(r)) for r in range(len(self.bands))), \
            len(tile_origins(self.ny, self.tile[0], self.overlap))


class HaloExchange:
    """At every call, this rank's band -> its rows lo..hi, the halo received from the ranks holding
    them (torch.distributed point-to-point on the default group); ``seconds``: time spent here."""

    def __init__(self, layout: BandLayout, rank: int, timeout_s: float):
        self.layout, self.rank, self.timeout_s = layout, rank, float(timeout_s)
        self.lo, self.hi = layout.reads(rank)
        peers = range(len(layout.bands))
        self.sends = [(p, rows) for p in peers if (rows := layout.overlaps(p, rank)) is not None]
        self.recvs = [(p, rows) for p in peers if (rows := layout.overlaps(rank, p)) is not None]
        self.seconds, self.calls = 0.0, 0

    def extend(self, band: torch.Tensor) -> torch.Tensor:
        """(..., nj, nx) -> (..., hi - lo, nx): the band with its halo filled in."""
        t = time.perf_counter()
        j0, nj = self.layout.bands[self.rank]
        if band.shape[-2] != nj:
            raise ValueError(f"halo exchange: worker rank {self.rank} holds {nj} rows, got a tensor of "
                             f"{band.shape[-2]}")
        if not self.sends and not self.recvs:
            return band
        import torch.distributed as dist
        ext = band.new_empty((*band.shape[:-2], self.hi - self.lo, band.shape[-1]))
        ext[..., j0 - self.lo:j0 - self.lo + nj, :] = band
        outgoing = [band[..., a - j0:b - j0, :].contiguous() for _, (a, b) in self.sends]
        incoming = [band.new_empty((*band.shape[:-2], b - a, band.shape[-1])) for _, (a, b) in self.recvs]
        works = [(dist.isend(buf, p), p, rows, "send") for buf, (p, rows) in zip(outgoing, self.sends)]
        works += [(dist.irecv(buf, p), p, rows, "receive") for buf, (p, rows) in zip(incoming, self.recvs)]
        for work, peer, (a, b), verb in works:
            self._wait(work, peer, a, b, verb)
        for buf, (_, (a, b)) in zip(incoming, self.recvs):
            ext[..., a - self.lo:b - self.lo, :] = buf
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return ext

    def _wait(self, work, peer: int, a: int, b: int, verb: str) -> None:
        """Every blocking wait has a bound: [run] ranks_timeout, naming both ranks and the rows."""
        try:
            ok = work.wait(datetime.timedelta(seconds=self.timeout_s))
        except RuntimeError as err:
            raise TimeoutError(f"halo exchange: worker rank {self.rank} could not {verb} rows {a}..{b - 1} "
                               f"{'to' if verb == 'send' else 'from'} worker rank {peer} within "
                               f"{self.timeout_s:g} s ([run] ranks_timeout): {err}") from err
        if ok is False:
            raise TimeoutError(f"halo exchange: worker rank {self.rank}: {verb} of rows {a}..{b - 1} with worker "
                               f"rank {peer} did not complete within {self.timeout_s:g} s ([run] ranks_timeout)")


class BandTiledDenoiser(nn.Module):
    """``net(x, sigma, cond)`` on this rank's band: ``x`` and ``cond`` hold the band's rows; the halo of
    ``x`` is exchanged at every call, that of ``cond`` once (it is the same at every sampler step)."""

    def __init__(self, net: nn.Module, layout: BandLayout, exchange: HaloExchange):
        super().__init__()
        self.tiler, self.layout, self.exchange = layout.tiler(net), layout, exchange
        self._cond_key: Cond | None = None
        self._cond_ext: Cond | None = None

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        rank, lo = self.exchange.rank, self.exchange.lo
        j0, nj = self.layout.bands[rank]
        out, total = self.tiler.blend(self.exchange.extend(x), sigma, self._extended(cond),
                                      (self.layout.ny, self.layout.nx), self.layout.tile_rows(rank), first_row=lo)
        return (out / total)[..., j0 - lo:j0 - lo + nj, :]

    def _extended(self, cond: Cond | None) -> Cond | None:
        if cond is None:
            return None
        if cond is not self._cond_key:
            self._cond_key = cond
            self._cond_ext = cond._map(lambda t: self.exchange.extend(t) if t.ndim == 4 else t)
        return self._cond_ext


class RankBand:
    """This rank's place in a band decomposition: the layout, the exchange, the noise cut."""

    def __init__(self, layout: BandLayout, rank: int, timeout_s: float):
        self.layout, self.rank = layout, rank
        self.exchange = HaloExchange(layout, rank, timeout_s)

    @property
    def rows(self) -> slice:
        j0, nj = self.layout.bands[self.rank]
        return slice(j0, j0 + nj)

    def denoiser(self, net: nn.Module) -> BandTiledDenoiser:
        return BandTiledDenoiser(net, self.layout, self.exchange)

    def noise(self, generator: torch.Generator | None) -> GridNoise:
        """This band's cut of the whole grid's noise (every rank draws the same whole-grid field)."""
        return GridNoise(generator, (self.layout.ny, self.layout.nx), self.rows, slice(None))
