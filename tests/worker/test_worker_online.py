"""The worker in real MPMD jobs with the embedded gyre (or a stand-in ocean): online
training, relaunch from a checkpoint, emulation checked on the ocean side, NaN states."""
from __future__ import annotations

import json
import re
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch
from worker_fixtures import launch, write_config

STANDIN = str(Path(__file__).with_name("standin_ocean.py"))
N = 32
WET = {name: np.ones((N, N), bool) for name in ("ssh", "temp", "u", "v")}
WET["u"][:, -1] = False  # u on the eastern wall (gyre/README.md, grid indexing)
WET["v"][-1, :] = False  # v on the northern wall


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "worker_summary.json").read_text())


def set_train(config: Path, **values) -> Path:
    """Add keys to [worker.train] of a test config."""
    extra = "".join(f"\n{k} = {v}" for k, v in values.items())
    config.write_text(config.read_text().replace("log_every = 10", "log_every = 10" + extra))
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, gyre_exe) -> Path:
    """One online training run: 32x32 gyre, states every 4 steps, 100 optimizer steps."""
    run_dir = tmp_path_factory.mktemp("online")
    res = launch(set_train(write_config(run_dir, steps=400), min_steps=100))
    assert res.returncode == 0, res.stdout
    assert "gyre: normal end" in res.stdout
    return run_dir


def test_online_training_loss_decreases(trained):
    s = summary(trained)
    assert s["counters"]["received"] == 101 and s["counters"]["pairs"] == 100 and s["counters"]["rejected"] == 0
    losses = np.array([loss for _, loss in s["losses"]])
    assert s["train_steps"] == len(losses) >= 100
    first, last = losses[:20].mean(), losses[-20:].mean()  # EDM losses are noisy: compare 20-step means
    assert last < 0.9 * first, f"loss did not decrease: first 20 steps {first:.3f}, last 20 {last:.3f}"
    assert 0.0 < s["train_fraction"] <= 1.0


def test_relaunch_resumes_buffer_and_counters(trained):
    """A second launch starts from the first one's final checkpoint: same buffer, same counters."""
    before = torch.load(trained / "worker_ckpt.pt", weights_only=False)
    res = launch(trained / "deploy.toml")
    assert res.returncode == 0, res.stdout
    line = re.search(r"resumed from .*: train step (\d+), buffer (\d+) sample\(s\) \(n_put (\d+), n_got (\d+)\)",
                     res.stdout)
    assert line, res.stdout
    b = before["buffer"]
    assert [int(g) for g in line.groups()] == [before["trainer"]["step"], len(b["items"]) if "items" in b
                                              else int(line.group(2)), b["counters"]["n_put"], b["counters"]["n_got"]]
    after = torch.load(trained / "worker_ckpt.pt", weights_only=False)
    assert after["counters"]["launches"] == 2
    assert after["counters"]["received"] == 2 * before["counters"]["received"]
    assert after["buffer"]["counters"]["n_put"] == 2 * b["counters"]["n_put"]
    assert after["trainer"]["step"] > before["trainer"]["step"]


def test_emulator_state_becomes_what_the_worker_sent(tmp_path, gyre_exe):
    """On every emulator step, gyre's own output of that step equals the state the worker sent."""
    config = write_config(tmp_path, steps=40, modes=("train", "emulate"), emulate=True)
    res = launch(config)
    assert res.returncode == 0, res.stdout
    with netCDF4.Dataset(tmp_path / "emulated.nc") as emu, netCDF4.Dataset(next(tmp_path.glob("*_fields.nc"))) as oce:
        emu.set_auto_mask(False)
        oce.set_auto_mask(False)
        steps = list(emu["step"][:])
        assert steps == list(range(4, 41, 4))
        ocean_steps = list(oce["step"][:])
        for t, kt in enumerate(steps):
            r = ocean_steps.index(kt)
            for name in ("ssh", "u", "v", "temp"):
                sent, got = emu[f"{name}_emulated"][0, t], oce[name][r]
                wet = WET[name]  # gyre applies a state on the ocean points of each variable's grid
                np.testing.assert_array_equal(got[wet], sent[wet], err_msg=f"{name} at step {kt}")
                assert not got[~wet].any(), f"{name} at step {kt}: the wall values must stay 0"
                assert not np.array_equal(sent, emu[f"{name}_ocean"][0, t])  # the sample is not the ocean's step
    assert summary(tmp_path)["counters"]["emulated"] == 10


def test_nan_states_rejected_counted_and_training_goes_on(tmp_path):
    config = set_train(write_config(tmp_path, steps=80, ocean_args=(STANDIN, "nan", "40")), min_steps=10)
    res = launch(config)
    assert res.returncode == 0, res.stdout
    assert "member 'gyre' step 40: NaN/Inf in field(s) ['ssh']; state rejected" in res.stdout
    s = summary(tmp_path)
    assert s["counters"]["rejected"] == 1 and s["counters"]["received"] == 21
    assert s["counters"]["pairs"] == 18  # the pairs into and out of step 40 are dropped
    assert s["train_steps"] >= 10
