"""Two worker ranks: each receives its own j-band of the grid, they train in lock step and
stay identical (gradients averaged, normalizer statistics pooled), with no gather."""
from __future__ import annotations

import json

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
