"""The conditional density estimators of NPE (models/sbi.py), built with the ``sbi`` package's own builders.

    net = Estimator("nsf", x_shape, dim, config, mask, z_batch, x_batch)
    net.loss(z, x)                           # (N,): one training step's loss, online or offline
    post = net.posterior(z_prior, device)    # sbi's DirectPosterior (nsf) / VectorFieldPosterior (npse, fmpe)

Which estimator (``NPEConfig.estimator``):

- ``"nsf"`` (default): a neural spline flow, ``sbi.neural_nets.posterior_nn(model="nsf")``; sampled and
  evaluated through ``sbi.inference.DirectPosterior``.
- ``"npse"``: a score-based (diffusion) posterior, ``posterior_score_nn`` (VE SDE); ``VectorFieldPosterior``
  sampled with the SDE.
- ``"fmpe"``: a flow-matching posterior, ``posterior_flow_nn``; ``VectorFieldPosterior`` sampled with the ODE.
- ``"mixture"``: our hand-written mixture of full-covariance Gaussians (models/posterior_net.py), sampled
  without sbi.

All of them see x through the same ``Embedding``: our per-channel ``Normalizer`` (online: fitted during
``norm_warmup_steps``; offline: on every appended simulation) and, for fields, the masked CNN
``FieldSummary``.  sbi's own x z-scoring is off (it is fitted once, on the builder's batch, which online is the
first batch only); θ is z-scored by sbi from 1000 draws of the prior in the unbounded space z (the prior box's
logit, or the Gaussian prior's whitening, models/sbi.py), where every estimator lives.  The sbi posteriors are
therefore built on the prior *in z*, whose support is all of R^D: nothing is rejected, there is no leakage
correction to estimate, and the map back to θ keeps every sample inside the box.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Independent, Normal, SigmoidTransform, TransformedDistribution, Uniform

from .normalize import Normalizer
from .posterior_net import FieldSummary, MixtureDensity, VectorSummary

__all__ = ["ESTIMATORS", "Embedding", "Estimator", "unbounded_prior"]

ESTIMATORS = ("nsf", "npse", "fmpe", "mixture")


class Embedding(nn.Module):
    """x -> features: the normalizer, then the masked CNN summary (fields) or nothing (vectors)."""

    def __init__(self, x_shape: tuple[int, ...], cfg, mask: torch.Tensor | None):
        super().__init__()
        field = len(x_shape) == 3
        self.norm = Normalizer([f"x{i}" for i in range(x_shape[0])])
        self.summary = FieldSummary(x_shape[0], cfg.summary_width, cfg.summary_dim) if field \
            else VectorSummary(x_shape[0])
        mask = torch.ones(1, 1, *x_shape[1:]) if field and mask is None else mask
        self.register_buffer("mask", None if mask is None else torch.as_tensor(mask, dtype=torch.float32)
                             .reshape(1, 1, *x_shape[1:]))
        self.out_dim = self.summary.out_dim
        # sbi's builders read the device of the embedding's first parameter; a vector summary has none
        self.device_probe = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # sbi's builders call the embedding once on a batch to learn its width, before the normalizer has
        # statistics (online); every training step and every sample come after it has them
        xn = self.norm.normalize(x, self.mask) if float(self.norm.count.min()) >= 2 else x
        return self.summary(xn, self.mask)


class _Mixture(nn.Module):
    """Our mixture density with the estimator interface (loss, log_prob, sample) of the sbi ones."""

    def __init__(self, embedding: Embedding, dim: int, cfg):
        super().__init__()
        self.embedding_net = embedding
        self.mdn = MixtureDensity(embedding.out_dim, dim, cfg.components, cfg.hidden)

    def log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.mdn.log_prob(z, self.embedding_net(x))

    def loss(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(z, x)


def unbounded_prior(prior, device) -> torch.distributions.Distribution:
    """The prior in z (float32, on ``device``): standard logistic per box dimension, standard normal for a
    whitened Gaussian prior.  Support R^D."""
    zeros = torch.zeros(prior.dim, device=device)
    if prior.low is None:
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)
    return Independent(TransformedDistribution(Uniform(zeros, torch.ones_like(zeros)), [SigmoidTransform().inv]), 1)


class Estimator(nn.Module):
    """The embedding and the density estimator over z of one ``NPEConfig.estimator`` kind."""

    def __init__(self, kind: str, x_shape: tuple[int, ...], dim: int, cfg, mask: torch.Tensor | None,
                 z_batch: torch.Tensor, x_batch: torch.Tensor):
        super().__init__()
        if kind not in ESTIMATORS:
            raise ValueError(f"NPEConfig.estimator must be one of {list(ESTIMATORS)}, got {kind!r}")
        self.kind = kind
        self.embedding = Embedding(x_shape, cfg, mask)
        if kind == "mixture":
            self.density = _Mixture(self.embedding, dim, cfg)
            return
        from sbi.neural_nets import posterior_flow_nn, posterior_nn, posterior_score_nn
        common = dict(embedding_net=self.embedding, z_score_theta="independent", z_score_x="none",
                      hidden_features=cfg.hidden)
        if kind == "nsf":
            build = posterior_nn(model="nsf", num_transforms=cfg.transforms, **common)
        elif kind == "npse":
            build = posterior_score_nn(sde_type="ve", **common)
        else:
            build = posterior_flow_nn(**common)
        self.density = build(z_batch.float(), x_batch.float())

    @property
    def norm(self) -> Normalizer:
        return self.embedding.norm

    @property
    def mask(self) -> torch.Tensor | None:
        return self.embedding.mask

    def loss(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-item training loss (N,): -log q(z | x) for nsf/mixture, the score / flow-matching regression
        for npse/fmpe."""
        return self.density.loss(z, x)

    def posterior(self, z_prior, device):
        """sbi's posterior class for this estimator, over z (None for the mixture: models/sbi.py samples it)."""
        if self.kind == "mixture":
            return None
        if self.kind == "nsf":
            from sbi.inference import DirectPosterior
            return DirectPosterior(self.density, z_prior, device=device)
        from sbi.inference import VectorFieldPosterior
        return VectorFieldPosterior(self.density, z_prior, device=device,
                                    sample_with="sde" if self.kind == "npse" else "ode")
