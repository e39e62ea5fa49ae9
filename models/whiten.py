"""Per-channel spectral whitening: the diffusion runs where every scale has unit variance.

Ocean fields have steep spectra: in the gyre the upper half of the wavenumbers holds
1e-4 of the 30-day ssh increment's variance (2e-3 for u). Isotropic (white) noise
then drowns the small scales at a noise level where the large scales are still
clear, and the denoiser must remove it to better than 1 % before the sample's small
scales are right; a briefly trained network does not, and the samples keep the
residual noise (bench_surrogate on the gyre: high-k energy ratio 290 for ssh).

Whitening changes variables: z = W y with W = C^T diag(g) C, C the orthonormal 2-D
DCT-II (Neumann-like walls, no periodic wrap of a closed basin) and the gain
g_c(k) = S_c(k)^(-alpha/2), S_c the running mean DCT power spectrum of channel c in
normalized units. With alpha = 1 every mode of z has unit variance, white noise on z
is noise with the data's own spectrum on y, and a relative network error on z is the
same relative error at every scale of y. Both objectives train on z (for the MSE
baseline a fixed, invertible quadratic weighting: its optimum is still the
conditional mean).

S_c(k) is binned radially in cycles per grid point, so the gains of any grid or tile
are interpolated from one spectrum. It is learnt from the stream like the
normalizers (sums and counts in float64 buffers, frozen with them) and saved in
``state_dict``; before any update the gains are 1 (identity).
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SpectralWhitener", "dct_matrix", "dct2", "idct2"]


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix D (n, n): coefficients D @ x, inverse D.T @ c."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=dtype)


def _rows(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """x @ m.T on the last axis as one large matrix product (batched small ones are slow on CPU)."""
    return (x.reshape(-1, x.shape[-1]) @ m.T).reshape(x.shape[:-1] + (m.shape[0],))


def dct2(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II of the last two axes: dy @ x @ dx.T."""
    return _rows(_rows(x, dx).transpose(-1, -2), dy).transpose(-1, -2)


