"""Ensemble scores, masked power spectra and physical diagnostics (numpy).

Conventions: an ensemble is an array (M, ..., ny, nx) with members first; the truth
has the shape without the member axis. ``mask`` (1 ocean, 0 land) broadcasts to the
truth's shape; every mean below is over ocean points only.
"""
from __future__ import annotations

import numpy as np
import torch

from .whiten import dct_matrix

__all__ = [
    "ensemble_mean_rmse", "crps_fair", "crps_fair_pointwise", "spread_skill", "rank_histogram",
    "power_spectrum", "high_k_ratio", "SPECTRA", "kinetic_energy", "volume_anomaly", "heat_content",
    "summarize", "RHO0", "CP0",
]

RHO0 = 1026.0  # kg m-3, reference sea-water density (NEMO rho0)
CP0 = 3991.86795711963  # J kg-1 K-1, TEOS-10 cp0 (NEMO rcp)


def _weights(mask, shape) -> np.ndarray:
    return np.ones(shape) if mask is None else np.broadcast_to(np.asarray(mask, dtype=float), shape)


def _wmean(values: np.ndarray, mask) -> float:
    w = _weights(mask, values.shape)
    return float((values * w).sum() / max(w.sum(), 1.0))


# ----------------------------------------------------------------------------- scores


def ensemble_mean_rmse(ens: np.ndarray, truth: np.ndarray, mask=None) -> float:
    """RMSE of the ensemble mean (for a deterministic model pass a 1-member ensemble)."""
    return float(np.sqrt(_wmean((np.mean(ens, axis=0) - truth) ** 2, mask)))


