"""Bad input stops the run with a message naming the culprit: namelists, CFL, NaN / blow-up."""
from __future__ import annotations

import re

import numpy as np
import pytest
from gyre_testlib import assert_ok, gyrerun, read_nc, small_cfg


def _fails(res, *needles):
    assert res.returncode != 0, f"gyre should have stopped:\n{res.output}"
    assert "gyre: normal end" not in res.stdout
    for needle in needles:
        assert needle in res.output, f"{needle!r} missing from:\n{res.output}"


@pytest.mark.mpi
@pytest.mark.parametrize("cfg_text, needles", [
    ("&namrun\n  nn_itend = 5\n  nn_foo = 3\n/\n", ["namelist_cfg", "&namrun", "unknown variable", "nn_foo"]),
    ("&namphys\n  rn_tau0 = 0.1, rn_visc = 3.\n/\n", ["&namphys", "rn_visc"]),
    ("&namrun\n  nn_itend = 5\n/\n&namfoo\n  x = 1\n/\n", ["namelist_cfg", "unknown namelist block &namfoo"]),
    ("&namobridge\n  cn_obr_emu_mode = 'swap'\n/\n", ["cn_obr_emu_mode", "'swap'"]),
    ("&namobridge\n  cn_obr_send = 'ssh', 'sss'\n/\n", ["cn_obr_send(2)", "'sss'"]),
    ("&namrun\n  nn_itend = 'ten'\n/\n", ["&namrun", "bad entry"]),
    ("&namobridge\n  cn_obr_send = 'mask', 'ssh', 'mask'\n/\n", ["cn_obr_send", "'mask' twice"]),
    ("&namobridge\n  cn_obr_name = ''\n/\n", ["cn_obr_name is empty"]),
    ("&namobridge\n  cn_obr_name = 'gyre 1'\n/\n", ["cn_obr_name = 'gyre 1' contains a blank"]),
    ("&namobridge\n  cn_obr_name = '" + "g" * 65 + "'\n/\n", ["cn_obr_name has 65 characters", "64"]),
    # coupled: the bad name stops the run before the bridge is touched (no worker needed, no hang)
    ("&namobridge\n  ln_obridge = .true., cn_obr_name = ' gyre'\n/\n", ["cn_obr_name = ' gyre' contains a blank"]),
    ("&namdom\n  jpni = 3, jpnj = 1\n/\n", ["jpni*jpnj", "2 MPI ranks"]),
    ("&namphys\n  ln_dynvor_een = .true., rn_apvm = 0.2\n/\n", ["&namphys: rn_apvm > 0", "ln_dynvor_een"]),
])
def test_bad_namelist_stops_naming_it(gyre_exe, rundir, cfg_text, needles):
    rd = rundir("nml", raw_cfg=cfg_text)
    _fails(gyrerun.run_gyre(rd, 2, exe=gyre_exe, timeout=60), *needles)


@pytest.mark.mpi
def test_cfl_violation_stops_printing_the_limit(gyre_exe, rundir):
    rd = rundir("cfl", small_cfg(namrun={"rn_dt": 20000.0}))
    res = gyrerun.run_gyre(rd, 1, exe=gyre_exe, timeout=60)
    _fails(res, "CFL", "rn_dt = 20000.0 s", "limit")
    limit = float(re.search(r"limit ([0-9.]+) s", res.stdout).group(1))
    assert 100.0 < limit < 20000.0
    # the printed limit is the real threshold at rest: just below it runs, just above it stops (once the flow is
    # moving, the flow's own CFL check takes over: test_flow_cfl_stops_before_the_blowup)
    below = rundir("below", small_cfg(namrun={"rn_dt": round(0.99 * limit, 1), "nn_itend": 10, "nn_write": 0}))
    assert_ok(gyrerun.run_gyre(below, 1, exe=gyre_exe, timeout=60))
    above = rundir("above", small_cfg(namrun={"rn_dt": round(1.01 * limit, 1), "nn_itend": 2}))
    _fails(gyrerun.run_gyre(above, 1, exe=gyre_exe, timeout=60), "CFL", f"limit {limit:.1f} s")


