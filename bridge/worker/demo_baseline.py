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

from bridge.worker.settings import worker_settings
from bridge.worker.tunnel import channel_names
from models.data import Batch, PairDataset
from models.surrogate import Surrogate, SurrogateConfig
from models.train import Trainer, TrainConfig

log = logging.getLogger(__name__)


def member_files(cfg) -> list[Path]:
    name = f"{cfg.source.stem}_fields.nc"  # the phase name is gyre's cn_exp
    return [cfg.member_dir(k) / name for k in range(1, cfg.ocean.members + 1)]


@dataclass
class Baseline:
    trainer: Trainer
    theta: list[np.ndarray]  # θ of member k (0-based), as the gyre files list them


def train_mse_baseline(cfg, steps: int, out: Path) -> Baseline:
    # half the cores: on a small shared machine more torch threads than free cores slow training
    # down several-fold (measured: 0.45 s/step on 1 thread, 6 s/step on 2, 2 cores under load)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    s = worker_settings(cfg)
    files = [str(p) for p in member_files(cfg)]
    dataset = PairDataset(files, list(channel_names(cfg)), lag=1)
    m, t = s.model, s.train
    config = SurrogateConfig(dataset.spec, task="emulate", objective="mse", model_channels=m.model_channels,
                             channel_mult=m.channel_mult, num_res_blocks=m.num_res_blocks)
    trainer = Trainer(Surrogate(config), TrainConfig(batch_size=t.batch_size, lr=t.lr, lr_warmup_steps=t.lr_warmup_steps,
                                                     ema_halflife_steps=t.ema_halflife_steps, seed=t.seed,
                                                     device=cfg.worker.device))
    log.info("MSE baseline: %d optimizer steps on %d pairs from %d member file(s)", steps, len(dataset), len(files))
    trainer.fit(dataset, steps=steps, checkpoint=out, checkpoint_every=max(steps, 1))
    return Baseline(trainer, [member.theta for member in dataset.members])


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
