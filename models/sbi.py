"""Simulation-based inference: neural posterior estimation (NPE), sbi-style.

    prior = BoxUniform(low, high, names=("tau0",), units=("N m-2",))
    npe = NPE(prior, NPEConfig(max_epochs=200))
    posterior = npe.append_simulations(theta, x).train().build_posterior()
    samples = posterior.sample(1000, x_o)      # (1000, D) float64, always inside the prior box
    posterior.log_prob(samples, x_o)           # log q(θ | x_o), -inf outside the box
    posterior.summary(x_o)                     # per parameter: mean, std, quantiles

x is a summary vector (N, F) or a field (N, C, ny, nx) with an optional land
mask; fields are embedded by a masked CNN with global pooling
(models/posterior_net.py).  Online use (the worker): ``npe.train_step(θ, x)``.

**Why a mixture density, not a diffusion over θ.**  θ has a handful of
dimensions.  A mixture of full-covariance Gaussians conditioned on x (the
original NPE estimator, Papamakarios & Murray 2016) gives an exact ``log_prob``
and exact samples in one network evaluation, and it is exact for linear-Gaussian
problems; an EDM diffusion over θ would need an ODE solve with a Jacobian trace
for every ``log_prob`` and ~35 evaluations per sample, for posteriors that are
rarely more than mildly skewed or bimodal (which a few components cover).
**Why samples stay in the box.**  The density is fitted to z = logit((θ - low) /
(high - low)) (a Gaussian prior is whitened instead); samples are mapped back
with the sigmoid, so they cannot leave the prior's support, and ``log_prob``
adds the log-Jacobian of that map.
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from .normalize import Normalizer
from .posterior_net import FieldSummary, MixtureDensity, VectorSummary

__all__ = ["BoxUniform", "GaussianPrior", "NPEConfig", "NPE", "Posterior"]

log = logging.getLogger(__name__)
FORMAT = "oceanbridge-npe-1"
DEFAULT_QUANTILES = (0.025, 0.16, 0.5, 0.84, 0.975)


def _names(names, dim: int, what: str) -> tuple[str, ...]:
    names = tuple(names) if names is not None else tuple(f"theta{i}" for i in range(dim))
    if len(names) != dim:
        raise ValueError(f"{what}: {len(names)} names {list(names)} for {dim} parameter(s)")
    return names


class BoxUniform:
    """Uniform prior on [low, high] per parameter; the unbounded map is the logit."""

    def __init__(self, low, high, names=None, units=None):
        self.low, self.high = (torch.as_tensor(np.atleast_1d(v), dtype=torch.float64) for v in (low, high))
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ValueError(f"BoxUniform: low {tuple(self.low.shape)} and high {tuple(self.high.shape)} must be "
                             "1-D of the same length")
        if not bool((self.low < self.high).all()):
            raise ValueError(f"BoxUniform: every low must be below its high, got low={self.low.tolist()} "
                             f"high={self.high.tolist()}")
        self.dim = len(self.low)
        self.names = _names(names, self.dim, "BoxUniform")
        self.units = tuple(units) if units is not None else ("1",) * self.dim

    @property
    def mean(self) -> torch.Tensor:
        return (self.low + self.high) / 2

    @property
    def std(self) -> torch.Tensor:
        return (self.high - self.low) / math.sqrt(12)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.rand(n, self.dim, generator=generator, dtype=torch.float64)

    def from_unit(self, unit) -> torch.Tensor:
        """Points ``unit`` of [0, 1)^dim, shape ``(n, dim)``, mapped into the box: a space-filling design
        drawn by the caller (e.g. the Latin hypercube of ``bridge.deploy.ensemble``, which preprod draws the
        members' θ with; this package draws no designs, so that deployment does not need it)."""
        unit = torch.as_tensor(np.asarray(unit, dtype=float), dtype=torch.float64)
        if unit.ndim != 2 or unit.shape[1] != self.dim:
            raise ValueError(f"BoxUniform.from_unit: points of shape {tuple(unit.shape)}, expected (n, {self.dim})")
        return self.low + (self.high - self.low) * unit

    def contains(self, theta: torch.Tensor) -> torch.Tensor:
        return ((theta >= self.low) & (theta <= self.high)).all(-1)

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        inside = self.contains(theta.double())
        value = -torch.log(self.high - self.low).sum()
        return torch.where(inside, value, torch.full_like(inside, -math.inf, dtype=torch.float64))

    def to_unbounded(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = logit(u), u = (θ - low) / (high - low); and log |dz/dθ| per row."""
        u = ((theta.double() - self.low) / (self.high - self.low)).clamp(1e-12, 1 - 1e-12)
        z = torch.log(u) - torch.log1p(-u)
        log_det = -(torch.log(self.high - self.low) + torch.log(u) + torch.log1p(-u)).sum(-1)
        return z, log_det

    def from_unbounded(self, z: torch.Tensor) -> torch.Tensor:
        theta = self.low + (self.high - self.low) * torch.sigmoid(z.double())
        return torch.minimum(torch.maximum(theta, self.low), self.high)


class GaussianPrior:
    """Gaussian prior N(mean, cov); the unbounded map whitens it."""

    def __init__(self, mean, cov, names=None, units=None):
        self.mean = torch.as_tensor(np.atleast_1d(mean), dtype=torch.float64)
        self.cov = torch.as_tensor(np.atleast_2d(cov), dtype=torch.float64)
        self.dim = len(self.mean)
        if self.cov.shape != (self.dim, self.dim):
            raise ValueError(f"GaussianPrior: cov {tuple(self.cov.shape)} does not match mean {(self.dim,)}")
        self.chol = torch.linalg.cholesky(self.cov)
        self.names = _names(names, self.dim, "GaussianPrior")
        self.units = tuple(units) if units is not None else ("1",) * self.dim
        self.low = self.high = None

    @property
    def std(self) -> torch.Tensor:
        return self.cov.diagonal().sqrt()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean + torch.randn(n, self.dim, generator=generator, dtype=torch.float64) @ self.chol.T

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        z, log_det = self.to_unbounded(theta)
        return -0.5 * (z ** 2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi) + log_det

    def to_unbounded(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.linalg.solve_triangular(self.chol, (theta.double() - self.mean).T, upper=False).T
        return z, -torch.log(self.chol.diagonal()).sum().expand(len(z))

    def from_unbounded(self, z: torch.Tensor) -> torch.Tensor:
        return self.mean + z.double() @ self.chol.T


@dataclass(frozen=True)
class NPEConfig:
    """Estimator and training settings; a bad value raises naming the field."""
    components: int = 4              # Gaussians in the mixture
    hidden: int = 64                 # width of the mixture network
    summary_width: int = 16          # CNN channels (field observations)
    summary_dim: int = 32            # features of the field summary
    lr: float = 1e-3                 # Adam learning rate
    batch_size: int = 128            # offline minibatch
    max_epochs: int = 200            # offline epochs at most
    validation_fraction: float = 0.1  # held out for early stopping (offline)
    patience: int = 20               # epochs without a better validation loss before stopping
    max_grad_norm: float = 5.0       # gradient clipping
    norm_warmup_steps: int = 20      # online: steps during which the x normalizer learns, then frozen
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"NPEConfig.{f.name} must be a number, got {value!r}")
        positive = ("components", "hidden", "summary_width", "summary_dim", "lr", "batch_size", "max_epochs",
                    "patience", "max_grad_norm")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"NPEConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"NPEConfig.validation_fraction must lie in [0, 1), got {self.validation_fraction!r}")
        if self.norm_warmup_steps < 0 or self.seed < 0:
            raise ValueError(f"NPEConfig.norm_warmup_steps and .seed must be >= 0, got {self.norm_warmup_steps!r}, "
                             f"{self.seed!r}")


class _Estimator(nn.Module):
    """x normalizer + summary network + mixture density over z."""

    def __init__(self, x_shape: tuple[int, ...], dim: int, cfg: NPEConfig, mask: torch.Tensor | None):
        super().__init__()
        field = len(x_shape) == 3
        self.norm = Normalizer([f"x{i}" for i in range(x_shape[0])])
        self.summary = FieldSummary(x_shape[0], cfg.summary_width, cfg.summary_dim) if field \
            else VectorSummary(x_shape[0])
        self.mdn = MixtureDensity(self.summary.out_dim, dim, cfg.components, cfg.hidden)
        mask = torch.ones(1, 1, *x_shape[1:]) if field and mask is None else mask
        self.register_buffer("mask", None if mask is None else torch.as_tensor(mask, dtype=torch.float32)
                             .reshape(1, 1, *x_shape[1:]))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.summary(self.norm.normalize(x, self.mask), self.mask)

    def log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.mdn.log_prob(z, self.embed(x))


def _progress(epochs: range, on: bool):
    if not on:
        return epochs
    from tqdm.auto import tqdm
    return tqdm(epochs, desc="NPE epochs", unit="epoch")


class NPE:
    """Neural posterior estimation: append (θ, x) simulations, train, build the posterior."""

    def __init__(self, prior, config: NPEConfig | None = None, *, x_shape=None, mask=None, device: str = "cpu"):
        self.prior, self.config, self.device = prior, config or NPEConfig(), torch.device(device)
        self.mask = None if mask is None else torch.as_tensor(mask).detach().float().cpu()
        self.x_shape: tuple[int, ...] | None = None
        self.net: _Estimator | None = None
        self.step, self.rejected, self.history = 0, 0, []
        self._theta: list[torch.Tensor] = []
        self._x: list[torch.Tensor] = []
        if x_shape is not None:
            self._build(tuple(x_shape))

    def _build(self, x_shape: tuple[int, ...]) -> None:
        if len(x_shape) not in (1, 3):
            raise ValueError(f"NPE: x must be a vector (F,) or a field (C, ny, nx) per simulation, got {x_shape}")
        if self.mask is not None and len(x_shape) == 3 and tuple(self.mask.shape[-2:]) != x_shape[1:]:
            raise ValueError(f"NPE: mask {tuple(self.mask.shape)} does not match x fields {x_shape}")
        torch.manual_seed(self.config.seed)
        self.x_shape = x_shape
        self.net = _Estimator(x_shape, self.prior.dim, self.config, self.mask).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)

    def set_mask(self, mask) -> None:
        """The land mask (1 ocean, 0 land) of field observations, e.g. once a tile is known."""
        self.mask = torch.as_tensor(mask).detach().float().cpu()
        if self.net is not None and self.net.mask is not None:
            if self.mask.numel() != self.net.mask.numel():
                raise ValueError(f"NPE: mask {tuple(self.mask.shape)} does not match x fields {self.x_shape}")
            self.net.mask.copy_(self.mask.reshape(self.net.mask.shape))

    # -- data ------------------------------------------------------------------------
    def _checked(self, theta, x) -> tuple[torch.Tensor, torch.Tensor]:
        """(θ, x) as tensors with the shapes checked and non-finite rows dropped (counted)."""
        theta = torch.as_tensor(np.asarray(theta), dtype=torch.float64)
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        if theta.ndim != 2 or theta.shape[1] != self.prior.dim or x.ndim < 2 or len(x) != len(theta):
            raise ValueError(f"NPE: θ {tuple(theta.shape)} and x {tuple(x.shape)} do not match: expected θ (N, "
                             f"{self.prior.dim}) for parameters {list(self.prior.names)} and x (N, ...) with the "
                             "same N")
        if self.x_shape is not None and tuple(x.shape[1:]) != self.x_shape:
            raise ValueError(f"NPE: x {tuple(x.shape)} does not match the simulations so far, (N, *{self.x_shape})")
        ok = torch.isfinite(theta).all(1) & torch.isfinite(x.reshape(len(x), -1)).all(1)
        if not bool(ok.all()):
            bad = int((~ok).sum())
            self.rejected += bad
            log.warning("NPE: %d simulation(s) with NaN/Inf rejected (%d so far)", bad, self.rejected)
        theta, x = theta[ok], x[ok]
        if self.prior.low is not None:  # float32 round-off of a θ on the box's edge is not an error
            slack = 1e-6 * (self.prior.high - self.prior.low)
            outside = ((theta < self.prior.low - slack) | (theta > self.prior.high + slack)).any(-1)
            if bool(outside.any()):
                raise ValueError(f"NPE: {int(outside.sum())} θ row(s) lie outside the prior box "
                                 f"{list(zip(self.prior.low.tolist(), self.prior.high.tolist()))}")
        return theta, x

    def append_simulations(self, theta, x) -> "NPE":
        """Add N simulations: θ (N, D), x (N, F) or (N, C, ny, nx).  Returns self (chainable)."""
        theta, x = self._checked(theta, x)
        if self.net is None:
            self._build(tuple(x.shape[1:]))
        self._theta.append(theta)
        self._x.append(x)
        return self

    @property
    def num_simulations(self) -> int:
        return sum(len(t) for t in self._theta)

    # -- training --------------------------------------------------------------------
    def _loss(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.prior.to_unbounded(theta)
        return -self.net.log_prob(z.float().to(self.device), x.to(self.device)).mean()

    def _step(self, theta: torch.Tensor, x: torch.Tensor) -> float:
        self.net.train()
        loss = self._loss(theta, x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.config.max_grad_norm)
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def train_step(self, theta, x) -> float | None:
        """One online step on a batch; the x normalizer learns for ``norm_warmup_steps`` steps.
        Returns the loss (None when every row was rejected)."""
        theta, x = self._checked(theta, x)
        if len(theta) == 0:
            return None
        if self.net is None:
            self._build(tuple(x.shape[1:]))
        norm = self.net.norm
        if not bool(norm.frozen):
            norm.update(x.to(self.device), self.net.mask)
            if self.step + 1 >= self.config.norm_warmup_steps:
                norm.freeze()
        if float(norm.count.min()) < 2:
            return None
        return self._step(theta, x)

    def train(self, max_epochs: int | None = None, progress: bool = False) -> "NPE":
        """Offline training on every appended simulation, early-stopped on a validation split."""
        if not self._theta:
            raise RuntimeError("NPE.train(): no simulations; call append_simulations(theta, x) first")
        theta, x = torch.cat(self._theta), torch.cat(self._x)
        cfg = self.config
        if not bool(self.net.norm.frozen):
            self.net.norm.update(x.to(self.device), self.net.mask)
            self.net.norm.freeze()
        gen = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(theta), generator=gen)
        n_val = int(len(theta) * cfg.validation_fraction) if len(theta) >= 10 else 0
        val, fit = order[:n_val], order[n_val:]
        best, best_state, stale = math.inf, None, 0
        epochs = range(max_epochs or cfg.max_epochs)
        for epoch in _progress(epochs, progress):  # cosine learning-rate decay to 1% over the epochs: precise final estimates
            for group in self.opt.param_groups:
                group["lr"] = cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * epoch / len(epochs))))
            perm = fit[torch.randperm(len(fit), generator=gen)]
            losses = [self._step(theta[i], x[i]) for i in perm.split(cfg.batch_size)]
            score = self._validation(theta[val], x[val]) if n_val else float(np.mean(losses))
            self.history.append((epoch, float(np.mean(losses)), score))
            if score < best - 1e-4:
                best, best_state, stale = score, copy.deepcopy(self.net.state_dict()), 0
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        log.info("NPE: %d simulations (%d rejected), %d epochs, %d steps, best validation loss %.4f",
                 len(theta), self.rejected, len(self.history), self.step, best)
        return self

    @torch.no_grad()
    def _validation(self, theta: torch.Tensor, x: torch.Tensor) -> float:
        self.net.eval()
        return float(self._loss(theta, x))

    @property
    def trained(self) -> bool:
        return self.step > 0

    def build_posterior(self) -> "Posterior":
        if not self.trained:
            raise RuntimeError("NPE.build_posterior(): the estimator is not trained; call train() (or "
                               "train_step() online) before sampling")
        return Posterior(self)

    # -- persistence -----------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"format": FORMAT, "config": asdict(self.config), "x_shape": self.x_shape, "step": self.step,
                "rejected": self.rejected, "names": list(self.prior.names),
                "net": None if self.net is None else self.net.state_dict(),
                "optimizer": None if self.net is None else self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"not a posterior estimator state (format {FORMAT})")
        if NPEConfig(**state["config"]) != self.config or state["names"] != list(self.prior.names):
            raise ValueError(f"posterior estimator state for parameters {state['names']} with {state['config']} "
                             f"does not match this one: {list(self.prior.names)} with {asdict(self.config)}")
        if state["net"] is not None:
            self._build(tuple(state["x_shape"]))
            self.net.load_state_dict(state["net"])
            self.opt.load_state_dict(state["optimizer"])
        self.step, self.rejected = int(state["step"]), int(state["rejected"])


class Posterior:
    """q(θ | x) of a trained NPE, in the prior's physical units."""

    def __init__(self, npe: NPE):
        self.npe, self.prior, self.default_x = npe, npe.prior, None

    def set_default_x(self, x) -> "Posterior":
        self.default_x = self._x(x, batched=False)
        return self

    def _x(self, x, batched: bool) -> torch.Tensor:
        if x is None:
            if self.default_x is None:
                raise ValueError("Posterior: give x (the observation) or call set_default_x(x) first")
            return self.default_x
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        shape = self.npe.x_shape
        if tuple(x.shape[int(batched):]) != shape:
            want = f"(B, *{shape})" if batched else f"{shape}"
            raise ValueError(f"Posterior: observation x {tuple(x.shape)} does not match the simulations' x {want}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("Posterior: observation x holds NaN/Inf")
        return x if batched else x[None]

    @torch.no_grad()
    def sample_batched(self, n: int, xs, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws for each of B observations: (n, B, D) float64."""
        net = self.npe.net.eval()
        z = net.mdn.sample(n, net.embed(self._x(xs, batched=True).to(self.npe.device)), generator)
        return self.prior.from_unbounded(z.cpu())

    def sample(self, n: int, x=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of θ given one observation x: (n, D) float64."""
        x = self._x(x, batched=False)
        return self.sample_batched(n, x, generator)[:, 0]

    @torch.no_grad()
    def log_prob(self, theta, x=None) -> torch.Tensor:
        """log q(θ | x) for θ (N, D): -inf outside the prior's support."""
        theta = torch.as_tensor(np.asarray(theta), dtype=torch.float64).reshape(-1, self.prior.dim)
        z, log_det = self.prior.to_unbounded(theta)
        net = self.npe.net.eval()
        h = net.embed(self._x(x, batched=False).to(self.npe.device)).expand(len(theta), -1)
        lp = net.mdn.log_prob(z.float().to(self.npe.device), h).double().cpu() + log_det
        return lp if self.prior.low is None else torch.where(self.prior.contains(theta), lp, -math.inf)

    def summary(self, x=None, n: int = 2000, quantiles=DEFAULT_QUANTILES,
                generator: torch.Generator | None = None) -> dict[str, dict]:
        """Per parameter name: mean, std and the given quantiles of ``n`` samples."""
        s = self.sample(n, x, generator).numpy()
        q = np.quantile(s, quantiles, axis=0)
        return {name: {"mean": float(s[:, i].mean()), "std": float(s[:, i].std(ddof=1)),
                       "quantiles": dict(zip(map(float, quantiles), map(float, q[:, i])))}
                for i, name in enumerate(self.prior.names)}
