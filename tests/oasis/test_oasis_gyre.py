"""The embedded gyre on the OASIS backend, deployed eophis-style: preprod writes the namelist and the
namcouple, the launch command (with its OASIS time axis) starts the gyre and a Fortran stand-in worker.

pyoasis 5 is not available here, so tests/oasis/sink_worker.F90 plays a train-only worker (it only
receives); the worker receives every state at the namcouple's periods, and the last one is bit for
bit the state the gyre writes to its restart file.
"""
from __future__ import annotations

import os
import subprocess

import netCDF4
import numpy as np
import pytest
from oasis_jobs import BUILD, REPO, build_gyre, compile_program, make_bridge

from bridge.config.config import load_config
from deploy.launch import build_command
from deploy.mpmd import job_env
from deploy.oasis_fortran import find_oasis_fortran
from deploy.preprod import preprod

pytestmark = [pytest.mark.oasis, pytest.mark.mpi]
NX, NY, STEPS, DT = 32, 24, 24, 2400
NAMELIST = """\
&namrun
   nn_write = 0
   nn_diag = 0
/
&namdom
   rn_dx = 40.0e3
   rn_dy = 40.0e3
/
&namphys
   rn_tau0 = 0.5
   rn_ahm = 1000.0
/
"""


def test_gyre_sends_its_states_through_oasis(tmp_path):
    try:
        oasis = find_oasis_fortran()
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT not available: {err}")
    make_bridge(BUILD, oasis)
    gyre = build_gyre(oasis, BUILD)
    sink = compile_program("sink_worker", oasis, BUILD, tmp_path / "prog")
    worker = tmp_path / "worker.sh"  # stands in for 'python -m deploy.cli worker' (needs pyoasis)
    worker.write_text(f"#!/bin/sh\nexec {sink} {NX} {NY} {STEPS} {DT} WORKER_GYRE_SSH WORKER_GYRE_U\n")
    worker.chmod(0o755)
    (tmp_path / "namelist_cfg").write_text(NAMELIST)
    (tmp_path / "cfg.toml").write_text(f"""\
[run]
backend = "oasis"
run_dir = "run"
dt = {DT}
steps = {STEPS}
[ocean]
model = "gyre"
executable = "{gyre}"
ranks = 2
nx = {NX}
ny = {NY}
namelist = "namelist_cfg"
namelist_ref = "{REPO / 'gyre' / 'cfg' / 'namelist_ref'}"
[worker]
python = "{worker}"
[[fields]]
name = "ssh"
direction = "ocean_to_worker"
freq = 12
[[fields]]
name = "u"
direction = "ocean_to_worker"
freq = 12
""")
    cfg = load_config(tmp_path / "cfg.toml")
    preprod(cfg)
    cmd = build_command(cfg, "mpirun")  # what 'oceanbridge launch' runs (its pyoasis check would fail here)
    assert "OBRIDGE_DT=2400" in cmd and "OBRIDGE_NIT000=1" in cmd
    run = subprocess.run(cmd, cwd=cfg.run.run_dir, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **job_env(cfg)})
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "gyre: normal end" in out, out
    for fld in cfg.fields:  # states after steps 0 (initial), 12 and 24: t = 0, 28800, 57600 s
        name, wire = fld.name, cfg.endpoints("gyre", fld)[1]
        assert f"sink worker: {wire} receptions 3 " in out, out
        sent = np.fromfile(cfg.run.run_dir / f"sink_{wire}.bin").reshape(NY, NX)
        with netCDF4.Dataset(cfg.run.run_dir / f"gyre_{STEPS:08d}_restart.nc") as rst:
            assert np.array_equal(sent, rst[name][:].data), name
        assert np.ptp(sent) > 0
