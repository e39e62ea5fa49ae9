"""Metrics against hand-computed cases and closed forms."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import metrics as M


def test_crps_hand_computed():
    # members 0, 1, 3, truth 2: mean |x - y| = (2 + 1 + 1)/3 = 4/3;
    # sum_{i,j} |x_i - x_j| = 2 (1 + 3 + 2) = 12, / (2*3*2) = 1  ->  CRPS_F = 1/3
    ens = np.array([0.0, 1.0, 3.0]).reshape(3, 1)
    assert M.crps_fair(ens, np.array([2.0])) == pytest.approx(1 / 3)
    # two members straddling the truth symmetrically: 1 - 2*2/(2*2*1) = 0
    assert M.crps_fair(np.array([[-1.0], [1.0]]), np.array([0.0])) == pytest.approx(0.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=9), st.floats(-100, 100))
def test_crps_sorted_form_equals_pairwise_definition(members, y):
    x = np.array(members)
    m = len(x)
    brute = np.mean(np.abs(x - y)) - np.abs(x[:, None] - x[None]).sum() / (2 * m * (m - 1))
    assert M.crps_fair(x.reshape(m, 1), np.array([y])) == pytest.approx(brute, abs=1e-9)


def test_crps_large_ensemble_matches_gaussian_closed_form():
    """CRPS(N(0, s^2), y) = s [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)], z = y / s."""
    rng = np.random.default_rng(0)
    s, y = 2.0, 1.3
    z = y / s
    Phi = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    closed = s * (z * (2 * Phi - 1) + 2 * phi - 1 / math.sqrt(math.pi))
    ens = rng.normal(0, s, size=(20, 4000))  # 20 members, 4000 independent cases
    assert M.crps_fair(ens, np.full(4000, y)) == pytest.approx(closed, rel=0.02)


def _calibrated(m=10, n=(50, 16, 16), seed=1):
    """Truth and members are iid draws around a random 'predictable' signal."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    scale = 0.5 + rng.random(n)
    return signal + scale * rng.normal(size=(m,) + n), signal + scale * rng.normal(size=n)


def test_spread_skill_of_calibrated_ensemble_is_one():
    ens, truth = _calibrated()
    spread, skill, ratio = M.spread_skill(ens, truth)
    assert ratio == pytest.approx(1.0, abs=0.03)
    _, _, under = M.spread_skill(0.5 * (ens - ens.mean(0)) + ens.mean(0), truth)
    assert under < 0.6  # an underdispersive ensemble is flagged


def test_rank_histogram_flat_for_calibrated_and_u_shaped_for_underdispersive():
    ens, truth = _calibrated(m=9)
    counts = M.rank_histogram(ens, truth)
    assert counts.sum() == truth.size and len(counts) == 10
    expected = truth.size / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 30  # chi2 with 9 dof: 99.95% quantile is ~29.7
    narrow = 0.3 * (ens - ens.mean(0)) + ens.mean(0)
    c = M.rank_histogram(narrow, truth)
    assert c[0] + c[-1] > 4 * (c[4] + c[5])


def test_rmse_and_masked_mean():
    truth = np.zeros((4, 4))
    ens = np.ones((3, 4, 4))
    ens[:, 0, 0] = 100.0
    mask = np.ones((4, 4))
    mask[0, 0] = 0
    assert M.ensemble_mean_rmse(ens, truth, mask) == pytest.approx(1.0)
    assert M.ensemble_mean_rmse(ens, truth) > 1.0


def test_spectrum_of_sine_peak_and_energy():
    n, L, amp, k0 = 64, 64e3, 3.0, 4
    dx = L / n
    x = np.arange(n) * dx
    field = amp * np.sin(2 * np.pi * k0 * x / L)[None, :] * np.ones((n, 1))
    k, E = M.power_spectrum(field, dx, dx)
    assert k[np.argmax(E)] == pytest.approx(k0 / L)
    assert E.sum() == pytest.approx(amp ** 2 / 2)  # Parseval: variance of the sine
    assert E[np.argmax(E)] == pytest.approx(amp ** 2 / 2)


def test_masked_spectrum_keeps_peak_and_energy():
    n, amp, k0 = 64, 2.0, 4  # period 16 points
    field = amp * np.sin(2 * np.pi * k0 * np.arange(n) / n)[None, :] * np.ones((n, 1))
    mask = np.ones((n, n))
    mask[:, :16] = 0  # one full period of land on the west: 3 periods of ocean remain
    field_land = np.where(mask > 0, field, 1e3)  # land garbage must not leak in
    k, E = M.power_spectrum(field_land, mask=mask)
    assert abs(k[np.argmax(E)] - k0 / n) <= 1 / n  # leakage may shift it at most one bin
    assert E.sum() == pytest.approx(amp ** 2 / 2, rel=1e-9)  # ocean variance, not diluted by land
    assert E[np.argmax(E) - 1: np.argmax(E) + 2].sum() > 0.7 * E.sum()


