"""netCDF reader details: 3-D fields, missing values, layering."""
import subprocess
import sys

import netCDF4
import numpy as np
import pytest
import torch

from models.data import PairDataset, describe_file, read_member
from models.synthetic import write_tiny


def test_levels_become_channels_and_fill_values_are_land(tmp_path):
    path = tmp_path / "z.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.parameters = "tau0"
        for name, n in (("time", None), ("z", 3), ("y", 4), ("x", 5)):
            ds.createDimension(name, n)
        ds.createVariable("tau0", "f8", ()).assignValue(0.1)
        m = ds.createVariable("mask", "i4", ("y", "x"))
        mask = np.ones((4, 5), int)
        mask[0, 0] = 0
        m[:] = mask
        t = ds.createVariable("temp", "f4", ("time", "z", "y", "x"), fill_value=1e20)
        data = np.ma.masked_array(np.arange(2 * 3 * 20, dtype="f4").reshape(2, 3, 4, 5))
        data[:, :, 0, 0] = np.ma.masked  # land written as _FillValue
        t[:] = data
    member = read_member(path, ["temp"])
    assert member.channels == ("temp@0", "temp@1", "temp@2")
    assert member.fields.shape == (2, 3, 4, 5) and np.all(member.fields[:, :, 0, 0] == 0)
    assert member.fields[1, 2, 3, 4] == 2 * 3 * 20 - 1
    assert member.theta.tolist() == [pytest.approx(0.1)]
    assert "variables ['temp'] on 4x5, parameters ['tau0']" in describe_file(path)


def test_generation_pairs_use_initial_state(tmp_path):
    path = write_tiny(tmp_path / "g.nc", nt=6)
    ds = PairDataset([str(path)], ["ssh"], task="generate", cond_on_initial=True, skip=2)
    assert len(ds) == 4  # records 2..5, each conditioned on record 0
    batch = ds.batch(torch.arange(4))
    assert torch.equal(batch.state[0], ds.fields[0]) and torch.equal(batch.target[0], ds.fields[2])


def test_models_never_imports_bridge():
    code = ("import sys, pkgutil, importlib, models\n"
            "for m in pkgutil.iter_modules(models.__path__): importlib.import_module('models.' + m.name)\n"
            "assert not [m for m in sys.modules if m == 'bridge' or m.startswith('bridge.')]\n"
            "assert not [m for m in sys.modules if m == 'mpi4py']\n")
    subprocess.run([sys.executable, "-c", code], check=True)
