"""Simulation-based inference: neural posterior estimation (NPE) with the ``sbi`` package's estimators.

    prior = BoxUniform(low, high, names=("tau0",), units=("N m-2",))   # or GaussianPrior, or sbi.utils.BoxUniform
    npe = NPE(prior, NPEConfig(max_epochs=200))                        # estimator="nsf" | "npse" | "fmpe" | "mixture"
    posterior = npe.append_simulations(theta, x).train().build_posterior()
    samples = posterior.sample((1000,), x_o)   # (1000, D) float64, always inside the prior box
    posterior.log_prob(samples, x_o)           # log q(θ | x_o), -inf outside the box
    posterior.log_prob_batched(theta, xs)      # θ (n, B, D) for B observations: (n, B)
    posterior.summary(x_o)                     # per parameter: mean, std, quantiles
    diagnose(posterior, theta_test, x_test)    # SBC ranks, coverage, TARP (sbi.diagnostics)

x is a summary vector (N, F) or a field (N, C, ny, nx) with an optional land
mask; fields are embedded by a masked CNN with global pooling
(models/posterior_net.py).  Online use (the worker): ``npe.train_step(θ, x)``.

**The estimator** is built by sbi's own builders (models/sbi_estimators.py): a
neural spline flow by default (sampled through sbi's ``DirectPosterior``), a
score-based (NPSE) or flow-matching (FMPE) posterior as options (sbi's
``VectorFieldPosterior``), or our hand-written mixture of full-covariance
Gaussians (Papamakarios & Murray 2016).  Training is ours, one Adam step at a
time, so that the worker can feed it from its stream; offline ``train()`` loops
the same step over epochs with early stopping.
**Why samples stay in the box.**  The density is fitted to z = logit((θ - low) /
(high - low)) (a Gaussian prior is whitened instead); samples are mapped back
with the sigmoid, so they cannot leave the prior's support, and ``log_prob``
adds the log-Jacobian of that map.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from .sbi_estimators import ESTIMATORS, Estimator, unbounded_prior

__all__ = ["BoxUniform", "GaussianPrior", "NPEConfig", "NPE", "Posterior", "as_prior", "calibration", "diagnose",
           "calibrated", "c2st"]

log = logging.getLogger(__name__)
FORMAT = "oceanbridge-npe-1"
DEFAULT_QUANTILES = (0.025, 0.16, 0.5, 0.84, 0.975)


def _tensor(value, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``dtype``: tensors stay tensors (any device; detached from autograd), others via numpy."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(dtype=dtype)
    return torch.as_tensor(np.asarray(value), dtype=dtype)


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
        drawn by the caller (e.g. the Latin hypercube of ``bridge.config.ensemble``, which preprod draws the
        members' θ with; this package draws no designs, so that deployment does not need it)."""
        unit = _tensor(unit, torch.float64).cpu()
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


def as_prior(prior):
    """Our ``BoxUniform`` / ``GaussianPrior``, or the torch distributions sbi users pass: ``sbi.utils.BoxUniform``
    (an ``Independent`` of ``Uniform``), an ``Independent`` of ``Normal`` or a ``MultivariateNormal``."""
    if isinstance(prior, (BoxUniform, GaussianPrior)):
        return prior
    dist = torch.distributions
    base = prior.base_dist if isinstance(prior, dist.Independent) else None
    if isinstance(base, dist.Uniform) and base.low.ndim == 1:
        return BoxUniform(base.low.detach().cpu().double(), base.high.detach().cpu().double())
    if isinstance(base, dist.Normal) and base.loc.ndim == 1:
        return GaussianPrior(base.loc.detach().cpu().double(), torch.diag(base.scale.detach().cpu().double() ** 2))
    if isinstance(prior, dist.MultivariateNormal) and prior.loc.ndim == 1:
        return GaussianPrior(prior.loc.detach().cpu().double(), prior.covariance_matrix.detach().cpu().double())
    raise TypeError(f"NPE: prior {type(prior).__name__} is not supported: use models.sbi.BoxUniform or "
                    "GaussianPrior, sbi.utils.BoxUniform, or a torch Independent(Uniform/Normal) or "
                    "MultivariateNormal over a 1-D parameter vector")