def test_dct_spectrum_of_a_wall_mode_and_parseval():
    """A closed-basin mode cos(pi m (i + 1/2) / n) is one DCT mode at k = m / (2 n dx)."""
    n, m, amp, dx = 48, 6, 2.0, 1e3
    field = amp * np.cos(np.pi * m * (np.arange(n) + 0.5) / n)[None, :] * np.ones((n, 1))
    k, E = M.power_spectrum(field, dx, dx, method="dct")
    assert k[np.argmax(E)] == pytest.approx(m / (2 * n * dx))
    assert E.max() == pytest.approx(amp ** 2 / 2) and E.sum() == pytest.approx(amp ** 2 / 2)
    noise = np.random.default_rng(1).normal(size=(5, 20, 28))
    assert M.power_spectrum(noise, method="dct")[1].sum() == pytest.approx(noise.var(axis=(-2, -1)).mean())
    with pytest.raises(ValueError, match="method"):
        M.power_spectrum(noise, method="wavelet")


def test_periodic_wrap_turns_a_smooth_basin_gradient_into_small_scales():
    """A north-south ramp (smooth in a closed basin) is a sawtooth for the FFT: its upper
    wavenumbers hold energy that the DCT, which does not wrap the walls, does not see."""
    n = 64
    ramp = np.linspace(-1, 1, n)[:, None] * np.ones((1, n))
    band = {}
    for method in M.SPECTRA:
        k, E = M.power_spectrum(ramp, method=method)
        band[method] = E[(k > 0.25) & (k <= 0.5)].sum() / E.sum()
    assert band["fft"] > 1e-3 and band["dct"] < 1e-5


def test_high_k_ratio_detects_smoothing():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(8, 32, 32))
    assert M.high_k_ratio(truth, truth) == pytest.approx(1.0)
    smooth = 0.25 * (np.roll(truth, 1, -1) + np.roll(truth, -1, -1) + np.roll(truth, 1, -2) + np.roll(truth, -1, -2))
    assert M.high_k_ratio(smooth, truth) < 0.5
    members = truth[None] + 0 * rng.normal(size=(4, 8, 32, 32))
    assert M.high_k_ratio(members, truth) == pytest.approx(1.0)
    assert M.high_k_ratio(smooth, truth, method="dct") < 0.5


def test_high_k_spread_skill_is_one_when_calibrated_and_flags_small_scale_excess():
    """Calibrated iid members (white, so every band holds spread): ~1. Extra small-scale noise
    in the members only (+-1 stripes at the x Nyquist wavenumber, random amplitude) raises the
    band ratio (a checkerboard would sit in the corner beyond the Nyquist circle, outside the band)."""
    ens, truth = _calibrated(m=8)
    assert M.high_k_spread_skill(ens, truth) == pytest.approx(1.0, abs=0.05)
    rng = np.random.default_rng(2)
    stripes = (-1.0) ** np.arange(16)
    noisy = ens + 2 * stripes * rng.normal(size=ens.shape[:2] + (1, 1))
    assert M.high_k_spread_skill(noisy, truth) > 1.5
    with pytest.raises(ValueError, match="at least 2 members"):
        M.high_k_spread_skill(ens[:1], truth)


def test_high_k_by_direction_splits_stripes_and_sums_to_the_band():
    """Stripes varying along x at 3/4 of the Nyquist wavenumber sit in "kx"; the same along
    y in "ky"; for any field the two parts add up to the band energy of high_k_energy."""
    n = 32
    x = np.arange(n)
    along_x = np.broadcast_to(np.cos(np.pi * 0.75 * (x + 0.5)), (n, n))  # DCT mode 24 of 32 in x
    split = M.high_k_by_direction(along_x)
    assert split["ky"] == pytest.approx(0.0, abs=1e-12) and split["kx"] == pytest.approx(along_x.var(), rel=1e-9)
    assert M.high_k_by_direction(along_x.T)["ky"] == pytest.approx(split["kx"])
    field = np.random.default_rng(3).normal(size=(4, n, n))
    parts = M.high_k_by_direction(field)
    assert parts["kx"] + parts["ky"] == pytest.approx(M.high_k_energy(field, method="dct"))
    assert parts["kx"] == pytest.approx(parts["ky"], rel=0.2)  # white noise: no direction


def test_physical_diagnostics():
    u = np.full((2, 3, 4), 0.5)
    v = np.full((2, 3, 4), -0.5)
    mask = np.ones((3, 4))
    mask[0] = 0  # 8 ocean cells
    area = 1e6
    assert M.kinetic_energy(u, v, mask, area)[0] == pytest.approx(0.5 * M.RHO0 * 0.5 * 8 * area)
    assert M.volume_anomaly(np.full((3, 4), 0.1), mask, area) == pytest.approx(0.1 * 8 * area)
    hc = M.heat_content(np.full((3, 4), 10.0), mask, area, thickness=5.0)
    assert hc == pytest.approx(M.RHO0 * M.CP0 * 10.0 * 8 * area * 5.0)
