"""Is a spin-up done? The equilibrium detector and the adjustment time of a metric's time series (numpy only).

The detector works on annual means (``annual_means``). Over the last ``window_years`` of them it fits a
least-squares line and compares the drift that trend would make over ``horizon_years`` with the interannual
variability, the standard deviation of the annual means about the line:

    equilibrated  <=>  |trend| * horizon_years <= factor * std

The std is taken about the fitted line, not about the mean: a drift would otherwise inflate the std and hide
itself (a pure drift has std 0 about its line and is never equilibrated). A window of curved annual means
fools that test: a series that first falls and then rises (the gyre's heat content, ``gyre/README.md``)
has a small trend and a large std about its line at the bottom of its dip. So a series counts as
equilibrated only once ``persist_years`` consecutive windows pass (``first_equilibrated``): the windows
after the dip hold the steady rise and fail. The defaults (30-year windows, a 10-year horizon, factor 2,
3 windows in a row) were chosen on the training members of the first spin-up study, by
``gyre/tools/detector_choice.py`` (the rule with the fewest members admitted before their heat content
settled or never admitted): they admit those members in model years 84-90. A window of 10 annual means of
pure noise with a 10-year horizon passes with probability 0.89 (drift / std is 10/sqrt(82.5) |t|, t
Student's with 8 degrees of freedom: it passes for |t| <= 1.82); the default window, with its 30 means,
passes noise with probability above 0.999.

The adjustment time (``adjustment_time``) of a series from rest is its e-folding time: by default the first
time the series has covered 1 - 1/e of the way from its first value to its final value (the mean of its last
``window_years``), linearly interpolated between records; it needs no model of the curve and also serves an
adjustment that overshoots. Give it annual means: on raw records the noise crosses the level first (by
about noise / slope; 0.7 years early for tau = 20 years in the test). ``method="fit"`` fits
a + b exp(-t/tau) by least squares instead (a, b, tau free), which uses every record and is steadier on
noisy, monotone series.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .ocean_metrics import YEAR

__all__ = ["EquilibriumConfig", "Verdict", "annual_means", "trend_test", "first_equilibrated", "adjustment_time",
           "ADJUSTMENT_METHODS", "YEAR"]

ADJUSTMENT_METHODS = ("crossing", "fit")
E_FOLD = 1.0 - math.exp(-1.0)  # share of the way covered after one e-folding time


@dataclass(frozen=True)
class EquilibriumConfig:
    """The detector's rule: over ``window_years`` annual means, |trend| * horizon_years <= factor * std, in
    ``persist_years`` consecutive windows."""
    window_years: int = 30  # annual means per window (the trend and the std are fitted on them)
    horizon_years: float = 10.0  # the drift is the trend carried over this many years
    factor: float = 2.0  # allowed drift, in interannual standard deviations
    persist_years: int = 3  # consecutive windows (one a year) that must pass

    def __post_init__(self):
        _check_integer("window_years", self.window_years, 3, "a line and a residual")
        _check_integer("persist_years", self.persist_years, 1, "one window at least")
        if not self.horizon_years > 0:
            raise ValueError(f"EquilibriumConfig.horizon_years must be > 0, got {self.horizon_years!r}")
        if not self.factor > 0:
            raise ValueError(f"EquilibriumConfig.factor must be > 0, got {self.factor!r}")


def _check_integer(name: str, value, least: int, why: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
        raise ValueError(f"EquilibriumConfig.{name} must be an integer >= {least} ({why}), got {value!r}")


@dataclass(frozen=True)
class Verdict:
    """One window's test: trend (units per year), std about the trend, drift = |trend| * horizon, and the answer."""
    trend: float
    std: float
    drift: float
    equilibrated: bool


def annual_means(seconds, values, year: float = YEAR) -> tuple[np.ndarray, np.ndarray]:
    """Means over complete model years [k year, (k+1) year) -> (year index k, mean); partial years are left out.

    A year is complete when the series reaches its end to within one record spacing (its last record may
    sit one output interval before the year's end).
    """
    seconds, values = np.asarray(seconds, dtype=float), np.asarray(values, dtype=float)
    if seconds.shape != values.shape or seconds.ndim != 1:
        raise ValueError(f"annual_means needs two 1-D series of one length, got {seconds.shape} and {values.shape}")
    if len(seconds) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0)
    spacing = float(np.median(np.diff(seconds)))
    labels = np.floor(seconds / year + 1e-9).astype(np.int64)
    years = np.array([k for k in np.unique(labels) if seconds[-1] + 1.001 * spacing >= (k + 1) * year], np.int64)
    return years, np.array([values[labels == k].mean() for k in years])