@dataclass(frozen=True)
class NPEConfig:
    """Estimator and training settings; a bad value raises naming the field."""
    estimator: str = "nsf"           # "nsf" (sbi's neural spline flow) | "npse" | "fmpe" | "mixture" (ours)
    components: int = 4              # Gaussians in the mixture (estimator="mixture")
    hidden: int = 64                 # width of the density network
    transforms: int = 5              # spline transforms of the flow (estimator="nsf")
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
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"NPEConfig.estimator must be one of {list(ESTIMATORS)}, got {self.estimator!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "estimator" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ValueError(f"NPEConfig.{f.name} must be a number, got {value!r}")
        positive = ("components", "hidden", "transforms", "summary_width", "summary_dim", "lr", "batch_size",
                    "max_epochs", "patience", "max_grad_norm")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"NPEConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"NPEConfig.validation_fraction must lie in [0, 1), got {self.validation_fraction!r}")
        if self.norm_warmup_steps < 0 or self.seed < 0:
            raise ValueError(f"NPEConfig.norm_warmup_steps and .seed must be >= 0, got {self.norm_warmup_steps!r}, "
                             f"{self.seed!r}")


def _progress(epochs: range, on: bool):
    if not on:
        return epochs
    from tqdm.auto import tqdm
    return tqdm(epochs, desc="NPE epochs", unit="epoch")


def _device(device) -> torch.device:
    """The ``device`` setting, checked now: a CUDA device that is not there fails here, not at the first step."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"NPE: device={device!r} is not a torch device ({e})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"NPE: device={device!r} but this machine has no usable CUDA GPU "
                             "(torch.cuda.is_available() is False); set device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"NPE: device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


class NPE:
    """Neural posterior estimation: append (θ, x) simulations, train, build the posterior."""

    def __init__(self, prior, config: NPEConfig | None = None, *, x_shape=None, mask=None, device: str = "cpu"):
        self.prior, self.config, self.device = as_prior(prior), config or NPEConfig(), _device(device)
        self.mask = None if mask is None else _tensor(mask, torch.float32).cpu()
        self.x_shape: tuple[int, ...] | None = None
        self.net: Estimator | None = None
        self.step, self.rejected, self.history = 0, 0, []
        self._theta: list[torch.Tensor] = []
        self._x: list[torch.Tensor] = []
        self._norm_fitted_on = -1  # simulations the x normalizer was fitted on by train() (-1: not by train())
        if x_shape is not None:
            self._build(tuple(x_shape))

    def _build(self, x_shape: tuple[int, ...], x_batch: torch.Tensor | None = None) -> None:
        if len(x_shape) not in (1, 3):
            raise ValueError(f"NPE: x must be a vector (F,) or a field (C, ny, nx) per simulation, got {x_shape}")
        if self.mask is not None and len(x_shape) == 3 and tuple(self.mask.shape[-2:]) != x_shape[1:]:
            raise ValueError(f"NPE: mask {tuple(self.mask.shape)} does not match x fields {x_shape}")
        torch.manual_seed(self.config.seed)
        self.x_shape = x_shape
        # sbi z-scores θ (in z) from the builder's batch: 1000 prior draws, the same for every run
        z_batch, _ = self.prior.to_unbounded(self.prior.sample(1000, torch.Generator().manual_seed(self.config.seed)))
        x_batch = torch.zeros(2, *x_shape) if x_batch is None else x_batch[:2].cpu()
        self.net = Estimator(self.config.estimator, x_shape, self.prior.dim, self.config, self.mask, z_batch,
                             x_batch).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)
        self._posterior_cache = None

    def set_mask(self, mask) -> None:
        """The land mask (1 ocean, 0 land) of field observations, e.g. once a tile is known."""
        self.mask = _tensor(mask, torch.float32).cpu()
        if self.net is not None and self.net.mask is not None:
            if self.mask.numel() != self.net.mask.numel():
                raise ValueError(f"NPE: mask {tuple(self.mask.shape)} does not match x fields {self.x_shape}")
            self.net.mask.copy_(self.mask.reshape(self.net.mask.shape))

    # -- data ------------------------------------------------------------------------
    def _checked(self, theta, x) -> tuple[torch.Tensor, torch.Tensor]:
        """(θ, x) as CPU tensors with the shapes checked and non-finite rows dropped (counted)."""
        theta = _tensor(theta, torch.float64).cpu()
        x = _tensor(x, torch.float32).cpu()
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
            self._build(tuple(x.shape[1:]), x)
        self._theta.append(theta)
        self._x.append(x)
        return self

    @property
    def num_simulations(self) -> int:
        return sum(len(t) for t in self._theta)

    # -- training --------------------------------------------------------------------
    def _loss(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.prior.to_unbounded(theta)
        return self.net.loss(z.float().to(self.device), x.to(self.device)).mean()

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
            self._build(tuple(x.shape[1:]), x)
        norm = self.net.norm
        if not bool(norm.frozen):
            norm.update(x.to(self.device), self.net.mask)
            if self.step + 1 >= self.config.norm_warmup_steps:
                norm.freeze()
        if float(norm.count.min()) < 2:
            return None
        return self._step(theta, x)

    def _fit_normalizer(self, x: torch.Tensor) -> None:
        """Fit the x normalizer on every appended simulation, afresh whenever simulations were appended since
        the last fit (it used to keep the statistics of the first ``train()``)."""
        if self._norm_fitted_on == len(x):
            return
        norm = self.net.norm
        for buf in (norm.count, norm.running_mean, norm.m2):
            buf.zero_()
        norm.frozen.fill_(False)
        for chunk in x.split(4096):
            norm.update(chunk.to(self.device), self.net.mask)
        norm.freeze()
        self._norm_fitted_on = len(x)

    def train(self, max_epochs: int | None = None, progress: bool = False) -> "NPE":
        """Offline training on every appended simulation, early-stopped on a validation split."""
        if not self._theta:
            raise RuntimeError("NPE.train(): no simulations; call append_simulations(theta, x) first")
        theta, x = torch.cat(self._theta), torch.cat(self._x)
        cfg = self.config
        self._fit_normalizer(x)
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
        with torch.random.fork_rng(devices=[]):  # NPSE/FMPE losses draw diffusion times: same draws every epoch
            torch.manual_seed(self.config.seed)
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
        config = {"estimator": "mixture", **state["config"]}  # states written before sbi: the mixture
        if NPEConfig(**config) != self.config or state["names"] != list(self.prior.names):
            raise ValueError(f"posterior estimator state for parameters {state['names']} with {config} "
                             f"does not match this one: {list(self.prior.names)} with {asdict(self.config)}")
        if state["net"] is not None:
            self._build(tuple(state["x_shape"]))
            self.net.load_state_dict(state["net"])
            self.opt.load_state_dict(state["optimizer"])
        self.step, self.rejected = int(state["step"]), int(state["rejected"])


def _shape(sample_shape) -> tuple[int, ...]:
    """``n`` or sbi's ``(n,)`` / ``torch.Size``."""
    if isinstance(sample_shape, (int, np.integer)):
        return (int(sample_shape),)
    try:
        if isinstance(sample_shape, str):
            raise TypeError
        return tuple(int(n) for n in sample_shape)
    except (TypeError, ValueError):
        raise TypeError(f"Posterior.sample: sample_shape must be an int n or a shape like (n,), got "
                        f"{sample_shape!r}") from None


