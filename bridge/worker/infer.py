"""The worker's ``infer`` mode: a posterior over the members' parameters θ.

While the ocean runs, every optimizer step of the surrogate also gives the
posterior estimator (``models.sbi.NPE``: sbi's neural spline flow over the prior
box, or its NPSE / FMPE posteriors, or our mixture density, conditioned on a
masked CNN summary of the state) one step on the same buffered items: x = the
member's states (x_t and x_{t+Δ}), θ = its parameters.  At the
end the posterior is sampled for the observed state of ``[worker.infer]
observation`` and written as ``posterior.nc`` (CF: one variable per parameter,
with units from ``[[parameters]]``, plus mean, std and quantiles) and a PNG
(marginals and pairs; the true θ marked when the observation file carries it).

With several worker ranks each rank learns from, and conditions on, its own
tile (``_r<rank>`` outputs), like the other products: nothing is gathered.

Calibration (``[worker.infer] holdout_members = N``): the last N members are
held out.  Their items still reach the buffer (the surrogate trains on them:
the runtime puts every pair there), but the posterior's steps drop them from
their batches and keep their distinct states (x_t and x_{t+Δ}, told apart by
a checksum) with the member's θ as held-out observations, at most
``holdout_max`` of them (a uniform reservoir beyond), on this rank's tile.  At
the end the posterior is diagnosed on them (models.sbi.diagnose: SBC ranks and
their KS p-values, coverage per level, TARP), written into posterior.nc, the
summary and two PNGs (``HeldOutStates``, models/posterior_products.py).
"""
from __future__ import annotations

import logging
import math
import zlib

import numpy as np
import torch

from bridge.worker.output import rank_path
from bridge.worker.samples import BufferedSample, stacked_states
from models.posterior_products import HeldOut, posterior_products, read_observation
from models.sbi import NPE, BoxUniform, NPEConfig

log = logging.getLogger(__name__)


