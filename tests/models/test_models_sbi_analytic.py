"""sbi's neural spline flow (the default estimator of models/sbi.py) against a closed-form posterior, with
sbi's diagnostics (C2ST, SBC ranks, coverage, TARP); and a deliberately under-dispersed estimator that the
calibration check must fail.

Linear-Gaussian simulator x = A θ + ε, ε ~ N(0, σ² I), prior θ ~ N(0, I) (2 parameters, 3 data): the posterior
is N(P Aᵀ x / σ², P) with P = (I + AᵀA / σ²)⁻¹.  Budget: 10⁴ simulations, 25 epochs of batch 256 (about
1000 Adam steps; ~20 s on one CPU thread), trained once for the module.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.sbi import NPE, GaussianPrior, NPEConfig, c2st, calibrated, calibration, diagnose

A = torch.tensor([[1.0, 0.5], [-0.3, 1.2], [0.8, -0.7]], dtype=torch.float64)
SIGMA = 0.5
POST_COV = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + A.T @ A / SIGMA ** 2)
SIMULATIONS = 10_000
CONFIG = NPEConfig(transforms=2, hidden=64, max_epochs=25, patience=25, batch_size=256, lr=3e-3)


def simulate(theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return theta @ A.T + SIGMA * torch.randn(len(theta), 3, generator=g, dtype=torch.float64)


def true_posterior(x_o: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    mean = POST_COV @ A.T @ x_o / SIGMA ** 2
    return mean + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(POST_COV).T


@pytest.fixture(scope="module")
def posterior():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    prior = GaussianPrior(np.zeros(2), np.eye(2), names=("a", "b"))
    theta = prior.sample(SIMULATIONS, g)
    npe = NPE(prior, CONFIG).append_simulations(theta, simulate(theta, g)).train()
    assert npe.config.estimator == "nsf" and type(npe.build_posterior().sbi).__name__ == "DirectPosterior"
    return npe.build_posterior()


@pytest.fixture(scope="module")
def held_out(posterior):
    """1000 (θ, x) from the joint and 300 posterior draws for each (one batched call through sbi)."""
    g = torch.Generator().manual_seed(2)
    theta = posterior.prior.sample(1000, g)
    x = simulate(theta, g)
    return theta, x, posterior.sample_batched((300,), x, g)


@pytest.mark.parametrize("theta_o", [(0.8, -0.5), (-0.6, -0.9)])
def test_c2st_against_the_true_posterior(posterior, theta_o):
    g = torch.Generator().manual_seed(1)
    x_o = simulate(torch.tensor([theta_o], dtype=torch.float64), g)[0]
    score = c2st(posterior.sample((1000,), x_o, g), true_posterior(x_o, 1000, g))
    print(f"\nC2ST at θ_o={theta_o}: {score:.3f}")
    assert score <= 0.6


def test_coverage_at_50_and_95_percent(held_out):
    theta, x, samples = held_out
    diag = calibration(theta, x, samples)
    cov = {level: [round(float(c), 3) for c in v] for level, v in diag["coverage"].items()}
    print(f"\ncoverage {cov}, error {diag['coverage_error']:.3f}, SBC KS p {diag['sbc_ks_pvals'].tolist()}, "
          f"TARP atc {diag['tarp_atc']:.3f}")
    assert diag["coverage_error"] <= 0.05 and calibrated(diag)
    assert diag["sbc_ranks"].shape == (1000, 2) and float(diag["sbc_ks_pvals"].min()) > 0.001
    assert abs(diag["tarp_atc"]) < 0.05


def test_an_under_dispersed_estimator_fails_the_check(held_out):
    """The same draws shrunk halfway toward each posterior's mean: too narrow, and the check says so."""
    theta, x, samples = held_out
    mean = samples.mean(0, keepdim=True)
    diag = calibration(theta, x, mean + 0.5 * (samples - mean))
    assert not calibrated(diag) and diag["coverage_error"] > 0.15
    assert float(diag["coverage"][0.5].max()) < 0.4 and float(diag["sbc_ks_pvals"].max()) < 1e-6
    assert diag["tarp_atc"] < -0.05  # TARP: under-dispersed


@pytest.mark.filterwarnings("ignore::UserWarning")  # sbi asks for hundreds of (θ, x): this checks the plumbing
def test_diagnose_samples_the_posterior_itself(posterior):
    g = torch.Generator().manual_seed(3)
    theta = posterior.prior.sample(100, g)
    diag = diagnose(posterior, theta, simulate(theta, g), n=100, generator=g)
    assert diag["sbc_ranks"].shape == (100, 2) and set(diag["coverage"]) == {0.5, 0.95}