@contextlib.contextmanager
def _seeded(generator: torch.Generator | None, device: torch.device):
    """Draws from the global RNGs (as sbi's samplers do) made reproducible by a CPU ``generator``."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


class Posterior:
    """q(θ | x) of a trained NPE, in the prior's physical units.  The flows are sampled and evaluated through
    sbi's posterior classes (``self.sbi``: DirectPosterior or VectorFieldPosterior, over z), the mixture by
    its own network."""

    def __init__(self, npe: NPE):
        self.npe, self.prior, self.default_x = npe, npe.prior, None
        net = npe.net.eval()
        self.sbi = net.posterior(unbounded_prior(self.prior, npe.device), npe.device)

    def set_default_x(self, x) -> "Posterior":
        self.default_x = self._x(x, batched=False)
        return self

    def _x(self, x, batched: bool) -> torch.Tensor:
        """One observation as (1, *x_shape) (x_shape or (1, *x_shape) given), or B of them (B, *x_shape)."""
        if x is None:
            if self.default_x is None:
                raise ValueError("Posterior: give x (the observation) or call set_default_x(x) first")
            return self.default_x
        x = _tensor(x, torch.float32)
        shape = self.npe.x_shape
        if not batched and tuple(x.shape) == (1, *shape):
            x = x[0]
        if tuple(x.shape[int(batched):]) != shape:
            want = f"(B, *{shape})" if batched else f"{shape} or (1, *{shape})"
            hint = "; for several observations use sample_batched / log_prob_batched" \
                if not batched and tuple(x.shape[1:]) == shape else ""
            raise ValueError(f"Posterior: observation x {tuple(x.shape)} does not match the simulations' x "
                             f"{want}{hint}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("Posterior: observation x holds NaN/Inf")
        return (x if batched else x[None]).to(self.npe.device)

    @torch.no_grad()
    def _sample_z(self, n: int, xs: torch.Tensor, generator) -> torch.Tensor:
        """(n, B, D) draws in z for B observations xs (B, *x_shape)."""
        net = self.npe.net.eval()
        if self.sbi is None:
            return net.density.mdn.sample(n, net.embedding(xs), generator)
        with _seeded(generator, self.npe.device):
            if len(xs) == 1:
                return self.sbi.sample((n,), x=xs, show_progress_bars=False)[:, None]
            return self.sbi.sample_batched((n,), x=xs, show_progress_bars=False)

    def sample_batched(self, sample_shape, x=None, generator: torch.Generator | None = None,
                       show_progress_bars: bool = False) -> torch.Tensor:
        """``n`` draws for each of B observations x (B, *x_shape): (n, B, D) float64 (sbi's signature, so that
        ``sbi.diagnostics`` can call it)."""
        shape = _shape(sample_shape)
        xs = self._x(x, batched=True)
        z = self._sample_z(math.prod(shape), xs, generator)
        return self.prior.from_unbounded(z.cpu()).reshape(*shape, len(xs), self.prior.dim)

    def sample(self, sample_shape=(1,), x=None, generator: torch.Generator | None = None,
               show_progress_bars: bool = False) -> torch.Tensor:
        """Draws of θ given one observation x: ``sample(n, x)`` -> (n, D), ``sample((n,), x)`` as in sbi."""
        shape = _shape(sample_shape)
        z = self._sample_z(math.prod(shape), self._x(x, batched=False), generator)[:, 0]
        return self.prior.from_unbounded(z.cpu()).reshape(*shape, self.prior.dim)

    def _log_prob_z(self, z: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """log q(z | x) for z (n, B, D) and xs (B, *x_shape): (n, B)."""
        net = self.npe.net.eval()
        n, b = z.shape[:2]
        z = z.float().to(self.npe.device)
        if self.sbi is None:
            h = net.embedding(xs)
            return net.density.mdn.log_prob(z.reshape(n * b, -1), h.repeat(n, 1)).reshape(n, b)
        if b == 1:
            return self.sbi.log_prob(z[:, 0], x=xs)[:, None] if self.npe.config.estimator != "nsf" else \
                self.sbi.log_prob(z[:, 0], x=xs, norm_posterior=False)[:, None]
        if self.npe.config.estimator == "nsf":
            return self.sbi.log_prob_batched(z, x=xs, norm_posterior=False)
        return torch.stack([self.sbi.log_prob(z[:, i], x=xs[i:i + 1]) for i in range(b)], 1)

    @torch.no_grad()
    def _log_prob(self, theta: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        theta = theta.cpu()
        z, log_det = self.prior.to_unbounded(theta.reshape(-1, self.prior.dim))
        z, log_det = z.reshape(theta.shape), log_det.reshape(theta.shape[:-1])
        lp = self._log_prob_z(z, xs).double().cpu() + log_det
        return lp if self.prior.low is None else torch.where(self.prior.contains(theta), lp, -math.inf)

    def log_prob(self, theta, x=None) -> torch.Tensor:
        """log q(θ | x) for θ (N, D) (or (D,)) given one observation: (N,), -inf outside the prior's support."""
        theta = _tensor(theta, torch.float64).reshape(-1, self.prior.dim)
        return self._log_prob(theta[:, None], self._x(x, batched=False))[:, 0]

    def log_prob_batched(self, theta, x) -> torch.Tensor:
        """log q(θ_ib | x_b) for θ (n, B, D) and B observations x (B, *x_shape): (n, B), as sbi's."""
        xs = self._x(x, batched=True)
        theta = _tensor(theta, torch.float64)
        if theta.ndim != 3 or theta.shape[1:] != (len(xs), self.prior.dim):
            raise ValueError(f"Posterior.log_prob_batched: θ {tuple(theta.shape)}, expected (n, {len(xs)}, "
                             f"{self.prior.dim}) for {len(xs)} observations")
        return self._log_prob(theta, xs)

    def summary(self, x=None, n: int = 2000, quantiles=DEFAULT_QUANTILES,
                generator: torch.Generator | None = None) -> dict[str, dict]:
        """Per parameter name: mean, std and the given quantiles of ``n`` samples."""
        s = self.sample(n, x, generator).numpy()
        q = np.quantile(s, quantiles, axis=0)
        return {name: {"mean": float(s[:, i].mean()), "std": float(s[:, i].std(ddof=1)),
                       "quantiles": dict(zip(map(float, quantiles), map(float, q[:, i])))}
                for i, name in enumerate(self.prior.names)}


