"""The in-situ loop on OASIS3-MCT: the embedded gyre (OASIS backend) and the real ``oceanbridge worker``
in train + emulate mode, deployed by preprod + launch as the MPI-backend case of
tests/worker/test_worker_online.py, whose config and launch helpers it reuses.

OASIS couples every field at every period from t = 0, the ``<name>_emu`` fields included: the worker
puts them at the initial step too and the gyre gets them there and discards them
(obridge.F90, obr_needs_initial_exchange).  pyoasis 5 is not reachable here, so the worker imports
tests/oasis/standin_module/pyoasis.py: the ctypes stand-in over real OASIS3-MCT 4.0 (needs an OASIS
build compiled with -fPIC under $OASIS_DIR; skipped with the reason otherwise).
"""
from __future__ import annotations

import os
import sys

import netCDF4
import numpy as np
import pytest
from oasis_jobs import BUILD, HERE, REPO, build_gyre, build_pyoasis_standin, make_bridge

from deploy.oasis_fortran import find_oasis_fortran

sys.path.append(str(REPO / "tests" / "worker"))  # the MPI-backend case's helpers
import worker_fixtures as fixtures  # noqa: E402
from test_worker_online import WET, summary  # noqa: E402

pytestmark = [pytest.mark.oasis, pytest.mark.mpi]
STEPS, FREQ, N = 40, 4, 32


@pytest.fixture(scope="module")
def oasis_programs(tmp_path_factory) -> dict:
    """gyre.exe on the OASIS backend and the pyoasis stand-in's shared library."""
    try:
        oasis = find_oasis_fortran()
        library = build_pyoasis_standin(oasis, tmp_path_factory.mktemp("pyoasis_standin"))
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT not usable from Python here: {err}")
    make_bridge(BUILD, oasis)
    return {"gyre": build_gyre(oasis, BUILD), "library": library}


def oasis_config(run_dir, gyre, **options):
    """tests/worker's deploy config of a small gyre, on the OASIS backend with the OASIS-built gyre."""
    path = fixtures.write_config(run_dir, **options)
    text = path.read_text().replace("[run]\n", '[run]\nbackend = "oasis"\n', 1)
    path.write_text(text.replace(str(BUILD / "bin" / "gyre.exe"), str(gyre)))
    return path


def launch_on_oasis(config, library):
    """preprod + launch (tests/worker's launcher); the worker imports the stand-in as pyoasis."""
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(HERE / "standin_module")]),
           "OBRIDGE_PYOASIS_STANDIN": str(library)}
    return fixtures.launch(config, env=env)


@pytest.mark.parametrize("ocean_ranks", [1, 2])
def test_emulator_on_oasis_state_becomes_what_the_worker_sent(tmp_path, oasis_programs, ocean_ranks):
    """On every emulator step, the gyre's own output of that step equals, on ocean points and bit for bit,
    the state the worker sent through OASIS (gyre on 1 or 2 ranks, the worker's one rank owns the whole grid)."""
    config = oasis_config(tmp_path, oasis_programs["gyre"], steps=STEPS, freq=FREQ, n=N, ocean_ranks=ocean_ranks,
                          modes=("train", "emulate"), emulate=True)
    res = launch_on_oasis(config, oasis_programs["library"])
    assert res.returncode == 0 and "gyre: normal end" in res.stdout, res.stdout
    with netCDF4.Dataset(tmp_path / "emulated.nc") as emu, netCDF4.Dataset(next(tmp_path.glob("*_fields.nc"))) as oce:
        emu.set_auto_mask(False)
        oce.set_auto_mask(False)
        steps, ocean_steps = list(emu["step"][:]), list(oce["step"][:])
        assert steps == list(range(FREQ, STEPS + 1, FREQ))
        for t, kt in enumerate(steps):
            for name, mask in WET.items():
                sent, got = emu[f"{name}_emulated"][0, t], oce[name][ocean_steps.index(kt)]
                np.testing.assert_array_equal(got[mask], sent[mask], err_msg=f"{name} at step {kt}")
                assert not np.array_equal(sent, emu[f"{name}_ocean"][0, t]), f"{name} at step {kt}: not a sample"
    counters = summary(tmp_path)["counters"]
    assert counters["emulated"] == STEPS // FREQ  # the t = 0 placeholder is not an emulated state
    assert counters["received"] == STEPS // FREQ + 1
