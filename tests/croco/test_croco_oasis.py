"""CROCO BASIN built with ``oceanbridge install croco --backend oasis``: states through OASIS3-MCT.

Needs ``CROCO_OASIS_DIR`` (a BASIN run folder built that way, with OUT_DOUBLE, against the OASIS3-MCT
of ``OASIS_DIR``: ``jobcomp --prism-dir $OASIS_DIR``). pyoasis 5 is not available here, so
tests/oasis/sink_worker.F90 plays a train-only worker; preprod writes the namcouple and
namelist_obridge, and the command is what ``oceanbridge launch`` runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "oasis"))
from croco_testlib import DT, NX, NY, croco_ranks, history, run_folder  # noqa: E402

CROCO_OASIS_DIR = os.environ.get("CROCO_OASIS_DIR")
pytestmark = [pytest.mark.croco, pytest.mark.oasis, pytest.mark.mpi,
              pytest.mark.skipif(not CROCO_OASIS_DIR, reason="CROCO_OASIS_DIR is not set (a BASIN run folder built "
                                                             "with oceanbridge install croco --backend oasis)")]
STEPS, FREQ = 12, 3


def test_croco_sends_its_states_through_oasis(tmp_path):
    from oasis_jobs import BUILD, compile_program, make_bridge

    from bridge.config.config import load_config
    from deploy.launch import build_command
    from deploy.mpmd import job_env
    from deploy.oasis_fortran import find_oasis_fortran
    from deploy.preprod import preprod
    try:
        oasis = find_oasis_fortran()
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT not available: {err}")
    src = Path(CROCO_OASIS_DIR)
    run = run_folder(src, tmp_path / "run", STEPS, FREQ, {"ln_obridge": ".false."})
    make_bridge(BUILD, oasis)
    sink = compile_program("sink_worker", oasis, BUILD, tmp_path / "prog")
    worker = tmp_path / "worker.sh"   # stands in for 'python -m deploy.cli worker' (needs pyoasis)
    worker.write_text(f"#!/bin/sh\nexec {sink} {NX} {NY} {STEPS} {int(DT)} WORKER_CROCO_SST WORKER_CROCO_SSH\n")
    worker.chmod(0o755)
    fields = "".join(f'[[fields]]\nname = "{n}"\ndirection = "ocean_to_worker"\nfreq = {FREQ}\n' for n in ("sst", "ssh"))
    (tmp_path / "cfg.toml").write_text(
        f'[run]\nbackend = "oasis"\nrun_dir = "{run}"\ndt = {DT}\nsteps = {STEPS}\n[ocean]\nmodel = "croco"\n'
        f'executable = "{run}/croco"\nargs = ["croco.in"]\nranks = {croco_ranks(src)}\nnx = {NX}\nny = {NY}\n'
        f'[worker]\npython = "{worker}"\n{fields}')
    cfg = load_config(tmp_path / "cfg.toml")
    preprod(cfg)
    res = subprocess.run(build_command(cfg, "mpirun"), cwd=run, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **job_env(cfg)})
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "MAIN: DONE" in out, out[-4000:]
    his = history(run)
    for name, wire in (("sst", "WORKER_CROCO_SST"), ("ssh", "WORKER_CROCO_SSH")):
        assert f"sink worker: {wire} receptions {STEPS // FREQ + 1} " in out, out[-4000:]   # t = 0, 3 dt, ... 12 dt
        sent = np.fromfile(run / f"sink_{wire}.bin").reshape(NY, NX)
        want = his[STEPS]["temp"][-1] if name == "sst" else his[STEPS]["ssh"][0]
        np.testing.assert_array_equal(sent, want, err_msg=name)
        assert np.ptp(sent) > 0


def test_oceanbridge_worker_emulates_into_croco_on_oasis(tmp_path):
    """train + emulate through OASIS: 'oceanbridge worker' (on the pyoasis stand-in of tests/oasis, over real
    OASIS3-MCT) and CROCO exchange temp_emu/ssh_emu at t = 0 too (CROCO discards them), and at every emulator
    step CROCO's own history, written after the apply, holds exactly the temp and ssh the worker sent."""
    import netCDF4
    from croco_testlib import NLEV, deploy_config
    from oasis_jobs import build_pyoasis_standin

    from bridge.config.config import load_config
    from deploy.launch import build_command
    from deploy.mpmd import job_env
    from deploy.oasis_fortran import find_oasis_fortran
    from deploy.preprod import preprod
    try:
        library = build_pyoasis_standin(find_oasis_fortran(), tmp_path / "standin")
    except ValueError as err:
        pytest.skip(f"the Python worker cannot run on this OASIS3-MCT: {err}")
    src = Path(CROCO_OASIS_DIR)
    run = run_folder(src, tmp_path / "run", STEPS, FREQ, {"ln_obridge": ".false."})
    cfg = load_config(deploy_config(run, STEPS, FREQ, croco_ranks(src), backend="oasis",
                                    fields=[("ssh", 1), ("temp", NLEV)], emulate=True))
    preprod(cfg)
    env = {**os.environ, **job_env(cfg), "OBRIDGE_PYOASIS_STANDIN": str(library),
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE.parent / "oasis" / "standin_module")])}
    res = subprocess.run(build_command(cfg, "mpirun"), cwd=run, capture_output=True, text=True, timeout=400, env=env)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "MAIN: DONE" in out, out[-4000:]
    his = history(run)
    with netCDF4.Dataset(run / "emulated.nc") as emu:
        emu.set_auto_mask(False)
        steps = [int(k) for k in emu["step"][:]]
        assert steps == list(range(FREQ, STEPS + 1, FREQ)), steps
        for t, kt in enumerate(steps):   # BASIN has no land: every point is a sea point
            for name in ("temp", "ssh"):
                sent = emu[f"{name}_emulated"][0, t] if name == "ssh" else \
                    np.stack([emu[f"temp@{k}_emulated"][0, t] for k in range(NLEV)])
                np.testing.assert_array_equal(his[kt][name], sent.reshape(his[kt][name].shape),
                                              err_msg=f"{name} at step {kt}")
            assert not np.array_equal(emu["ssh_emulated"][0, t], emu["ssh_ocean"][0, t]), kt  # not CROCO's own