# ----------------------------------------------------------------------------- diagnostics (sbi.diagnostics)

COVERAGE_LEVELS = (0.5, 0.95)


class _Drawn:
    """Posterior samples already drawn, (n, B, D), behind the ``sample_batched`` that sbi's diagnostics call."""

    def __init__(self, samples: torch.Tensor):
        self.samples = samples

    def sample_batched(self, sample_shape, x=None, show_progress_bars: bool = False, **_) -> torch.Tensor:
        return self.samples


def calibration(theta, x, samples, levels=COVERAGE_LEVELS) -> dict:
    """Calibration of posterior ``samples`` (n, B, D) drawn for B held-out (θ, x) pairs (θ from the prior):

    - ``sbc_ranks`` (B, D): sbi's SBC ranks (``sbi.diagnostics.run_sbc``), ``sbc_ks_pvals`` (D,) the p-values of
      a uniformity (KS) test of each parameter's ranks (as ``check_sbc``), ``dap_samples`` the data-averaged
      posterior's;
    - ``coverage`` {level: (D,)}: the fraction of θ inside the central ``level`` interval of each marginal
      (from the ranks) and ``coverage_error``, the largest |coverage - level|;
    - ``tarp_ecp`` / ``tarp_alpha``: the expected coverage curve of TARP (``run_tarp``), ``tarp_atc`` its area
      to the diagonal (< 0: too narrow) and ``tarp_ks_pval``.
    """
    from sbi.diagnostics import check_tarp, run_sbc, run_tarp
    from sbi.diagnostics.sbc import check_uniformity_frequentist
    theta = _tensor(theta, torch.float32).cpu()
    samples = _tensor(samples, torch.float32).cpu()
    n = samples.shape[0]
    xs = torch.zeros(len(theta), 1)  # the ranks are of the marginals: x is not looked at
    ranks, dap = run_sbc(theta, xs, _Drawn(samples), num_posterior_samples=n, show_progress_bar=False)
    ks_pvals = check_uniformity_frequentist(ranks, n)  # check_sbc's uniformity test, without its classifiers
    u = ranks / n
    coverage = {float(level): ((u >= (1 - level) / 2) & (u <= (1 + level) / 2)).float().mean(0)
                for level in levels}
    ecp, alpha = run_tarp(theta, xs, _Drawn(samples), num_posterior_samples=n, show_progress_bar=False)
    atc, ks = check_tarp(ecp, alpha)
    return {"sbc_ranks": ranks, "sbc_ks_pvals": ks_pvals, "dap_samples": dap, "num_posterior_samples": n,
            "coverage": coverage,
            "coverage_error": max(float((c - level).abs().max()) for level, c in coverage.items()),
            "tarp_ecp": ecp, "tarp_alpha": alpha, "tarp_atc": float(atc), "tarp_ks_pval": float(ks)}


