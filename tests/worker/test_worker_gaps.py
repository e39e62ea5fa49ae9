"""The worker next to an ocean that removed land-only subdomains (issue 20): the points no ocean rank owns are
land to it.

The stand-in ocean owns only the first nx - 4 columns of the grid and declares the gaps.  The worker receives 0
(GAP_FILL) there, its mask says land there (the mask of ensemble.nc, the loss's and the samples'), and the rest
of each received state is the ocean's own.  A [model] mask_file that marks those points as ocean stops the worker
before its first step, naming the first of them.
"""
from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
from worker_fixtures import launch, write_config

STANDIN = str(Path(__file__).with_name("standin_ocean.py"))
N, GAP = 16, 4  # grid and the columns no ocean rank owns


def test_points_no_ocean_rank_owns_are_land_to_the_worker(tmp_path):
    config = write_config(tmp_path, steps=8, n=N, members=2, modes=("train", "ensemble"),
                          ocean_args=(STANDIN, "gaps", str(GAP)))
    res = launch(config, timeout=180)
    assert res.returncode == 0, res.stdout[-4000:]
    assert f"the ocean's ranks own no point at {GAP * N} of {N * N} grid points" in res.stdout, res.stdout[-3000:]
    with netCDF4.Dataset(tmp_path / "ensemble.nc") as ds:
        mask, ssh = ds["mask"][:], np.ma.filled(ds["ssh_mean"][:], np.nan)
    assert np.all(mask[:, N - GAP:] == 0) and np.all(mask[:, :N - GAP] == 1)
    assert np.all(ssh[:, :, N - GAP:] == 0.0)  # GAP_FILL
    j, i = np.meshgrid(np.arange(N), np.arange(N - GAP), indexing="ij")
    first = np.sin(0.2 * i + 0.1 * j + 0.05 * 0 + 0)  # the stand-in's ssh at step 0 (the first state sent)
    assert np.allclose(ssh[0, :, :N - GAP], first, atol=1e-6)  # (stored as float32)


def test_a_mask_file_with_ocean_where_no_ocean_rank_owns_stops_the_worker(tmp_path):
    mask_file = tmp_path / "mask.nc"
    with netCDF4.Dataset(mask_file, "w") as ds:
        ds.createDimension("y", N)
        ds.createDimension("x", N)
        ds.createVariable("mask", "i1", ("y", "x"))[:] = np.ones((N, N), "i1")  # all ocean: wrong here
    config = write_config(tmp_path, steps=8, n=N, ocean_args=(STANDIN, "gaps", str(GAP)))
    text = config.read_text().replace("[model]\n", f'[model]\nmask_file = "{mask_file}"\n')
    config.write_text(text)
    res = launch(config, timeout=180)
    assert res.returncode != 0
    assert (f"the ocean's ranks own no point at i={N - GAP}, j=0 (and {GAP * N - 1} more), which [model] mask_file "
            f"{mask_file} marks as ocean") in res.stdout, res.stdout[-3000:]
