"""The demo's deterministic baseline: the worker's network trained with an MSE loss,
offline, on the members' output files of the online phase, for the same number of
optimizer steps and the same batch size as the diffusion surrogate."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bridge.worker.engine import build_trainer
from bridge.worker.placement import device_for_rank
from bridge.worker.settings import worker_settings
from bridge.worker.tunnel import channel_names
from models.data import Batch, PairDataset
from models.train import Trainer

log = logging.getLogger(__name__)


def member_files(cfg) -> list[Path]:
    name = f"{cfg.source.stem}_fields.nc"  # the phase name is gyre's cn_exp
    return [cfg.member_dir(k) / name for k in range(1, cfg.ocean.members + 1)]


@dataclass
class Baseline:
    trainer: Trainer
    theta: list[np.ndarray]  # θ of member k (0-based), as the gyre files list them
    dataset: PairDataset
    checkpoint: Path

    def train_to(self, steps: int) -> None:
        """Train on until ``steps`` optimizer steps in all (the diffusion surrogate's count), then save."""
        self.trainer.fit(self.dataset, steps=steps, checkpoint=self.checkpoint, checkpoint_every=max(steps, 1))


def train_mse_baseline(cfg, steps: int, out: Path) -> Baseline:
    """The worker's network and settings ([model], [worker.train]) with the MSE objective, trained to ``steps``."""
    # half the cores: the worker's learner trains on the other one meanwhile (the demo runs both at once),
    # and on a small shared machine more torch threads than free cores slow training down several-fold
    # (measured: 0.45 s/step on 1 thread, 6 s/step on 2, 2 cores under load)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    files = [str(p) for p in member_files(cfg)]
    dataset = PairDataset(files, list(channel_names(cfg)), lag=1)
    trainer = build_trainer(dataset.spec, worker_settings(cfg), device_for_rank(cfg.worker.device, 0),
                            use_position=cfg.worker.ranks > 1, lag=cfg.fields[0].freq, objective="mse")
    log.info("MSE baseline: %d optimizer steps on %d pairs from %d member file(s)", steps, len(dataset), len(files))
    baseline = Baseline(trainer, [member.theta for member in dataset.members], dataset, out)
    baseline.train_to(steps)
    return baseline


@torch.no_grad()
def predict(baseline: Baseline, starts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """MSE predictions (K, T, C, ny, nx) from the start states of every member and step."""
    out = np.empty_like(starts)
    m = torch.as_tensor(mask, dtype=torch.float32)[None, None]
    for k in range(starts.shape[0]):
        theta = torch.as_tensor(np.repeat(baseline.theta[k][None], starts.shape[1], 0))
        batch = Batch(None, state=torch.as_tensor(starts[k], dtype=torch.float32), theta=theta, mask=m)
        out[k] = baseline.trainer.sample(batch, n=1)[:, 0].double().cpu().numpy()
    return out
