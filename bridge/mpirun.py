"""The ``mpirun`` prefix every oceanbridge launch uses (tests, benchmarks, demo, deploy).

``orte_abort_on_non_zero_status 0`` keeps Open MPI from killing the whole job
the moment one side dies, so the survivor reaches its timeout and says what
happened instead of vanishing with a bare 'exited on signal 9'.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def mpirun_prefix(nprocs: int, *, cores: int | None = None, keep_going_on_failure: bool = False) -> list[str]:
    """``mpirun`` with the options this machine needs for ``nprocs`` processes.

    ``keep_going_on_failure`` suits an ocean that must outlive its worker
    (``ln_obr_required = .false.``); by default a death stops the whole job, so
    collectives of the host model can never wait on a dead rank."""
    exe = shutil.which("mpirun") or "mpirun"
    cmd = [exe, "--bind-to", "none"]
    if nprocs > (cores or os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    if keep_going_on_failure:
        cmd += ["--mca", "orte_abort_on_non_zero_status", "0"]
    return cmd


# --- waiting for mpirun -------------------------------------------------------
# Open MPI 4.1's mpirun can outlive every process it started: after one of them
# was killed by a signal under ``orte_abort_on_non_zero_status 0`` (checked: SIGKILL
# one of two ranks, the other finalizes, mpirun waits forever), or when MPI_Abort
# meets a peer inside MPI_Finalize.  The job is over then; only mpirun hangs.
ORPHAN_GRACE = 10.0  # s that mpirun may outlive all its processes before it is stopped


def wait_mpirun(proc: subprocess.Popen, timeout: float | None = None) -> str:
    """Wait for an mpirun ``proc``; stop it once it has outlived all its processes by ORPHAN_GRACE s.

    Returns '' or a note saying mpirun was stopped (its return code is then non-zero).
    Raises ``subprocess.TimeoutExpired`` when the job itself runs past ``timeout``."""
    t_end = None if timeout is None else time.monotonic() + timeout
    orphan_since = None
    while t_end is None or time.monotonic() < t_end:
        try:
            proc.wait(0.2)
            return ""
        except subprocess.TimeoutExpired:
            pass
        if _children_alive(proc.pid):
            orphan_since = None
        elif orphan_since is None:
            orphan_since = time.monotonic()
        elif time.monotonic() - orphan_since > ORPHAN_GRACE:
            proc.kill()
            proc.wait()
            return (f"oceanbridge: mpirun was still running {ORPHAN_GRACE:g} s after every process of the job had "
                    "ended (an Open MPI 4.1 mpirun hang after a killed or aborted process); stopped it\n")
    _stop(proc)
    raise subprocess.TimeoutExpired(proc.args, timeout)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM first, which mpirun forwards to its processes; SIGKILL if it does not end."""
    proc.terminate()
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_mpirun(cmd: list[str], *, timeout: float | None = None, cwd=None, env=None) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd)`` with stdout+stderr captured as text, waiting with ``wait_mpirun``.

    The output goes through a temporary file, so a chatty job cannot block on a full pipe."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            note = wait_mpirun(proc, timeout)
        except subprocess.TimeoutExpired as exc:
            out.seek(0)
            exc.output = out.read()
            raise
        out.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read() + note)


def _children_alive(pid: int) -> bool:
    """Whether process ``pid`` has a child that is not a zombie (Linux /proc; True when it cannot tell)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return True
    for kid in kids:
        try:
            stat = Path(f"/proc/{kid}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if stat[stat.rindex(")") + 2] != "Z":
            return True
    return False