def trend_test(annual, config: EquilibriumConfig = EquilibriumConfig()) -> Verdict:
    """The detector on the last ``window_years`` annual means of a series."""
    annual = np.asarray(annual, dtype=float)
    if len(annual) < config.window_years:
        raise ValueError(f"the equilibrium test needs {config.window_years} annual means, got {len(annual)}")
    window = annual[-config.window_years:]
    years = np.arange(config.window_years, dtype=float)
    trend, intercept = np.polyfit(years, window, 1)
    residual = window - (trend * years + intercept)
    std = float(np.sqrt((residual ** 2).sum() / (config.window_years - 2)))  # two fitted parameters
    drift = abs(float(trend)) * config.horizon_years
    return Verdict(float(trend), std, drift, drift <= config.factor * std)


def first_equilibrated(annual, config: EquilibriumConfig = EquilibriumConfig()) -> int | None:
    """Number of annual means up to the end of the first window that completes ``persist_years`` passing
    windows in a row (None: none does).  ``annual`` is one series, or one row per metric: every row must pass
    in the same windows."""
    rows = np.atleast_2d(np.asarray(annual, dtype=float))
    in_a_row = 0
    for end in range(config.window_years, rows.shape[1] + 1):
        passed = all(trend_test(row[:end], config).equilibrated for row in rows)
        in_a_row = in_a_row + 1 if passed else 0
        if in_a_row >= config.persist_years:
            return end
    return None


def adjustment_time(seconds, values, method: str = "crossing",
                    config: EquilibriumConfig = EquilibriumConfig(), year: float = YEAR) -> float:
    """e-folding adjustment time of a series from rest (s); NaN when it does not adjust (see the module doc)."""
    seconds, values = np.asarray(seconds, dtype=float), np.asarray(values, dtype=float)
    if method not in ADJUSTMENT_METHODS:
        raise ValueError(f"adjustment_time: unknown method {method!r}; choose one of {ADJUSTMENT_METHODS}")
    final = values[seconds >= seconds[-1] - config.window_years * year].mean()
    if method == "fit":
        return _fitted_efolding(seconds - seconds[0], values)
    return _first_crossing(seconds - seconds[0], values, values[0] + E_FOLD * (final - values[0])) \
        if final != values[0] else math.nan


def _first_crossing(t: np.ndarray, x: np.ndarray, level: float) -> float:
    """First time x reaches ``level`` from x[0]'s side, linearly interpolated (NaN if never)."""
    side = np.sign(level - x[0])
    past = np.flatnonzero(side * (x - level) >= 0)
    if len(past) == 0:
        return math.nan
    k = past[0]
    return float(t[k - 1] + (level - x[k - 1]) / (x[k] - x[k - 1]) * (t[k] - t[k - 1]))


def _fitted_efolding(t: np.ndarray, x: np.ndarray) -> float:
    """tau of the least-squares fit x ~ a + b exp(-t/tau): a and b solved exactly for each tau, tau by search."""
    def misfit(log_tau: float) -> float:
        basis = np.stack([np.ones_like(t), np.exp(-t / math.exp(log_tau))], axis=1)
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        return float(((basis @ coef - x) ** 2).sum())

    span = t[-1] - t[0]
    spacing = float(np.min(np.diff(t)))
    grid = np.linspace(math.log(spacing / 10), math.log(span * 10), 200)
    best = int(np.argmin([misfit(g) for g in grid]))
    if best in (0, len(grid) - 1):  # the optimum is off the searched range: no adjustment within the record
        return math.nan
    lo, hi = grid[best - 1], grid[best + 1]
    for _ in range(60):  # golden-section refinement of log tau
        m1, m2 = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, m2) if misfit(m1) < misfit(m2) else (m1, hi)
    return math.exp(0.5 * (lo + hi))
