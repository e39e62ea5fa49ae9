"""Space-filling designs of [0, 1)^dims: how parameters θ are drawn from a prior box, both for the
ensemble members of a deployment (bridge/deploy/ensemble.py) and for simulation-based inference
(models/sbi.py).  numpy only, so the deploy side imports it without torch."""
from __future__ import annotations

import numpy as np


def latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, dims)`` points in [0, 1): each column has exactly one point per stratum [i/n, (i+1)/n)."""
    strata = np.array([rng.permutation(n) for _ in range(dims)], dtype=float).reshape(dims, n).T
    return (strata + rng.random((n, dims))) / n


def uniform_design(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, dims)`` independent uniform points in [0, 1)."""
    return rng.random((n, dims))


DESIGNS = {"lhs": latin_hypercube, "uniform": uniform_design}
