"""``Engine``: the ML side of the worker (torch), behind plain numpy in and out.

It turns buffered samples ``(member, θ, x_t, x_{t+Δ})`` into ``models`` batches
for one optimizer step, and draws emulated states from the EMA weights.  With
several worker ranks every rank trains on its own tile (the surrogate then
sees the tile's position) and the gradients are averaged by ``ddp``.

In the ``infer`` mode the engine also holds the posterior estimator
(``build_inference``, bridge/worker/infer.py) and trains it on the same samples.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import torch

from bridge.worker.samples import BufferedSample, stacked_states
from models.config import ModelConfig, TrainConfig
from models.data import Batch, DataSpec, grid_position
from models.sampling import SamplerConfig
from models.settings import values_of
from models.surrogate import Surrogate, SurrogateConfig
from models.train import Trainer

log = logging.getLogger(__name__)


def build_trainer(spec: DataSpec, settings, device: str, use_position: bool, lag: int, task: str = "emulate",
                  objective: str | None = None) -> Trainer:
    """A fresh trainer from the [model] and [worker.train] settings (``objective``: [model] objective's override)."""
    model = {**values_of(ModelConfig, settings.model), "objective": objective or settings.model.objective}
    config = SurrogateConfig(spec, task=task, use_position=use_position, lag=lag, **model)
    train = TrainConfig(**values_of(TrainConfig, settings.train), device=device)
    return Trainer(Surrogate(config), train)


def build_inference(spec: DataSpec, settings, device: str):
    """The posterior estimator of the ``infer`` mode, or None when the mode is off."""
    if settings.inference is None:
        return None
    from bridge.worker.infer import Inference
    return Inference(settings.inference, spec.channels, (spec.ny, spec.nx), device)


class Engine:
    """Trainer + this rank's tile geometry + mask; numpy (C, nj, ni) at the boundary."""

    def __init__(self, trainer: Trainer, box, mask: np.ndarray, use_position: bool, inference=None,
                 baseline: Trainer | None = None, bands=None):
        self.trainer, self.box, self.baseline = trainer, box, baseline
        self.bands = bands  # models.bands.RankBand with several worker ranks: seam-free sampling
        self._warned = False
        self.device = trainer.device
        self.full_mask = np.asarray(mask)
        self.mask = torch.as_tensor(mask[box.j0:box.j0 + box.nj, box.i0:box.i0 + box.ni],
                                    dtype=torch.float32)[None, None].to(self.device)
        self.pos = grid_position(box.i0, box.j0, box.ni, box.nj, box.nx, box.ny)[None].to(self.device) \
            if use_position else None
        self.inference = inference
        if inference is not None:
            inference.attach(box, self.mask)

    def set_land(self, land: np.ndarray) -> None:
        """Make the (ny, nx) points ``land`` land (the ocean's removed subdomains, known after the definitions):
        the loss ignores them and samples hold the fill value there; the posterior estimator's too."""
        self.full_mask = np.where(land, 0.0, self.full_mask).astype(self.full_mask.dtype)
        box = self.box
        cut = land[box.j0:box.j0 + box.nj, box.i0:box.i0 + box.ni]
        self.mask[0, 0][torch.as_tensor(cut, device=self.mask.device)] = 0.0
        if self.inference is not None:
            self.inference.npe.set_mask(self.mask)

    @property
    def trained(self) -> bool:
        return self.trainer.step > 0

    def batch(self, samples) -> Batch:
        """A physical batch from buffered samples (``BufferedSample``); their state is None in the generate
        mode, whose target is x_eq."""
        samples = [BufferedSample.of(s) for s in samples]
        theta = torch.as_tensor(np.stack([s.theta for s in samples]), dtype=torch.float32)
        states = stacked_states(samples)
        state = None if states is None else torch.as_tensor(states, dtype=torch.float32)
        target = torch.as_tensor(np.stack([s.target for s in samples]), dtype=torch.float32)
        return Batch(target=target, state=state, theta=theta, mask=self.mask, pos=self.pos).to(self.device)

    def train(self, samples) -> dict | None:
        """One optimizer step of the surrogate, and of the baseline on the same batch (the same budget)."""
        batch = self.batch(samples)
        if self.baseline is not None:
            self.baseline.train_step(batch)
        return self.trainer.train_step(batch)

    def infer_step(self, samples) -> float | None:
        """One step of the posterior estimator on the same buffered samples (infer mode)."""
        assert self.inference is not None  # called in the infer mode only (Learner._inference_wants)
        return self.inference.train_step(samples)

    def loss(self, samples) -> float:
        """Training loss of ``samples`` without a step (for tests and validation)."""
        with torch.no_grad():
            self.trainer.model.eval()
            return float(self.trainer.model.loss(self.batch(samples), torch.Generator(self.device).manual_seed(0)))

    def emulate(self, state: np.ndarray, theta: np.ndarray, n: int, num_steps: int,
                seed: int, churn: float = 0.0, churn_window: tuple[float, float] = (0.0, math.inf)) -> np.ndarray:
        """(n, C, nj, ni) float64 samples of x_{t+Δ} given x_t and θ; persistence (x_t itself)
        until the normalizers have seen data, i.e. before the first optimizer step."""
        if not self.trained:
            if not self._warned:
                log.warning("emulation requested before any training step: answering with persistence (x_t)")
                self._warned = True
            return np.repeat(state[None].astype(np.float64), n, axis=0)
        batch = Batch(target=None, state=torch.as_tensor(state[None], dtype=torch.float32),
                      theta=torch.as_tensor(theta[None], dtype=torch.float32), mask=self.mask, pos=self.pos)
        gen = torch.Generator(self.device).manual_seed(seed)
        sampler = SamplerConfig(num_steps=num_steps, S_churn=churn, S_min=churn_window[0], S_max=churn_window[1])
        out = self.trainer.sample(batch, n=n, sampler=sampler, generator=gen, bands=self.bands)
        return out[0].double().cpu().numpy()


def generate_state(generator: Trainer, theta: np.ndarray, engine: Engine, num_steps: int, seed: int,
                   rest_volume: bool = True) -> np.ndarray:
    """A generated whole-grid state for θ from a 'generate' surrogate, cut to this rank's tile: (C, nj, ni);
    with ``rest_volume`` its ssh has zero mean over the ocean points ([worker.spinup] rest_volume)."""
    spec = generator.spec
    if generator.model.config.task != "generate" or generator.model.config.cond_on_initial:
        raise ValueError("[worker.spinup] checkpoint must hold a 'generate' surrogate without cond_on_initial")
    full_mask = torch.ones((1, 1, spec.ny, spec.nx), device=generator.device)
    batch = Batch(target=None, theta=torch.as_tensor(theta[None], dtype=torch.float32), mask=full_mask)
    gen = torch.Generator(generator.device).manual_seed(seed)
    out = generator.sample(batch, n=1, sampler=SamplerConfig(num_steps=num_steps), generator=gen)[0, 0]
    out = out.double().cpu().numpy()
    if rest_volume:
        out = with_rest_volume(out, spec.channels, engine.full_mask)
    box = engine.box
    return out[:, box.j0:box.j0 + box.nj, box.i0:box.i0 + box.ni]


def with_rest_volume(state: np.ndarray, channels, mask: np.ndarray) -> np.ndarray:
    """The (C, ny, nx) state with its ssh shifted to zero mean over ocean points: a closed basin conserves its
    volume exactly, so a generated state holding more or less water than the members (which all started from
    rest) would keep the offset, and its heat content with it, for ever. A conservation law, not a tuned
    setting."""
    out = state.copy()
    if "ssh" in channels:
        ssh, ocean = out[list(channels).index("ssh")], np.asarray(mask) > 0
        ssh[ocean] -= ssh[ocean].mean()
    return out
