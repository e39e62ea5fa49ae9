"""Parameters θ of the K ensemble members, drawn from the prior box of the config.

The draw is a pure function of the config (design, seed, bounds, K), so the
worker can recompute the θ of every member instead of trusting a file; preprod
still writes ``parameters.csv`` for people and post-processing.

The space-filling designs of [0, 1)^dims (``[ensemble] design``) live here, numpy
only: deployment needs neither torch nor the ML package ``models``, which does
not import ``bridge``; a prior box there maps such points into itself
(``models.sbi.BoxUniform.from_unit``).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig


def latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, dims)`` points in [0, 1): each column has exactly one point per stratum [i/n, (i+1)/n)."""
    strata = np.array([rng.permutation(n) for _ in range(dims)], dtype=float).reshape(dims, n).T
    return (strata + rng.random((n, dims))) / n


def uniform_design(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, dims)`` independent uniform points in [0, 1)."""
    return rng.random((n, dims))


DESIGNS = {"lhs": latin_hypercube, "uniform": uniform_design}  # [ensemble] design


def draw_parameters(cfg: "DeployConfig") -> np.ndarray:
    """θ of every member, shape ``(members, len(parameters))``, scaled to ``[low, high)``; the values given
    by ``[[parameters]] values`` instead of a draw when they are set (one value is every member's)."""
    params = cfg.parameters
    if params and params[0].values:
        return np.array([np.broadcast_to(p.values, (cfg.ocean.members,)) for p in params], dtype=float).T
    rng = np.random.default_rng(cfg.ensemble.seed)
    unit = DESIGNS[cfg.ensemble.design](cfg.ocean.members, len(params), rng)
    low = np.array([p.low for p in params], dtype=float)
    high = np.array([p.high for p in params], dtype=float)
    return low + unit * (high - low)


def parameters_csv(cfg: "DeployConfig", theta: np.ndarray) -> str:
    """``member,component,<names...>`` with full float precision (repr round-trips)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["member", "component", *(p.name for p in cfg.parameters)])
    for k, (comp, row) in enumerate(zip(cfg.components, theta), start=1):
        writer.writerow([k, comp, *(repr(float(v)) for v in row)])
    return out.getvalue()


def read_parameters_csv(path: Path) -> dict[str, dict[str, float]]:
    """component -> {parameter name: value}, as written by :func:`parameters_csv`."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {r.pop("component"): {k: float(v) for k, v in r.items() if k != "member"} for r in rows}
