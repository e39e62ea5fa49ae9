"""The launcher under signals and dead processes (issue 15 items 4 and 12), with real mpirun jobs.

The ranks are small mpi4py scripts: each writes its pid to ``pid.<rank>`` once its SIGTERM handler is in
place, so a test knows when the job runs and can check afterwards that none of its processes is left.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge import mpirun
from bridge.mpirun import mpirun_prefix, stop_grace_of
from deploy.launch import run_job
from deploy.mpmd import mpirun_command

pytestmark = pytest.mark.mpi

# a rank told to stop takes 1.5 s for its "checkpoint": more than Open MPI's default grace (1 s)
TRAPS_SIGTERM = """
import os, signal, sys, time
from mpi4py import MPI
rank = MPI.COMM_WORLD.Get_rank()
def stop(signum, frame):
    t0 = time.time()
    time.sleep(1.5)
    open(f"stopped.{rank}", "w").write(f"{time.time() - t0:.2f}")
    os._exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
open(f"pid.{rank}", "w").write(str(os.getpid()))
time.sleep(120)
"""

# under keep-going, world rank 1 is killed mid-run and rank 0 finishes: Open MPI 4.1's mpirun then never ends
KILLED_RANK = """
import os, signal, time
from mpi4py import MPI
rank = MPI.COMM_WORLD.Get_rank()
open(f"pid.{rank}", "w").write(str(os.getpid()))
time.sleep(1.0)
if rank == 1:
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(2.0)
MPI.Finalize()
"""

# the launcher, as `oceanbridge launch` runs it, with a short stop grace so that the test takes seconds
LAUNCHER = """
import logging, sys
from pathlib import Path
from bridge import mpirun
from deploy.launch import run_job
logging.basicConfig(level=logging.INFO)
sys.exit(run_job(mpirun.mpirun_prefix(2, stop_grace=3) + ["-np", "2", sys.executable, sys.argv[1]], Path(sys.argv[2])))
"""


def _job_pids(folder: Path, ranks: int, timeout: float = 60.0) -> list[int]:
    """The pids the ranks wrote, once all of them have."""
    t_end = time.monotonic() + timeout
    files = [folder / f"pid.{r}" for r in range(ranks)]
    while not all(f.is_file() and f.read_text() for f in files):
        assert time.monotonic() < t_end, "the job did not start"
        time.sleep(0.1)
    return [int(f.read_text()) for f in files]


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_deploy_launch_gives_its_processes_the_stop_grace(make_config):
    """[run] stop_grace reaches mpirun (default 10 s); jobs with no checkpoint to write keep Open MPI's 1 s."""
    assert stop_grace_of(mpirun_command(make_config(), cores=64)) == 10
    cmd = mpirun_command(make_config(run={"stop_grace": 25}), cores=64)
    i = cmd.index("odls_base_sigkill_timeout")
    assert cmd[i - 1:i + 2] == ["--mca", "odls_base_sigkill_timeout", "25"]
    assert "odls_base_sigkill_timeout" not in mpirun_prefix(2) and stop_grace_of(mpirun_prefix(2)) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_the_job_and_waits_for_it(tmp_path, signum):
    script = tmp_path / "rank.py"
    script.write_text(TRAPS_SIGTERM)
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(script), str(tmp_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = _job_pids(tmp_path, 2)
        t_signal = time.monotonic()
        launcher.send_signal(signum)
        _, err = launcher.communicate(timeout=60)
    finally:
        launcher.kill()
    assert launcher.returncode == 128 + signum, err
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert f"{name} received; told the job to stop (the worker writes its checkpoint)" in err
    assert f"the job was stopped on {name}" in err
    assert time.monotonic() - t_signal > 1.5  # it waited for the job
    assert [pid for pid in pids if _running(pid)] == []  # no process of the job outlives the launcher
    for rank in (0, 1):  # each rank had the time it needed after its SIGTERM
        assert float((tmp_path / f"stopped.{rank}").read_text()) >= 1.5


def test_a_killed_rank_under_keep_going_is_named_and_the_status_is_1(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mpirun, "ORPHAN_GRACE", 1.0)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RANK)
    cmd = mpirun_prefix(2, keep_going_on_failure=True) + ["-np", "2", sys.executable, str(script)]
    with caplog.at_level(logging.WARNING):
        status = run_job(cmd, tmp_path)
    assert status == 1  # not -9 (247 from the shell): the job ended, mpirun hung
    note = caplog.text
    assert "mpirun was still running 1 s after every process of the job had ended" in note
    assert f"world rank 1 ({Path(sys.executable).name} {script}, in {tmp_path}) ended at" in note
    assert "s before the last process; the others ended at" in note
    pids = _job_pids(tmp_path, 2, timeout=0)
    assert not any(_running(pid) for pid in pids)