def crps_fair_pointwise(ens: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Fair (ensemble-size unbiased) CRPS at each point (Ferro 2014):

    CRPS_F = 1/M sum_i |x_i - y| - 1/(2 M (M - 1)) sum_{i,j} |x_i - x_j|.

    The pair sum uses the sorted form sum_{i,j} |x_i - x_j| = 2 sum_i (2i - M - 1) x_(i),
    O(M log M) instead of O(M^2) memory.
    """
    ens = np.asarray(ens, dtype=float)
    m = ens.shape[0]
    if m < 2:
        raise ValueError(f"fair CRPS needs at least 2 members, got {m}")
    skill = np.mean(np.abs(ens - truth), axis=0)
    ranks = (2 * np.arange(1, m + 1) - m - 1).reshape(-1, *([1] * (ens.ndim - 1)))
    pair_sum = 2 * np.sum(ranks * np.sort(ens, axis=0), axis=0)
    return skill - pair_sum / (2 * m * (m - 1))


def crps_fair(ens: np.ndarray, truth: np.ndarray, mask=None) -> float:
    return _wmean(crps_fair_pointwise(ens, truth), mask)


def spread_skill(ens: np.ndarray, truth: np.ndarray, mask=None) -> tuple[float, float, float]:
    """(spread, skill, ratio) with ratio = sqrt((M+1)/M) spread / skill (Fortin et al. 2014).

    spread = sqrt(mean unbiased ensemble variance), skill = ensemble-mean RMSE. For a
    calibrated ensemble E[skill^2] = (1 + 1/M) E[spread^2], hence the correction factor.
    """
    ens = np.asarray(ens, dtype=float)
    m = ens.shape[0]
    if m < 2:
        raise ValueError(f"spread/skill needs at least 2 members, got {m}")
    spread = np.sqrt(_wmean(np.var(ens, axis=0, ddof=1), mask))
    skill = ensemble_mean_rmse(ens, truth, mask)
    return spread, skill, float(np.sqrt((m + 1) / m) * spread / max(skill, 1e-300))


def rank_histogram(ens: np.ndarray, truth: np.ndarray, mask=None, seed: int = 0) -> np.ndarray:
    """Counts (M + 1) of the truth's rank among the members, ties broken at random."""
    ens = np.asarray(ens, dtype=float)
    below = np.sum(ens < truth, axis=0)
    ties = np.sum(ens == truth, axis=0)
    rng = np.random.default_rng(seed)
    rank = below + np.floor(rng.random(below.shape) * (ties + 1)).astype(int)
    keep = _weights(mask, rank.shape) > 0
    return np.bincount(rank[keep].ravel(), minlength=ens.shape[0] + 1)


# ----------------------------------------------------------------------------- spectra


SPECTRA = ("fft", "dct")


def power_spectrum(field: np.ndarray, dx: float = 1.0, dy: float = 1.0, mask=None,
                   method: str = "fft") -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged (summed over annuli) power spectrum of (..., ny, nx) fields.

    Returns wavenumbers k (cycles per unit of dx) and E(k), averaged over leading axes
    and normalized so that sum(E) equals the ocean-mean variance (Parseval). Masks: the
    ocean mean is removed, land is set to 0 and the power is divided by the ocean
    fraction, so a field's energy does not depend on how much land surrounds it.

    ``method``: 'fft' treats the grid as periodic; 'dct' (orthonormal DCT-II, i.e. the
    mirror-extended field; Denis et al. 2002, MWR 130, for limited-area grids) does not
    wrap a closed basin around, whose walls would otherwise become jumps: in the gyre the
    periodic wrap puts 700 times more of v's variance in the upper half of the
    wavenumbers than the DCT finds, and the upper band of ssh then measures the values
    on the walls rather than small scales.
    """
    power, kx, ky, dk = mode_power(field, dx, dy, mask, method)
    energy = np.bincount(_annulus(kx, ky, dk).ravel(), weights=power.ravel())
    return np.arange(len(energy)) * dk, energy


def mode_power(field: np.ndarray, dx: float = 1.0, dy: float = 1.0, mask=None,
               method: str = "fft") -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The unbinned power of ``power_spectrum``: (ny, nx) power per mode (averaged over leading
    axes), |kx| and |ky| of each mode, and the annulus width dk."""
    if method not in SPECTRA:
        raise ValueError(f"power_spectrum method must be one of {SPECTRA}, got {method!r}")
    field = np.asarray(field, dtype=float)
    ny, nx = field.shape[-2:]
    w = _weights(mask, field.shape)
    ocean = w.sum(axis=(-2, -1), keepdims=True)
    anomaly = (field - (field * w).sum(axis=(-2, -1), keepdims=True) / np.maximum(ocean, 1)) * w
    if method == "fft":
        power = np.abs(np.fft.fft2(anomaly)) ** 2 / (nx * ny) / np.maximum(ocean, 1)
        kx, ky = np.fft.fftfreq(nx, d=dx), np.fft.fftfreq(ny, d=dy)
        dk = max(1 / (nx * dx), 1 / (ny * dy))  # coarser fundamental: every annulus holds modes
    else:
        d_y, d_x = (dct_matrix(n, dtype=torch.float64).numpy() for n in (ny, nx))
        power = (d_y @ anomaly @ d_x.T) ** 2 / np.maximum(ocean, 1)
        kx, ky = np.arange(nx) / (2 * nx * dx), np.arange(ny) / (2 * ny * dy)
        dk = max(1 / (2 * nx * dx), 1 / (2 * ny * dy))
    power = power.reshape(-1, ny, nx).mean(axis=0)
    return (power, *np.meshgrid(np.abs(kx), np.abs(ky), indexing="xy"), dk)


def _annulus(kx: np.ndarray, ky: np.ndarray, dk: float) -> np.ndarray:
    """Index of each mode's annulus of width dk."""
    return np.rint(np.hypot(kx, ky) / dk).astype(int)


def high_k_ratio(pred: np.ndarray, truth: np.ndarray, dx: float = 1.0, dy: float = 1.0, mask=None,
                 method: str = "fft") -> float:
    """Predicted over true energy in the upper half of wavenumbers, k_nyq/2 < k <= k_nyq.

    Corners beyond the Nyquist circle are left out (they hold only diagonal modes).
    ``pred`` may carry extra leading axes (members): spectra are averaged over them.
    """
    return high_k_energy(pred, dx, dy, mask, method) / max(high_k_energy(truth, dx, dy, mask, method), 1e-300)


def high_k_energy(field: np.ndarray, dx: float = 1.0, dy: float = 1.0, mask=None, method: str = "fft") -> float:
    """Energy of ``power_spectrum`` in the upper half of wavenumbers, k_nyq/2 < k <= k_nyq."""
    k, energy = power_spectrum(field, dx, dy, mask, method)
    return float(energy[_upper_band(k, dx, dy)].sum())


def _upper_band(k: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """k_nyq/2 < k <= k_nyq: corners beyond the Nyquist circle (only diagonal modes) are left out."""
    k_nyq = min(1 / (2 * dx), 1 / (2 * dy))
    return (k > k_nyq / 2) & (k <= k_nyq * (1 + 1e-9))


def high_k_by_direction(field: np.ndarray, dx: float = 1.0, dy: float = 1.0, mask=None,
                        method: str = "dct") -> dict:
    """Energy of the upper wavenumber band split by direction: "kx" sums the modes with
    |kx| > |ky| (the field varies fastest along x), "ky" those with |ky| > |kx|; modes on
    the diagonal count half to each."""
    power, kx, ky, dk = mode_power(field, dx, dy, mask, method)
    band = _upper_band(_annulus(kx, ky, dk) * dk, dx, dy)  # the annuli of high_k_energy
    weight_x = np.where(kx > ky, 1.0, np.where(kx == ky, 0.5, 0.0))
    return {"kx": float((power * weight_x)[band].sum()), "ky": float((power * (1 - weight_x))[band].sum())}


def high_k_spread_skill(ens: np.ndarray, truth: np.ndarray, dx: float = 1.0, dy: float = 1.0, mask=None,
                        method: str = "dct") -> float:
    """spread/skill of the upper half of wavenumbers (band of ``high_k_ratio``): is the
    ensemble's small-scale spread the size of its small-scale error? Spread energy: the
    members' deviations from their mean, times M/(M-1) (unbiased); error: mean minus truth;
    ratio sqrt((M+1)/M) sqrt(spread/error), as ``spread_skill``."""
    ens = np.asarray(ens, dtype=float)
    m = ens.shape[0]
    if m < 2:
        raise ValueError(f"spread/skill needs at least 2 members, got {m}")
    mean = ens.mean(axis=0)
    spread = high_k_energy(ens - mean, dx, dy, mask, method) * m / (m - 1)
    return float(np.sqrt((m + 1) / m * spread / max(high_k_energy(mean - truth, dx, dy, mask, method), 1e-300)))


# ----------------------------------------------------------------------------- physics


def _area_integral(values: np.ndarray, mask, cell_area) -> np.ndarray:
    """Integral over ocean cells of (..., ny, nx) values; cell_area scalar or (ny, nx) in m2."""
    w = _weights(mask, values.shape) * np.broadcast_to(np.asarray(cell_area, dtype=float), values.shape[-2:])
    return (values * w).sum(axis=(-2, -1))


def kinetic_energy(u: np.ndarray, v: np.ndarray, mask=None, cell_area=1.0, rho0: float = RHO0) -> np.ndarray:
    """Kinetic energy per unit depth of surface currents, rho0/2 int (u^2 + v^2) dA, in J m-1."""
    return 0.5 * rho0 * _area_integral(np.asarray(u) ** 2 + np.asarray(v) ** 2, mask, cell_area)


def volume_anomaly(ssh: np.ndarray, mask=None, cell_area=1.0) -> np.ndarray:
    """Volume above the geoid, int ssh dA, in m3: conserved by a closed basin."""
    return _area_integral(np.asarray(ssh), mask, cell_area)


def heat_content(temp: np.ndarray, mask=None, cell_area=1.0, thickness: float = 1.0,
                 rho0: float = RHO0, cp: float = CP0) -> np.ndarray:
    """Heat content rho0 cp int T dV of a layer of ``thickness`` m, in J (T in degC)."""
    return rho0 * cp * thickness * _area_integral(np.asarray(temp), mask, cell_area)


def summarize(ens: np.ndarray, truth: np.ndarray, mask=None, dx: float = 1.0, dy: float = 1.0) -> dict:
    """The headline scores of one variable: (M, T, ny, nx) ensemble vs (T, ny, nx) truth.

    A deterministic forecast passed as identical members gets CRPS = MAE and spread 0.
    """
    m = ens.shape[0]
    out = {"rmse": ensemble_mean_rmse(ens, truth, mask), "high_k_ratio": high_k_ratio(ens, truth, dx, dy, mask),
           "high_k_ratio_dct": high_k_ratio(ens, truth, dx, dy, mask, "dct")}
    out["crps"] = crps_fair(ens, truth, mask) if m > 1 else _wmean(np.abs(ens[0] - truth), mask)
    if m > 1:
        out["spread"], out["skill"], out["spread_skill"] = spread_skill(ens, truth, mask)
        out["spread_skill_high_k_dct"] = high_k_spread_skill(ens, truth, dx, dy, mask, "dct")
    return out
