"""Choosing the sampler's churn settings on a validation set (never on the test set).

``CHURN_GRID`` is the declared grid: each entry names an S_churn and the sigma window
[S_min, S_max] in which Alg. 2 applies it (Karras et al. 2022; outside the window the
step is deterministic). ``select`` applies the rule: among the settings whose validation
high-k ratio lies in the target range, the one whose spread/skill is closest to 1 in log
distance; if none is in range, the one whose high-k ratio is nearest the range (log
distance), flagged ``high_k_in_range=False``. Ties keep the grid's order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from models.sampling import SamplerConfig

__all__ = ["ChurnSetting", "CHURN_GRID", "churn_grid", "Selection", "select", "effective_churn"]


@dataclass(frozen=True)
class ChurnSetting:
    """One grid entry: S_churn applied for sigma in [S_min, S_max] (Alg. 2 names)."""

    S_churn: float
    S_min: float = 0.0
    S_max: float = math.inf

    def __post_init__(self):
        if self.S_churn < 0 or not 0 <= self.S_min <= self.S_max:
            raise ValueError(f"ChurnSetting needs S_churn >= 0 and 0 <= S_min <= S_max, got {self}")

    def sampler(self, num_steps: int, sigma_min: float) -> SamplerConfig:
        return SamplerConfig(num_steps=num_steps, sigma_min=sigma_min, S_churn=self.S_churn,
                             S_min=self.S_min, S_max=self.S_max)


# The declared grid. "low": churn only at sigma <= 1 (the last ~8 of 18 steps, where the
# small scales are set); "high": only at sigma >= 1 (where the large scales, hence most of
# the spread, are set). gamma = min(S_churn / N, sqrt(2) - 1): at 18 steps 5 -> 0.28, 10 -> 0.41 (cap).
CHURN_GRID: dict[str, ChurnSetting] = {
    "det": ChurnSetting(0.0),
    "churn5": ChurnSetting(5.0),
    "churn10": ChurnSetting(10.0),
    "churn5_low": ChurnSetting(5.0, 0.0, 1.0),
    "churn10_low": ChurnSetting(10.0, 0.0, 1.0),
    "churn10_high": ChurnSetting(10.0, 1.0, math.inf),
}


def churn_grid(names: Sequence[str] | None = None) -> dict[str, ChurnSetting]:
    """The declared grid, or the named part of it; an unknown name raises naming the known ones."""
    if names is None:
        return dict(CHURN_GRID)
    unknown = [n for n in names if n not in CHURN_GRID]
    if unknown:
        raise ValueError(f"unknown churn setting(s) {unknown}; known: {list(CHURN_GRID)}")
    return {n: CHURN_GRID[n] for n in names}


def effective_churn(setting: SamplerConfig, num_steps: int) -> float:
    """S_churn giving ``num_steps`` steps the same total churn (sum of gamma per in-window
    step, times the in-window fraction of steps being the same) as ``setting`` has with its own
    step count, once gamma's cap sqrt(2) - 1 is applied: N * min(S_churn / N, sqrt(2) - 1)."""
    gamma = min(setting.S_churn / setting.num_steps, math.sqrt(2) - 1)
    if gamma * setting.num_steps / num_steps > math.sqrt(2) - 1:
        raise ValueError(f"{num_steps} steps cannot carry the churn of {setting} (gamma above sqrt(2) - 1)")
    return gamma * setting.num_steps


@dataclass(frozen=True)
class Selection:
    name: str
    high_k_in_range: bool
    spread_skill: float
    high_k: float


def _log_distance(value: float, lo: float, hi: float) -> float:
    return max(math.log(lo / value), math.log(value / hi), 0.0)


def select(scores: Mapping[str, Mapping[str, float]], high_k_range: tuple[float, float],
           high_k_key: str = "high_k_ratio_dct") -> Selection:
    """The setting chosen by the rule above from ``scores[name] = {"spread_skill", high_k_key, ...}``."""
    if not scores:
        raise ValueError("select: no scored settings")
    lo, hi = high_k_range
    for name, s in scores.items():
        for key in ("spread_skill", high_k_key):
            if key not in s or not (math.isfinite(s[key]) and s[key] > 0):
                raise ValueError(f"select: setting {name!r} has no positive finite {key!r} (got {s.get(key)!r})")
    inside = [n for n, s in scores.items() if lo <= s[high_k_key] <= hi]
    if inside:
        best = min(inside, key=lambda n: abs(math.log(scores[n]["spread_skill"])))
    else:
        best = min(scores, key=lambda n: (_log_distance(scores[n][high_k_key], lo, hi),
                                          abs(math.log(scores[n]["spread_skill"]))))
    return Selection(best, bool(inside), float(scores[best]["spread_skill"]), float(scores[best][high_k_key]))
