"""The Python OASIS backend (bridge/transport/oasis.py) against the Fortran one, through real OASIS3-MCT.

pyoasis 5 is not available here: tests/oasis/pyoasis_standin.py stands in for it, calling OASIS3-MCT
4.0's Fortran API through ctypes, and hands OASIS Fortran-ordered bundle-last arrays as pyoasis
does.  The Fortran side is the bridge's exchange example built with the OASIS backend; the Python
side is oasis_py_worker.py on bridge.Component(backend="oasis"), on the stand-in, and on the real
pyoasis where one is installed (OASIS3-MCT 5).  Different decompositions on the two
sides; 2-D and 3-D fields both ways, every value checked on both sides.  Needs an OASIS3-MCT build
compiled with -fPIC under $OASIS_DIR (skipped with the reason otherwise).
"""
from __future__ import annotations

import os
import sys

import pytest
from oasis_jobs import BUILD, HERE, REPO, build_pyoasis_standin, exchange_namcouple, make_bridge, run_mpmd

from bridge.transport.oasis_env import oasis_problems
from deploy.oasis_fortran import find_oasis_fortran

pytestmark = [pytest.mark.oasis, pytest.mark.mpi]
NX, NY, NLEV, NSTEPS = 13, 11, 3, 3


@pytest.fixture(scope="module", params=["standin", "pyoasis"])
def programs(request, tmp_path_factory):
    """The OASIS-built exchange example and the worker's pyoasis: the stand-in, or the real one."""
    try:
        oasis = find_oasis_fortran()
        if request.param == "standin":
            library = str(build_pyoasis_standin(oasis, tmp_path_factory.mktemp("pyoasis_standin")))
        else:
            library = "pyoasis"
            problems = oasis_problems()
            if problems:
                raise ValueError("; ".join(problems))
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT ({request.param}) not usable from Python here: {err}")
    make_bridge(BUILD, oasis)
    return {"ocean": BUILD / "bin" / "oasis" / "obr_exchange_ocean", "library": library}


@pytest.mark.parametrize("n_ocean,n_worker", [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_python_worker_on_oasis_bit_exact(programs, tmp_path, n_ocean, n_worker):
    (tmp_path / "namcouple").write_text(exchange_namcouple(NX, NY, NSTEPS))
    ocean = [str(programs["ocean"]), *map(str, (NX, NY, NLEV, 1, n_ocean, NSTEPS))]
    worker = [sys.executable, str(HERE / "oasis_py_worker.py"), programs["library"],
              *map(str, (NX, NY, NLEV, NSTEPS, n_worker, 1))]
    run = run_mpmd([(n_ocean, ocean), (n_worker, worker)], cwd=tmp_path, timeout=180,
                   env={"OBRIDGE_DT": "1", "OBRIDGE_NIT000": "1",  # keep $OASIS_DIR/python for the real pyoasis
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    assert run.returncode == 0, run.stdout
    for r in range(n_ocean):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout, run.stdout
    for r in range(n_worker):
        assert f"python oasis worker rank {r}: {NSTEPS} steps, wrong values 0" in run.stdout, run.stdout


@pytest.mark.parametrize("n_worker", [1, 2])
def test_python_worker_on_oasis_next_to_removed_land_subdomains(programs, tmp_path, n_worker):
    """The Fortran ocean (2 x 2) removes subdomain 3 and declares the gaps (OASIS gets the global size); the Python
    worker on OASIS receives the analytic values on every point an ocean rank owns and 0 on the removed one."""
    (tmp_path / "namcouple").write_text(exchange_namcouple(NX, NY, NSTEPS))
    ocean = [str(programs["ocean"]), *map(str, (NX, NY, NLEV, 2, 2, NSTEPS)), "drop=3"]
    worker = [sys.executable, str(HERE / "oasis_py_worker.py"), programs["library"],
              *map(str, (NX, NY, NLEV, NSTEPS, n_worker, 1)), "drop=2,2,3"]
    run = run_mpmd([(3, ocean), (n_worker, worker)], cwd=tmp_path, timeout=180,
                   env={"OBRIDGE_DT": "1", "OBRIDGE_NIT000": "1",
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    assert run.returncode == 0, run.stdout
    for r in range(3):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout, run.stdout
    for r in range(n_worker):
        assert f"python oasis worker rank {r}: {NSTEPS} steps, wrong values 0" in run.stdout, run.stdout
