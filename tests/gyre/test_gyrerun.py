"""gyrerun's launcher guard: an mpirun that outlives every process it started is killed and reported."""
from __future__ import annotations

import subprocess
import sys
import time

from gyre_testlib import gyrerun

# a parent whose only child has ended but is never reaped (a zombie), like Open MPI 4.1's mpirun after the
# MPI_Abort / MPI_Finalize race; it would sleep for a minute
ORPHANED = "import subprocess, time; subprocess.Popen(['true']); time.sleep(60)"
# a parent whose child is alive: it must not be taken for an orphaned mpirun
BUSY = "import subprocess; subprocess.run(['sleep', '2'])"


def test_orphaned_launcher_is_killed_and_reported(monkeypatch):
    monkeypatch.setattr(gyrerun, "ORPHAN_GRACE", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", ORPHANED])
    t0 = time.monotonic()
    note = gyrerun._wait_mpirun(proc, timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == -9 and "still running 0.5 s after all its processes had ended" in note


def test_launcher_with_a_live_child_is_waited_for(monkeypatch):
    monkeypatch.setattr(gyrerun, "ORPHAN_GRACE", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    assert gyrerun._wait_mpirun(proc, timeout=30) == ""
    assert proc.returncode == 0