class HeldOutStates:
    """The distinct states of held-out members met in the buffer's batches, with their θ: at most ``capacity``
    (Vitter's reservoir: each distinct state seen is kept with probability capacity / seen)."""

    def __init__(self, members, capacity: int, seed: int = 0):
        self.members, self.capacity = frozenset(int(m) for m in members), capacity
        self.rng = np.random.default_rng(seed)
        self.theta: list[np.ndarray] = []
        self.x: list[np.ndarray] = []
        self.member: list[int] = []
        self.keys: set[tuple[int, int]] = set()  # (member, checksum) of every state seen
        self.seen = 0

    def __len__(self) -> int:
        return len(self.x)

    def holds(self, sample: BufferedSample) -> bool:
        return sample.member in self.members

    def add(self, sample: BufferedSample) -> None:
        """Both states of a buffered item (a state met again is skipped)."""
        for state in (sample.state, sample.target):
            if state is not None:
                self.add_state(sample.member, sample.theta, state)

    def add_state(self, member: int, theta, state: np.ndarray) -> None:
        """One state of a held-out member (skipped when already seen)."""
        state = np.array(state, dtype=np.float32)
        key = (int(member), zlib.crc32(state.tobytes()))
        if key in self.keys:
            return
        self.keys.add(key)
        self.seen += 1
        theta = np.asarray(theta, dtype=np.float64).copy()
        if len(self.x) < self.capacity:
            self.theta.append(theta)
            self.x.append(state)
            self.member.append(int(member))
        else:
            j = int(self.rng.integers(self.seen))
            if j < self.capacity:
                self.theta[j], self.x[j], self.member[j] = theta, state, int(member)

    def held_out(self, samples: int, tol: float) -> HeldOut | None:
        if not self.x:
            return None
        return HeldOut(np.stack(self.theta), np.stack(self.x), np.asarray(self.member), samples, tol)

    def state_dict(self) -> dict:
        return {"theta": np.stack(self.theta) if self.theta else np.zeros((0, 0)),
                "x": np.stack(self.x) if self.x else np.zeros((0, 0, 0, 0), np.float32),
                "member": np.asarray(self.member, dtype=np.int64),
                "keys": np.asarray(sorted(self.keys), dtype=np.int64).reshape(-1, 2), "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        self.theta, self.x = list(np.asarray(state["theta"])), list(np.asarray(state["x"], dtype=np.float32))
        self.member = [int(m) for m in np.asarray(state["member"])]
        self.keys = {(int(a), int(b)) for a, b in np.asarray(state["keys"]).reshape(-1, 2)}
        self.seen = int(state["seen"])


class Inference:
    """NPE on buffered (θ, x) items, the observation, and the outputs of one worker rank."""

    def __init__(self, plan, channels, tile_shape: tuple[int, int], device: str):
        s = plan.settings
        self.plan, self.channels = plan, tuple(channels)
        self.prior = BoxUniform(plan.low, plan.high, names=plan.names, units=plan.units)
        config = NPEConfig(estimator=s.estimator, components=s.components, hidden=s.hidden,
                           summary_width=s.summary_width, lr=s.lr, norm_warmup_steps=s.norm_warmup_steps)
        self.npe = NPE(self.prior, config, x_shape=(len(self.channels), *tile_shape), device=device)
        self.observed: np.ndarray | None = None
        self.truth: dict[str, float] = {}
        self.holdout = HeldOutStates(plan.holdout, s.holdout_max) if plan.holdout else None

    @property
    def step(self) -> int:
        return self.npe.step

    def wants(self, draining: bool) -> bool:
        """Whether another step is due: while the stream runs (up to max_steps), then up to min_steps."""
        s = self.plan.settings
        return self.step < s.min_steps if draining else (s.max_steps == 0 or self.step < s.max_steps)

    def attach(self, box, mask: torch.Tensor) -> None:
        """This rank's tile: its land mask, and the observation cut to it (read now, so a bad file fails early)."""
        self.npe.set_mask(mask)
        s = self.plan.settings
        window = (slice(box.j0, box.j0 + box.nj), slice(box.i0, box.i0 + box.ni))
        self.observed, self.truth = read_observation(s.observation, self.channels, s.record, self.prior.names,
                                                     (box.ny, box.nx), window)

    def holds_out(self, member: int) -> bool:
        """Whether the member (its index in ``[ocean] members``) is held out from the posterior's training."""
        return self.holdout is not None and int(member) in self.holdout.members

    def hold_out(self, member: int, theta, state: np.ndarray) -> None:
        """Keep one received state of a held-out member as a held-out observation (the loop's infer handler calls
        it with every state of those members; the ones a batch draws are kept by ``train_step`` too, once)."""
        if self.holdout is None or not self.holds_out(member):
            raise ValueError(f"member {member} is not held out (holdout members: {sorted(self.plan.holdout)})")
        self.holdout.add_state(member, theta, state)

    def train_step(self, samples) -> float | None:
        """One step on buffered samples: x_t and x_{t+Δ} are both simulations of θ."""
        samples = [BufferedSample.of(s) for s in samples]
        if self.holdout is not None:
            for s in samples:
                if self.holdout.holds(s):
                    self.holdout.add(s)
            samples = [s for s in samples if not self.holdout.holds(s)]
            if not samples:
                return None
        self._schedule_lr()
        theta = np.stack([s.theta for s in samples] * 2)
        states = stacked_states(samples)
        assert states is not None  # the infer mode runs with 'train', never with 'generate': every sample has x_t
        x = np.concatenate([states, np.stack([s.target for s in samples])])
        return self.npe.train_step(theta.astype(np.float64), x)

    def learning_rate(self, step: int) -> float:
        """``lr``, decayed (cosine, to 1 %) over the ``lr_decay_steps`` before ``min_steps``, then held."""
        s = self.plan.settings
        if not s.lr_decay_steps:
            return s.lr
        done = min(max((step - (s.min_steps - s.lr_decay_steps)) / s.lr_decay_steps, 0.0), 1.0)
        return s.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * done)))

    def _schedule_lr(self) -> None:
        opt = getattr(self.npe, "opt", None)  # built with the estimator (at the first step when x_shape is not known)
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = self.learning_rate(self.step)

    def finish(self, rank: int, size: int) -> dict | None:
        """Sample the posterior of the observation; write posterior.nc and the figure."""
        if not self.npe.trained:
            log.error("infer: the posterior estimator made no training step (no pairs reached the buffer): "
                      "no %s written", self.plan.output.name)
            return None
        s, plot = self.plan.settings, self.plan.plot
        assert self.observed is not None  # attach (Engine's init, before any step) reads it
        holdout, plots = None, self.plan.diagnostic_plots
        if self.holdout is not None:
            holdout = self.holdout.held_out(s.holdout_samples, s.coverage_tol)
            if holdout is None:
                log.warning("infer: no state of the held-out members %s arrived: no "
                            "calibration diagnostics", sorted(self.plan.holdout))
        return posterior_products(self.npe, self.observed, self.truth, s.samples, s.levels,
                                  rank_path(self.plan.output, rank, size),
                                  None if plot is None else rank_path(plot, rank, size),
                                  {"observation": str(s.observation), "observation_record": s.record},
                                  holdout, None if plots is None else
                                  (rank_path(plots[0], rank, size), rank_path(plots[1], rank, size)))

    def state_dict(self) -> dict:
        state = self.npe.state_dict()
        if self.holdout is not None:
            state["holdout"] = self.holdout.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.npe.load_state_dict(state)
        if self.holdout is not None and "holdout" in state:
            self.holdout.load_state_dict(state["holdout"])
