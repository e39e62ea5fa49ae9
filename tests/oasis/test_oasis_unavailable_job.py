"""A Python component on the OASIS backend that cannot start ends the whole MPMD job, it does not hang.

Issue 15 item 2: on a hand-written ``mpirun`` line with ``OASIS_DIR`` unset, the
Python rank raised ``OasisUnavailable`` after MPI had started (OASIS3-MCT 5's
pyoasis imports mpi4py, which calls MPI_Init) but before the hook that aborts
the job on an uncaught error was installed.  It then sat in MPI_Finalize while
the Fortran ranks waited in ``oasis_init_comp`` (a collective on
MPI_COMM_WORLD), for ever.

Here the Fortran side is a plain MPI program waiting in a collective on
MPI_COMM_WORLD (mpi4py's Barrier, as oasis_init_comp waits), and the Python
side is ``Component(backend="oasis")``.  No OASIS is needed: the pyoasis on the
path is a stand-in whose import starts MPI, as the real one does.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from mpmd_jobs import REPO

from bridge.mpirun import mpirun_prefix, run_mpirun

LIMIT = 60  # s: the job must end well within this

# the other side: a plain MPI program waiting in a collective on MPI_COMM_WORLD, as oasis_init_comp does
FORTRAN_SIDE = """
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()
print("peer passed the barrier", flush=True)
"""

WORKER = """
import sys
{first}
from bridge import Component
Component("pyworker", backend="oasis", dt=3600)
print("worker made its component", flush=True)
"""

# pyoasis of OASIS3-MCT 5 imports mpi4py (MPI_Init) when imported
PYOASIS_STARTS_MPI = """from mpi4py import MPI
class Component:
    def __init__(self, name, coupled=True, communicator=None):
        MPI.COMM_WORLD.Barrier()  # oasis_init_comp: a collective on MPI_COMM_WORLD
"""
PYOASIS_FAILS_IN_INIT_COMP = """from mpi4py import MPI
class Component:
    def __init__(self, name, coupled=True, communicator=None):
        raise RuntimeError("oasis_init_comp returned error -1 (stand-in)")
"""

CASES = {
    # the case: pyoasis found (PYTHONPATH from OASIS's init.sh) but OASIS_DIR unset
    "oasis_dir_unset": dict(first="", pyoasis=PYOASIS_STARTS_MPI, oasis_dir=False,
                            expect=["of component 'pyworker' needs OASIS3-MCT 5 and its pyoasis: OASIS_DIR is not set\n",
                                    "export OASIS_DIR="]),
    # the script (or the worker CLI) joined MPI first; no pyoasis anywhere
    "pyoasis_missing": dict(first="from mpi4py import MPI", pyoasis=None, oasis_dir=False,
                            expect=["OASIS_DIR is not set", "cannot import pyoasis", "PYTHONPATH"]),
    # everything found, but pyoasis.Component fails: the hook must be in place before it is made
    "component_fails": dict(first="", pyoasis=PYOASIS_FAILS_IN_INIT_COMP, oasis_dir=True,
                            expect=["component 'pyworker': joining OASIS failed in pyoasis.Component",
                                    "oasis_init_comp returned error -1 (stand-in)"]),
}


@pytest.mark.mpi
@pytest.mark.parametrize("keep_going", [False, True], ids=["plain_mpirun", "keep_going"])
@pytest.mark.parametrize("case", list(CASES))
def test_oasis_component_that_cannot_start_aborts_the_job(tmp_path, case, keep_going):
    spec = CASES[case]
    (tmp_path / "fortran_side.py").write_text(FORTRAN_SIDE)
    (tmp_path / "worker.py").write_text(WORKER.format(first=spec["first"]))
    path = [str(REPO)]
    if spec["pyoasis"] is not None:
        (tmp_path / "pyoasis").mkdir()
        (tmp_path / "pyoasis" / "__init__.py").write_text(spec["pyoasis"])
        path.insert(0, str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k not in ("OASIS_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join(path)
    if spec["oasis_dir"]:
        env["OASIS_DIR"] = str(tmp_path)
    cmd = (mpirun_prefix(2, keep_going_on_failure=keep_going)
           + ["-np", "1", sys.executable, "fortran_side.py", ":", "-np", "1", sys.executable, "worker.py"])
    t0 = time.monotonic()
    try:
        run = run_mpirun(cmd, timeout=LIMIT, cwd=tmp_path, env=env)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the job hung for {LIMIT} s (a rank in MPI_Finalize, the other in a collective):\n{err.output}")
    assert time.monotonic() - t0 < LIMIT
    assert run.returncode != 0, run.stdout
    assert "worker made its component" not in run.stdout and "peer passed the barrier" not in run.stdout
    assert "component 'pyworker'" in run.stdout, run.stdout  # the message names the component ...
    for cause in spec["expect"]:  # ... and the cause, with the fix
        assert cause in run.stdout, run.stdout
