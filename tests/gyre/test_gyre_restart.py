"""Restart exactness (same and different decomposition) and volume conservation in the closed basin."""
from __future__ import annotations

import math

import numpy as np
import pytest
from gyre_testlib import FIELDS, assert_ok, gyrerun, read_nc, small_cfg


@pytest.mark.mpi
@pytest.mark.parametrize("een", [False, True], ids=["sadourny", "een"])
def test_restart_is_bit_identical(gyre_exe, tmp_path, een):
    phys = {"ln_dynvor_een": een}
    straight = gyrerun.make_rundir(tmp_path / "straight", small_cfg(namrun={"nn_itend": 30, "nn_stock": 15},
                                                                    namphys=phys))
    assert_ok(gyrerun.run_gyre(straight, 1, exe=gyre_exe))
    assert (straight / "gyre_00000015_restart.nc").exists()
    ref = read_nc(straight / "gyre_00000030_restart.nc")
    ref_f = read_nc(straight / "gyre_fields.nc")
    for name, ranks, layout in (("same", 1, (1, 1)), ("other-decomposition", 2, (2, 1))):
        cfg = small_cfg(namrun={"nn_itend": 30, "ln_rstart": True, "cn_ocerst_in": "../straight/gyre_00000015_restart",
                                "nn_it000": 999},   # ignored: taken from the restart
                        namdom={"jpni": layout[0], "jpnj": layout[1]}, namphys=phys)
        rd = gyrerun.make_rundir(tmp_path / name, cfg)
        res = gyrerun.run_gyre(rd, ranks, exe=gyre_exe)
        assert_ok(res)
        assert "this run starts at step 16" in res.stdout
        got = read_nc(rd / "gyre_00000030_restart.nc")
        got_f = read_nc(rd / "gyre_fields.nc")
        assert int(got["kt"]) == 30
        assert list(got_f["step"]) == [20, 25, 30]      # no duplicate of the restart state
        for f in FIELDS:
            assert np.array_equal(got[f], ref[f]), f"{f} after restart ({name}) differs"
            assert np.array_equal(got_f[f], ref_f[f][-3:]), f"{f} output after restart ({name}) differs"
        assert np.array_equal(got_f["time"], ref_f["time"][-3:])


@pytest.mark.mpi
def test_volume_is_conserved_to_roundoff(gyre_exe, rundir):
    rd = rundir("vol", small_cfg(namrun={"nn_itend": 200, "nn_write": 50, "nn_diag": 10}, namdom={"jpni": 2, "jpnj": 1}))
    assert_ok(gyrerun.run_gyre(rd, 2, exe=gyre_exe))
    f = read_nc(rd / "gyre_fields.nc")
    d = read_nc(rd / "gyre_diag.nc")
    ocean = f["mask"] == 1
    for k in range(1, len(f["step"])):
        ssh = f["ssh"][k][ocean]
        scale = math.fsum(np.abs(ssh))
        assert scale > 1.0                                  # the surface has moved by metres in total
        assert abs(math.fsum(ssh)) < 1e-12 * scale, f"sum(ssh) drifts at step {f['step'][k]}"
    # the diagnostics file says the same: volume anomaly at round-off level of the moving volume
    rgfac = 9.81 / float(f["gprime"])
    scale = rgfac * 40.0e3 * 40.0e3 * math.fsum(np.abs(f["ssh"][-1][ocean]))
    assert np.all(np.abs(d["volume_anomaly"]) < 1e-12 * scale)
    assert np.all(np.abs(d["volume"] - d["volume"][0]) <= 1e-12 * d["volume"][0])
    assert d["ke"][-1] > 0 and np.all(np.isfinite(d["heat"]))


@pytest.mark.mpi
def test_restart_written_from_a_state_continues_bit_identically(gyre_exe, tmp_path):
    """gyrerun.write_restart (how a generated state becomes a member's start): the state of gyre's own step-15
    restart, written anew, gives the same step 30 to the bit; a state without 'temp' is refused by name."""
    straight = gyrerun.make_rundir(tmp_path / "straight", small_cfg(namrun={"nn_itend": 30, "nn_stock": 15}))
    assert_ok(gyrerun.run_gyre(straight, 1, exe=gyre_exe))
    own = read_nc(straight / "gyre_00000015_restart.nc")
    state = {f: own[f] for f in FIELDS}
    made = gyrerun.write_restart(tmp_path / "made_restart.nc", state, kt=15, dt=2400.0, dx=40.0e3, dy=40.0e3)
    rd = gyrerun.make_rundir(tmp_path / "from_state", small_cfg(namrun={"nn_itend": 30, "ln_rstart": True,
                                                                        "cn_ocerst_in": str(made)}))
    assert_ok(gyrerun.run_gyre(rd, 1, exe=gyre_exe))
    got, ref = read_nc(rd / "gyre_00000030_restart.nc"), read_nc(straight / "gyre_00000030_restart.nc")
    for f in FIELDS:
        assert np.array_equal(got[f], ref[f]), f
    with pytest.raises(ValueError, match=r"lacks \['temp'\]"):
        gyrerun.write_restart(tmp_path / "bad.nc", {f: own[f] for f in ("ssh", "u", "v")}, dx=1.0, dy=1.0)
