"""Ensembles and static fields over the bridge: K gyre members named by cn_obr_name, the mask sent once."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gyre_testlib import assert_ok, gyrerun, read_nc, small_cfg

WORKER = Path(__file__).resolve().parent / "gyre_worker.py"
pytestmark = pytest.mark.mpi
FIELDS = (("ssh", "ssh"), ("u", "u"), ("v", "v"), ("temp", "temp"))


def _member_cfg(name: str, tau0: float) -> dict:
    obr = {"ln_obridge": True, "cn_obr_name": name, "rn_obr_timeout": 30.0, "nn_obr_freq": 2,
           "cn_obr_send": ["ssh", "u", "v", "temp", "mask"]}
    return small_cfg(namobridge=obr, namrun={"nn_itend": 6, "nn_write": 2}, namphys={"rn_tau0": tau0})


def test_two_members_exchange_bit_exact(gyre_coupled_exe, tmp_path):
    """K=2 members '<model>_<k>' with their own parameters and run directories join one launch with one
    worker that declares every field once per peer; each receives exactly its member's netCDF output."""
    members = {"gyre_1": 0.3, "gyre_2": 0.6}
    dirs = [gyrerun.make_rundir(tmp_path / name, _member_cfg(name, tau0)) for name, tau0 in members.items()]
    worker = [sys.executable, str(WORKER), "record", "--members", *map(str, dirs)]
    res = gyrerun.run_members(dirs, 1, worker=worker, cwd=tmp_path, exe=gyre_coupled_exe, timeout=120)
    assert res.returncode == 0 and res.stdout.count("gyre: normal end") == 2, res.output
    assert "component gyre_1:" in res.stdout and "component gyre_2:" in res.stdout
    got = np.load(tmp_path / "worker.npz")
    ncs = {name: read_nc(d / "gyre_fields.nc") for name, d in zip(members, dirs)}
    for name, nc in ncs.items():
        assert list(nc["step"]) == [0, 2, 4, 6]
        for rec, step in enumerate(nc["step"]):
            for wire, var in FIELDS:
                assert np.array_equal(got[f"{name}:{wire}@{step}"][0], nc[var][rec]), f"{name} {wire} at step {step}"
        assert np.array_equal(got[f"{name}:mask@0"][0], nc["mask"])
    # the members are different runs: the worker did not get one member's fields twice
    assert not np.array_equal(ncs["gyre_1"]["u"][-1], ncs["gyre_2"]["u"][-1])


def test_mask_travels_once(gyre_coupled_exe, rundir):
    """'mask' in cn_obr_send: the T mask (1 ocean, 0 land) is put once at nit000-1 as field 'mask'; the
    worker's receives match the netCDF mask bit for bit, and no second put is waiting (the run ends cleanly)."""
    obr = {"ln_obridge": True, "rn_obr_timeout": 20.0, "nn_obr_freq": 3, "cn_obr_send": ["mask", "sst"]}
    rd = rundir("mask", small_cfg(namobridge=obr, namrun={"nn_itend": 6, "nn_write": 3},
                                  namdom={"jpni": 2, "jpnj": 1}))
    res = gyrerun.run_gyre(rd, 2, worker=[sys.executable, str(WORKER), "record"], exe=gyre_coupled_exe, timeout=120)
    assert_ok(res)
    got = np.load(rd / "worker.npz")
    nc = read_nc(rd / "gyre_fields.nc")
    mask = got["mask@0"]
    assert mask.shape == (1, 24, 32) and mask.dtype == np.float64
    assert np.array_equal(mask[0], nc["mask"].astype(np.float64))
    assert 0 < mask.sum() < mask.size, "the test basin has an island: the mask holds land and ocean"
    # namelist_cfg's list replaces the reference list 'ssh','u','v','temp' as a whole
    assert sorted(got.files) == ["mask@0", "sst@0", "sst@3", "sst@6"]
    for rec, step in enumerate(nc["step"]):
        assert np.array_equal(got[f"sst@{step}"][0], nc["temp"][rec])
