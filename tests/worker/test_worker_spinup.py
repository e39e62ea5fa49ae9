"""Spin-up mode: the worker sends a state generated for the member's θ at the start, and gyre
starts from it (checked on gyre's own output of step nit000-1)."""
from __future__ import annotations

import netCDF4
import numpy as np
import torch
from test_worker_online import WET
from worker_fixtures import launch, write_config

from models.data import Batch, DataSpec
from models.surrogate import Surrogate, SurrogateConfig
from models.train import TrainConfig, Trainer

CHANNELS = ("ssh", "u", "v", "temp")


def tiny_generator(path, n: int = 32) -> None:
    """A 'generate' surrogate p(x | θ) fitted for two steps on plausible gyre-like fields."""
    spec = DataSpec(CHANNELS, ("tau0",), n, n)
    trainer = Trainer(Surrogate(SurrogateConfig(spec, task="generate", model_channels=4, channel_mult=(1,))),
                      TrainConfig(batch_size=2, norm_warmup_steps=2, device="cpu"))
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor([1e-4, 1e-5, 1e-5, 1e-3])[None, :, None, None]  # tiny: an untrained generator must not blow gyre up
    offset = torch.tensor([0.0, 0.0, 0.0, 15.0])[None, :, None, None]
    for _ in range(2):
        x = offset + scale * torch.randn((2, 4, n, n), generator=gen)
        trainer.train_step(Batch(target=x, theta=torch.full((2, 1), 0.12), mask=torch.ones(1, 1, n, n)))
    trainer.save(path)


def test_spinup_state_is_where_gyre_starts(tmp_path, gyre_exe):
    tiny_generator(tmp_path / "generator.pt")
    extra = '\n[worker.spinup]\ncheckpoint = "generator.pt"\nnum_steps = 2\n'
    config = write_config(tmp_path, steps=8, modes=("spinup",), spinup=True)
    config.write_text(config.read_text().replace("[model]", extra + "\n[model]"))
    res = launch(config)
    assert res.returncode == 0, res.stdout
    assert "member 'gyre': generated initial state sent at step 0" in res.stdout
    with netCDF4.Dataset(tmp_path / "initial.nc") as ini, netCDF4.Dataset(tmp_path / "gyre_fields.nc") as oce:
        ini.set_auto_mask(False)
        oce.set_auto_mask(False)
        assert list(oce["step"][:])[0] == 0
        for name in CHANNELS:
            sent, got = ini[f"{name}_initial"][0, 0], oce[name][0]
            np.testing.assert_array_equal(got[WET[name]], sent[WET[name]], err_msg=name)
    assert np.isfinite(sent).all() and np.abs(sent).max() > 0
