"""Faults: the worker killed mid-run, the ocean gone silent, NaN/bad configs (in-process checkpoint
faults: test_worker_checkpoint.py)."""
from __future__ import annotations

import os
import re
import select
import signal
import time
from pathlib import Path

import pytest
import torch
from worker_fixtures import launch, write_config

STANDIN = str(Path(__file__).with_name("standin_ocean.py"))


def kill_worker_when_coupled(proc, until: str, deadline_s: float = 120) -> str:
    """Follow the job's output; SIGKILL the worker once it reports its pid; return the output
    once ``until`` appears or the job ends (the job is then ended, by its mpirun pid)."""
    os.set_blocking(proc.stdout.fileno(), False)
    out, killed, t0 = "", False, time.monotonic()
    while proc.poll() is None and until not in out:
        if time.monotonic() - t0 > deadline_s:
            proc.kill()
            raise AssertionError("coupled job hung after the worker was killed:\n" + out)
        if select.select([proc.stdout], [], [], 0.5)[0]:
            out += proc.stdout.read() or ""
        m = re.search(r"tunnel: rank 0/1 \(pid (\d+)\)", out)
        if m and not killed:
            os.kill(int(m.group(1)), signal.SIGKILL)
            killed = True
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    out += proc.stdout.read() or ""
    assert killed, "the worker never reported its pid:\n" + out
    return out


@pytest.mark.parametrize("required", [False, True])
def test_worker_killed_mid_run(tmp_path, gyre_exe, required):
    """ln_obr_required = .false.: gyre goes on uncoupled to its last step; .true.: the job stops, never hangs.

    (With .false. the job is ended by the test after gyre's normal end: Open MPI's MPI_Finalize
    then waits for the killed process, outside gyre's and the worker's control.)"""
    # the timeout also bounds the worker's start-up (torch import) before the end of definitions,
    # which takes several seconds on a loaded 2-core machine
    config = write_config(tmp_path, steps=4000, required=required, timeout=15.0)
    out = kill_worker_when_coupled(launch(config, popen=True), until="gyre: normal end")
    if required:
        assert "gyre: normal end" not in out, out
    else:
        assert "continuing UNCOUPLED" in out and "gyre: normal end" in out, out
        assert (tmp_path / "gyre_00004000_restart.nc").is_file()


def test_ocean_gone_worker_stops_after_timeout_with_checkpoint(tmp_path):
    """The ocean stops sending after step 20: the worker waits its timeout, names member, field and step,
    and writes its final checkpoint."""
    config = write_config(tmp_path, steps=80, timeout=10.0, ocean_args=(STANDIN, "silent", "20"))
    t0 = time.monotonic()
    res = launch(config, timeout=120)
    assert res.returncode != 0
    assert re.search(r"field 'ssh' .*get at step 24 .*component 'gyre'", res.stdout), res.stdout
    assert "writing the final checkpoint" in res.stdout
    state = torch.load(tmp_path / "worker_ckpt.pt", weights_only=False)
    assert state["counters"]["last_step"] == 23 and state["counters"]["received"] == 6
    assert time.monotonic() - t0 < 100
