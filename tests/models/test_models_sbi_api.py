"""models/sbi.py as sbi users call it (issue 21): sample((n,), x), an observation shaped (1, F), batched
log_prob, tensors that live on a device or require grad, a CUDA device that is not there, sbi's own priors;
NPSE and FMPE through sbi's vector-field posterior; and the x normalizer refitted when simulations are appended
between two train() calls."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.sbi import NPE, BoxUniform, NPEConfig, as_prior

A = torch.tensor([[1.0, 0.5], [-0.3, 1.2], [0.8, -0.7]], dtype=torch.float64)


def simulate(theta, g):
    return theta @ A.T + 0.5 * torch.randn(len(theta), 3, generator=g, dtype=torch.float64)


@pytest.fixture(scope="module")
def npe():
    """A few online steps of the default estimator (NSF): enough for shapes and plumbing, not accuracy."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    prior = BoxUniform([-2.0, -2.0], [2.0, 2.0], names=("a", "b"))
    npe = NPE(prior, NPEConfig(norm_warmup_steps=3))
    for _ in range(10):
        theta = prior.sample(64, g)
        npe.train_step(theta, simulate(theta, g))
    return npe


def test_sample_takes_sbi_shapes_and_a_batch_of_one_observation(npe):
    post = npe.build_posterior()
    x_o = torch.tensor([0.3, 0.1, -0.2])
    assert post.sample((7,), x_o).shape == (7, 2) and post.sample(7, x_o).shape == (7, 2)
    assert post.sample((3, 4), x_o).shape == (3, 4, 2)
    a = post.sample((5,), x_o[None], torch.Generator().manual_seed(1))   # x_o shaped (1, F), as sbi's
    b = post.sample(5, x_o, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="sample_batched / log_prob_batched"):
        post.sample(5, torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"sample_shape must be an int n or a shape like \(n,\)"):
        post.sample("many", x_o)


def test_batched_log_prob_matches_one_observation_at_a_time(npe):
    post = npe.build_posterior()
    xs = torch.tensor([[0.3, 0.1, -0.2], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    theta = post.sample_batched((6,), xs, torch.Generator().manual_seed(2))
    assert theta.shape == (6, 3, 2)
    lp = post.log_prob_batched(theta, xs)
    assert lp.shape == (6, 3)
    for b in range(3):
        torch.testing.assert_close(lp[:, b], post.log_prob(theta[:, b], xs[b]), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match=r"expected \(n, 3, 2\)"):
        post.log_prob_batched(theta[:, :2], xs)


def test_tensors_that_require_grad_are_taken_as_they_are(npe):
    theta = torch.zeros(4, 2, requires_grad=True)
    x = torch.ones(4, 3, requires_grad=True)
    assert npe.train_step(theta, x) is not None
    post = npe.build_posterior()
    x_o = torch.tensor([0.3, 0.1, -0.2], requires_grad=True)
    assert torch.isfinite(post.log_prob(theta, x_o)).all() and post.sample(3, x_o).shape == (3, 2)


def test_a_cuda_device_that_is_not_there_fails_at_once_naming_the_setting():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=r"device='cuda' but this machine has no usable CUDA GPU"):
        NPE(BoxUniform([0.0], [1.0]), device="cuda")


def test_sbi_priors_are_accepted():
    from sbi.utils import BoxUniform as SbiBox
    prior = as_prior(SbiBox(torch.tensor([0.0, -1.0]), torch.tensor([1.0, 1.0])))
    assert isinstance(prior, BoxUniform) and prior.high.tolist() == [1.0, 1.0]
    gauss = as_prior(torch.distributions.MultivariateNormal(torch.zeros(2), 2 * torch.eye(2)))
    assert torch.allclose(gauss.cov, 2 * torch.eye(2, dtype=torch.float64))
    npe = NPE(SbiBox(torch.zeros(1), torch.ones(1)), NPEConfig(estimator="mixture"))
    assert npe.prior.dim == 1
    with pytest.raises(TypeError, match="prior Exponential is not supported"):
        NPE(torch.distributions.Exponential(torch.ones(1)))


@pytest.mark.parametrize("estimator, posterior_class", [("npse", "VectorFieldPosterior"),
                                                         ("fmpe", "VectorFieldPosterior"),
                                                         ("mixture", "NoneType")])
def test_the_other_estimators_train_online_and_sample_inside_the_box(estimator, posterior_class):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(4)
    prior = BoxUniform([-2.0, -2.0], [2.0, 2.0])
    npe = NPE(prior, NPEConfig(estimator=estimator, norm_warmup_steps=2))
    for _ in range(5):
        theta = prior.sample(32, g)
        assert np.isfinite(npe.train_step(theta, simulate(theta, g)))
    post = npe.build_posterior()
    assert type(post.sbi).__name__ == posterior_class
    s = post.sample((50,), torch.tensor([0.3, 0.1, -0.2]), g)
    assert s.shape == (50, 2) and bool(prior.contains(s).all())
    assert torch.isfinite(post.log_prob(s[:3], torch.tensor([0.3, 0.1, -0.2]))).all()
    other = NPE(prior, NPEConfig(estimator=estimator, norm_warmup_steps=2))
    other.load_state_dict(npe.state_dict())
    x_o = torch.tensor([0.3, 0.1, -0.2])
    torch.testing.assert_close(other.build_posterior().log_prob(s[:3], x_o), post.log_prob(s[:3], x_o))


def test_estimator_setting_is_validated():
    with pytest.raises(ValueError, match=r"NPEConfig.estimator must be one of \['nsf', 'npse', 'fmpe', 'mixture'\]"):
        NPEConfig(estimator="maf")


def test_a_mixture_state_written_before_sbi_still_loads():
    prior = BoxUniform([0.0], [1.0])
    npe = NPE(prior, NPEConfig(estimator="mixture", norm_warmup_steps=1))
    npe.train_step(torch.rand(8, 1), torch.randn(8, 3))
    npe.train_step(torch.rand(8, 1), torch.randn(8, 3))
    state = npe.state_dict()
    del state["config"]["estimator"], state["config"]["transforms"]  # the state of the hand-written NPE
    other = NPE(prior, NPEConfig(estimator="mixture", norm_warmup_steps=1))
    other.load_state_dict(state)
    assert other.step == 2
    with pytest.raises(ValueError, match="does not match this one"):
        NPE(prior, NPEConfig(norm_warmup_steps=1)).load_state_dict(state)


def test_the_x_normalizer_is_refitted_on_every_train():
    """The bug of issue 21: after appending simulations shifted by +5 and training again, the normalizer kept
    the statistics of the first train() only."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(5)
    prior = BoxUniform([-2.0, -2.0], [2.0, 2.0])
    npe = NPE(prior, NPEConfig(estimator="mixture", max_epochs=2))
    theta = prior.sample(200, g)
    x = simulate(theta, g)
    npe.append_simulations(theta, x).train()
    torch.testing.assert_close(npe.net.norm.mean, x.float().mean(0), atol=1e-4, rtol=0)
    theta2 = prior.sample(200, g)
    x2 = simulate(theta2, g) + 5.0
    npe.append_simulations(theta2, x2).train()
    both = torch.cat([x, x2]).float()
    torch.testing.assert_close(npe.net.norm.mean, both.mean(0), atol=1e-4, rtol=0)
    torch.testing.assert_close(npe.net.norm.std, both.std(0), atol=1e-3, rtol=1e-3)
    assert bool(npe.net.norm.frozen)
