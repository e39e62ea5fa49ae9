"""mpirun that outlives its job (Open MPI 4.1) is stopped, not waited on forever."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bridge import mpirun
from bridge.mpirun import mpirun_prefix, run_mpirun

KILL_ONE_RANK = """
import os, signal, time
from mpi4py import MPI
if MPI.COMM_WORLD.Get_rank() == 1:
    os.kill(os.getpid(), signal.SIGKILL)   # a worker killed mid-run
time.sleep(1.0)
print("survivor finalizes", flush=True)
MPI.Finalize()
"""


@pytest.mark.mpi
def test_mpirun_outliving_a_killed_rank_is_stopped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(mpirun, "ORPHAN_GRACE", 2.0)
    script = tmp_path / "kill_one.py"
    script.write_text(KILL_ONE_RANK)
    t0 = time.monotonic()
    run = run_mpirun(mpirun_prefix(2, keep_going_on_failure=True) + ["-np", "2", sys.executable, str(script)],
                     timeout=60)
    assert "survivor finalizes" in run.stdout  # the survivor ran to its end: the job was kept going
    assert "mpirun was still running 2 s after every process of the job had ended" in run.stdout
    assert run.returncode != 0
    assert time.monotonic() - t0 < 30


@pytest.mark.mpi
def test_a_job_that_really_hangs_still_times_out(tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text("import time\nfrom mpi4py import MPI\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired) as err:
        run_mpirun(mpirun_prefix(1) + ["-np", "1", sys.executable, str(script)], timeout=5)
    assert "timed out after 5 seconds" in str(err.value)


# Unit cases of the guard, without MPI: a launcher stands in for mpirun.
# a parent whose only child has ended but is never reaped (a zombie), like Open MPI 4.1's mpirun after the
# MPI_Abort / MPI_Finalize race; it would sleep for a minute
# (the child lives a second, so that the watcher sees it whatever the load: a child reaped before the first look
# is never known, and the watcher cannot tell a finished job from a launcher that starts none, like srun)
ORPHANED = "import subprocess, time; subprocess.Popen(['sleep', '1']); time.sleep(60)"
# a parent whose child is alive: it must not be taken for an orphaned mpirun
BUSY = "import subprocess; subprocess.run(['sleep', '2'])"


def test_orphaned_launcher_is_stopped_and_reported(monkeypatch):
    monkeypatch.setattr(mpirun, "ORPHAN_GRACE", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", ORPHANED])
    t0 = time.monotonic()
    note = mpirun.wait_mpirun(proc, timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == -9 and "still running 0.5 s after every process of the job had ended" in note


def test_launcher_with_a_live_child_is_waited_for(monkeypatch):
    monkeypatch.setattr(mpirun, "ORPHAN_GRACE", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    assert mpirun.wait_mpirun(proc, timeout=30) == ""
    assert proc.returncode == 0