def _blowup_cfg(**namctl):
    return small_cfg(namrun={"nn_itend": 400, "nn_stock": 3, "nn_write": 0, "rn_dt": 1200.0},
                     namphys={"rn_tau0": 40.0}, namctl=namctl)


@pytest.mark.mpi
@pytest.mark.parametrize("namctl, field_re", [
    ({}, r"field '(ssh': the layer thickness .* below rn_hmin|(u|v)': max \|(u|v)\| = .* exceeds the &namctl limit)"),
    ({"rn_umax": 1.0e300, "rn_hmin": -1.0e300, "rn_tmax": 1.0e300, "rn_cflmax": 1.0e300},
     r"field '(ssh|u|v|temp)' is NaN at \d+ points"),
], ids=["threshold", "nan"])
def test_blowup_stops_naming_step_and_field_and_keeps_last_restart(gyre_exe, rundir, namctl, field_re):
    rd = rundir("blowup", _blowup_cfg(**namctl))
    res = gyrerun.run_gyre(rd, 2, exe=gyre_exe, timeout=120)
    _fails(res, "blow-up at step")
    assert re.search(field_re, res.stdout), res.stdout
    step = int(re.search(r"blow-up at step (\d+)", res.stdout).group(1))
    last = re.search(r"last good restart: (\S+)", res.stdout).group(1)
    restarts = sorted(rd.glob("gyre_*_restart.nc"))
    assert restarts and restarts[-1].name == last
    assert not list(rd.glob("*.tmp"))
    good = read_nc(rd / last)
    assert int(good["kt"]) == 3 * ((step - 1) // 3) < step
    for name in ("ssh", "u", "v", "temp"):
        assert np.all(np.isfinite(good[name]))
    if "rn_cflmax" in namctl:   # thresholds off: the last finite state is wild (the CFL check at restart would rightly stop it)
        return
    # the last good restart is a valid start: read, checked (CFL, NaN / blow-up) and accepted (zero steps: with the
    # same forcing the next step blows up again, as it should)
    cfg = _blowup_cfg(**namctl)
    cfg["namrun"].update(ln_rstart=True, cn_ocerst_in=f"../blowup/{last}", nn_itend=int(good["kt"]))
    res = gyrerun.run_gyre(rundir("again", cfg), 1, exe=gyre_exe, timeout=60)
    assert_ok(res)
    assert f"this run starts at step {int(good['kt']) + 1}" in res.stdout


@pytest.mark.mpi
def test_flow_cfl_stops_before_the_blowup(gyre_exe, rundir):
    """A wind that accelerates the flow past the CFL limit: the flow's CFL check stops the run, naming the CFL
    number and the step, before any NaN (the same run with every check off ends in NaN, a few steps later)."""
    rd = rundir("cflflow", _blowup_cfg(rn_umax=1.0e300, rn_hmin=-1.0e300, rn_tmax=1.0e300))
    res = gyrerun.run_gyre(rd, 2, exe=gyre_exe, timeout=120)
    _fails(res, "the flow breaks the CFL condition", "> rn_cflmax = 1.000", "last good restart")
    number = float(re.search(r"CFL number ([0-9.]+) >", res.stdout).group(1))
    assert 1.0 < number < 10.0
    step = int(re.search(r"CFL: at step (\d+)", res.stdout).group(1))
    nan = gyrerun.run_gyre(rundir("nan", _blowup_cfg(rn_umax=1.0e300, rn_hmin=-1.0e300, rn_tmax=1.0e300,
                                                     rn_cflmax=1.0e300)), 2, exe=gyre_exe, timeout=120)
    _fails(nan, "is NaN at")
    assert step < int(re.search(r"blow-up at step (\d+)", nan.stdout).group(1))