def diagnose(posterior: Posterior, theta, x, n: int = 500, levels=COVERAGE_LEVELS,
             generator: torch.Generator | None = None) -> dict:
    """``calibration`` of ``posterior`` over held-out (θ (B, D), x (B, *x_shape)) pairs, θ drawn from the prior
    (or any held-out members: the stream provides them cheaply)."""
    samples = posterior.sample_batched((n,), x, generator)
    return calibration(theta, x, samples, levels)


def calibrated(diagnostics: dict, tol: float = 0.05) -> bool:
    """The check: every marginal's central intervals cover within ``tol`` of their level."""
    return diagnostics["coverage_error"] <= tol


def c2st(samples, reference, seed: int = 1) -> float:
    """sbi's classifier two-sample test accuracy (``sbi.utils.metrics.c2st``): 0.5 when ``samples`` cannot be
    told from ``reference`` samples (of the true posterior), 1 when they always can."""
    from sbi.utils.metrics import c2st as sbi_c2st
    return float(sbi_c2st(_tensor(samples, torch.float32).cpu(), _tensor(reference, torch.float32).cpu(), seed=seed))


def coverage_curve(ranks, num_posterior_samples: int, levels) -> torch.Tensor:
    """Marginal expected coverage from SBC ``ranks`` (B, D) of ``num_posterior_samples`` draws: for each
    ``level`` (L,), the fraction of the B true values inside the central ``level`` interval of their marginal,
    (L, D); the curve of a calibrated posterior is the diagonal, one below it is too narrow."""
    u = _tensor(ranks, torch.float64).cpu() / num_posterior_samples
    levels = _tensor(levels, torch.float64).cpu().reshape(-1, 1, 1)
    return ((u >= (1 - levels) / 2) & (u <= (1 + levels) / 2)).double().mean(1)