def idct2(c: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2`: dy.T @ c @ dx."""
    return _rows(_rows(c, dx.T).transpose(-1, -2), dy.T).transpose(-1, -2)


def _kmag(ny: int, nx: int, device=None) -> torch.Tensor:
    """(ny, nx) wavenumber magnitude of the DCT modes in cycles per grid point (0 .. 0.71)."""
    ky = torch.arange(ny, dtype=torch.float64, device=device) / (2 * ny)
    kx = torch.arange(nx, dtype=torch.float64, device=device) / (2 * nx)
    return torch.hypot(ky[:, None], kx[None, :])


class SpectralWhitener(nn.Module):
    """Running radial DCT spectrum per channel and the whitening it defines.

    ``names``: channel names; ``ny, nx``: the training grid (sets the bin width
    1/(2 max(ny, nx)) cycles per point); ``alpha``: 1 whitens fully, 0 is the identity;
    ``floor``: the spectrum is clipped to ``floor`` times its maximum (gain range).
    """

    def __init__(self, names, ny: int, nx: int, alpha: float = 1.0, floor: float = 1e-10,
                 anisotropic: bool = False):
        super().__init__()
        if not 0 < alpha <= 1:
            raise ValueError(f"SpectralWhitener.alpha must be in (0, 1], got {alpha!r}")
        if not 0 < floor < 1:
            raise ValueError(f"SpectralWhitener.floor must be in (0, 1), got {floor!r}")
        self.names, self.alpha, self.floor = tuple(names), float(alpha), float(floor)
        self.anisotropic = bool(anisotropic)
        self.dk = 1.0 / (2 * max(ny, nx))
        # radial: bins of |k| up to the corner; anisotropic: a (ky, kx) lattice up to 0.5 cycles/point
        shape = (max(ny, nx) + 2,) * 2 if self.anisotropic else (int(math.ceil(math.sqrt(0.5) / self.dk)) + 2,)
        self.register_buffer("power_sum", torch.zeros(len(self.names), *shape, dtype=torch.float64))
        self.register_buffer("bin_count", torch.zeros(shape, dtype=torch.float64))
        self._cache: dict = {}

    def _bins(self, ny: int, nx: int, device) -> torch.Tensor:
        """(ny, nx) flat bin index of every DCT mode of a ny x nx grid."""
        if not self.anisotropic:
            return torch.round(_kmag(ny, nx, device) / self.dk).long().clamp_max(self.bin_count.numel() - 1)
        n = self.bin_count.shape[-1]
        by, bx = (torch.round(torch.arange(m, dtype=torch.float64, device=device) / (2 * m * self.dk)).long()
                  .clamp_max(n - 1) for m in (ny, nx))
        return by[:, None] * n + bx[None, :]

    def _dct(self, ny: int, nx: int, device, dtype=torch.float32):
        key = ("dct", ny, nx, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = (dct_matrix(ny, device, dtype), dct_matrix(nx, device, dtype))
        return self._cache[key]

    @torch.no_grad()
    def update(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Add the DCT power of (B, C, ny, nx) physical fields (land 0) to the running spectrum."""
        if x.shape[1] != len(self.names):
            raise ValueError(f"SpectralWhitener for {list(self.names)} got {x.shape[1]} channels")
        ny, nx = x.shape[-2:]
        x = x.detach().to(self.power_sum.device, torch.float64)
        if mask is not None:
            x = x * mask.to(x)
        power = dct2(x, *self._dct(ny, nx, x.device, torch.float64)) ** 2  # (B, C, ny, nx)
        bins = self._bins(ny, nx, x.device).flatten()
        flat = power.sum(0).flatten(1)  # (C, ny*nx)
        self.power_sum.view(len(self.names), -1).index_add_(1, bins, flat)
        self.bin_count.view(-1).index_add_(0, bins, torch.full_like(bins, x.shape[0], dtype=torch.float64))
        self._cache = {k: v for k, v in self._cache.items() if k[0] == "dct"}

    @property
    def fitted(self) -> bool:
        return bool((self.bin_count.flatten()[1:] > 0).any())

    def spectrum(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(bin wavenumbers k, mean power per mode (C, n_bins)) over the radial bins seen, k > 0
        (an anisotropic lattice is averaged over directions)."""
        count, power = self.bin_count.flatten(), self.power_sum.flatten(1)
        if self.anisotropic:
            n = self.bin_count.shape[-1]
            b = torch.arange(n, dtype=torch.float64, device=count.device)
            radial = torch.round(torch.hypot(b[:, None], b[None, :])).long().flatten()
            count = torch.zeros(int(radial.max()) + 1, dtype=torch.float64, device=count.device).index_add_(0, radial, count)
            power = torch.zeros(len(self.names), count.numel(), dtype=torch.float64,
                                device=count.device).index_add_(1, radial, power)
        seen = count > 0
        seen[0] = False  # the mean (k = 0) is set by the normalizer, not by the dynamics
        k = torch.arange(count.numel(), dtype=torch.float64, device=count.device) * self.dk
        return k[seen], power[:, seen] / count[seen]

    def gains(self, ny: int, nx: int, var: torch.Tensor, device) -> torch.Tensor:
        """(C, ny, nx) gain g_c(k) of every DCT mode; ``var``: the channels' normalizer variance."""
        # the key fingerprints the statistics: buffers may be copied in place (EMA) as well as updated
        key = ("gain", ny, nx, str(device), tuple(float(v) for v in var), float(self.bin_count.sum()),
               float(self.power_sum.sum()))
        if key in self._cache:
            return self._cache[key]
        if not self.fitted:
            g = torch.ones(len(self.names), ny, nx, device=device)
        else:
            k_seen, s = self.spectrum()
            s = s / var.to(s).reshape(-1, 1)  # normalized units: y = x / std
            s = torch.maximum(s, self.floor * s.amax(dim=1, keepdim=True)).clamp_min(1e-300)
            if self.anisotropic:
                log_s = self._log_lattice(ny, nx, var, floor=self.floor * s.amax(dim=1))
            else:
                log_s = _interp(_kmag(ny, nx, s.device).flatten(), k_seen, s.log())
            g = torch.exp(-0.5 * self.alpha * log_s).reshape(-1, ny, nx).to(device, torch.float32)
        self._cache[key] = g
        return g

    def _log_lattice(self, ny: int, nx: int, var: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        """(C, ny*nx) log power of a ny x nx grid's modes, bilinear in (ky, kx) over the lattice
        rows and columns seen; lattice cells never seen (and the mean) keep the radial value."""
        count = self.bin_count
        rows, cols = (count > 0).any(1).nonzero().flatten(), (count > 0).any(0).nonzero().flatten()
        s = self.power_sum[:, rows][:, :, cols] / count[rows][:, cols].clamp_min(1) / var.to(count).reshape(-1, 1, 1)
        log_s = torch.maximum(s, floor.reshape(-1, 1, 1)).clamp_min(1e-300).log()
        seen = (count[rows][:, cols] > 0) & ~((rows == 0)[:, None] & (cols == 0)[None, :])
        # unseen cells: the radial value at their |k|
        k_cell = torch.hypot(rows[:, None].double(), cols[None, :].double()) * self.dk
        k_seen, s_rad = self.spectrum()
        s_rad = torch.maximum(s_rad / var.to(s_rad).reshape(-1, 1), floor.reshape(-1, 1)).clamp_min(1e-300)
        fill = _interp(k_cell.flatten(), k_seen, s_rad.log()).reshape(log_s.shape)
        log_s = torch.where(seen, log_s, fill)
        c, ry, rx = log_s.shape
        fy = torch.arange(ny, dtype=torch.float64, device=count.device) / (2 * ny * self.dk)
        fx = torch.arange(nx, dtype=torch.float64, device=count.device) / (2 * nx * self.dk)
        along_x = _interp(fx, cols.double(), log_s.reshape(c * ry, rx)).reshape(c, ry, nx)
        both = _interp(fy, rows.double(), along_x.transpose(1, 2).reshape(c * nx, ry)).reshape(c, nx, ny)
        return both.transpose(1, 2).reshape(c, ny * nx)

    def whiten(self, y: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """z = W y for (B, C, ny, nx) normalized fields."""
        return self._filter(y, self.gains(*y.shape[-2:], var, y.device))

    def color(self, z: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """y = W^-1 z: white fields get the data's spectrum."""
        return self._filter(z, 1.0 / self.gains(*z.shape[-2:], var, z.device))

    def _filter(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(x.dtype, torch.float32)
        dy, dx = self._dct(*x.shape[-2:], x.device, dtype)
        return idct2(dct2(x.to(dtype), dy, dx) * g.to(dtype), dy, dx)

    def _load_from_state_dict(self, *args, **kwargs):
        self._cache = {}
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"names={list(self.names)}, alpha={self.alpha}, dk={self.dk:.4g}, anisotropic={self.anisotropic}"


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of each row of ``fp`` (C, n) at ``x``, constant beyond the ends."""
    if xp.numel() == 1:
        return fp[:, :1].expand(-1, x.numel())
    i = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1 = xp[i - 1], xp[i]
    w = ((x.clamp(xp[0], xp[-1]) - x0) / (x1 - x0)).clamp(0, 1)
    return fp[:, i - 1] * (1 - w) + fp[:, i] * w
