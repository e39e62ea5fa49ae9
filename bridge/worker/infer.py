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
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from bridge.worker.output import rank_path
from bridge.worker.samples import BufferedSample, stacked_states
from models.posterior_products import posterior_products, read_observation
from models.sbi import NPE, BoxUniform, NPEConfig

log = logging.getLogger(__name__)


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

    def train_step(self, samples) -> float | None:
        """One step on buffered samples: x_t and x_{t+Δ} are both simulations of θ."""
        samples = [BufferedSample.of(s) for s in samples]
        theta = np.stack([s.theta for s in samples] * 2)
        states = stacked_states(samples)
        assert states is not None  # the infer mode runs with 'train', never with 'generate': every sample has x_t
        x = np.concatenate([states, np.stack([s.target for s in samples])])
        return self.npe.train_step(theta.astype(np.float64), x)

    def finish(self, rank: int, size: int) -> dict | None:
        """Sample the posterior of the observation; write posterior.nc and the figure."""
        if not self.npe.trained:
            log.error("infer: the posterior estimator made no training step (no pairs reached the buffer): "
                      "no %s written", self.plan.output.name)
            return None
        s, plot = self.plan.settings, self.plan.plot
        assert self.observed is not None  # attach (Engine's init, before any step) reads it
        return posterior_products(self.npe, self.observed, self.truth, s.samples, s.levels,
                                  rank_path(self.plan.output, rank, size),
                                  None if plot is None else rank_path(plot, rank, size),
                                  {"observation": str(s.observation), "observation_record": s.record})

    def state_dict(self) -> dict:
        return self.npe.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.npe.load_state_dict(state)
