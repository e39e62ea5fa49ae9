"""Two worker ranks: each receives its own j-band of the grid, they train in lock step and
stay identical (gradients averaged, normalizer statistics pooled), with no gather."""
from __future__ import annotations

import json

import netCDF4
import numpy as np
import torch
from test_worker_online import set_train
from worker_fixtures import launch, write_config


def tensors(state: dict) -> dict:
    """Network weights and the normalizer statistics (what the worker keeps in step across ranks)."""
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor) and k.split(".")[0] in
            ("net", "norm_x", "norm_dx", "norm_theta")}


def test_two_worker_ranks_train_identical_models(tmp_path, gyre_exe):
    config = set_train(write_config(tmp_path, steps=80, worker_ranks=2, ocean_ranks=2), min_steps=15)
    res = launch(config)
    assert res.returncode == 0, res.stdout
    assert "tunnel: rank 0/2" in res.stdout and "owns i=0..31, j=0..15" in res.stdout
    assert "owns i=0..31, j=16..31" in res.stdout
    a = torch.load(tmp_path / "worker_ckpt_r0.pt", weights_only=False)["trainer"]
    b = torch.load(tmp_path / "worker_ckpt_r1.pt", weights_only=False)["trainer"]
    assert a["step"] == b["step"] >= 15
    for name, t in tensors(a["model"]).items():
        torch.testing.assert_close(t, tensors(b["model"])[name], rtol=0, atol=0, msg=name)
    losses = [loss for _, loss in json.loads((tmp_path / "worker_summary.json").read_text())["losses"]]
    assert np.isfinite(losses).all()


def test_two_worker_ranks_emulate_one_grid(tmp_path, gyre_exe):
    """With two worker ranks the emulated state is sampled as one grid (halos exchanged at every network
    call, models/bands.py); the ocean applies the two bands the ranks send, and each rank's file holds
    its band of what the ocean then holds."""
    config = write_config(tmp_path, steps=40, modes=("train", "emulate"), emulate=True, worker_ranks=2,
                          ocean_ranks=2)
    res = launch(config)
    assert res.returncode == 0, res.stdout
    assert "sampling: 2 bands of rows [(0, 15), (16, 31)], tiles (16, 32) overlapping by 8" in res.stdout
    halo = json.loads((tmp_path / "worker_summary.json").read_text())["halo"]
    # each sampled state: the condition's state, mask and position once, then x at each of 35 network calls
    # (18 Heun steps); states asked for before the first optimizer step are persistence, not sampled
    assert halo["exchanges"] > 0 and halo["exchanges"] % (3 + 35) == 0, halo
    assert halo["reads_rows"] == [0, 24]  # rank 0: tiles at rows 0 and 8
    sent = []
    for rank, rows in ((0, slice(0, 16)), (1, slice(16, 32))):
        with netCDF4.Dataset(tmp_path / f"emulated_r{rank}.nc") as emu:
            emu.set_auto_mask(False)
            assert list(emu["step"][:]) == list(range(4, 41, 4))
            assert emu["ssh_emulated"].shape[-2:] == (16, 32)
            sent.append(emu["ssh_emulated"][0])
    state = np.concatenate(sent, axis=-2)  # (time, 32, 32): the whole grid the ranks sampled together
    with netCDF4.Dataset(next(tmp_path.glob("*_fields.nc"))) as oce:
        oce.set_auto_mask(False)
        ocean_steps = list(oce["step"][:])
        for t, kt in enumerate(range(4, 41, 4)):
            np.testing.assert_array_equal(oce["ssh"][ocean_steps.index(kt)], state[t], err_msg=f"step {kt}")
