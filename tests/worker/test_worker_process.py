"""How a coupled job ends when something goes wrong (issue 15): never a hang, nothing lost.

Each case runs the real MPMD job (gyre members + the Python worker) the way a user or a
scheduler would meet it: a typo that got past the checks, a bad namelist in one member, a
member whose state turns NaN, a killed ocean rank, SIGTERM from the batch system.
"""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from worker_fixtures import REPO, write_config

TIMEOUT = 20.0  # [run] timeout of these jobs: the bound every failure must stay under (plus start-up)


def job(config: Path, *, edit=None):
    """preprod, then the job's mpirun command and environment (as `oceanbridge launch` builds them);
    ``edit(run_dir)`` changes files afterwards, as a user editing by hand past the checks would."""
    from bridge.config.config import load_config
    from deploy.launch import build_command
    from deploy.preprod import preprod
    cfg = load_config(config)
    preprod(cfg)
    if edit is not None:
        edit(cfg.run.run_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMPI_MCA_mpi_yield_when_idle": "1", "OMP_NUM_THREADS": "1"}
    return build_command(cfg, "mpirun"), cfg.run.run_dir, env


def run_job(config: Path, *, edit=None, limit: float = 150.0):
    """The job run to its end; returns (CompletedProcess, seconds)."""
    from bridge.mpirun import run_mpirun
    cmd, run_dir, env = job(config, edit=edit)
    t0 = time.monotonic()
    res = run_mpirun(cmd, timeout=limit, cwd=run_dir, env=env)
    return res, time.monotonic() - t0


def follow(proc, until, deadline_s: float = 150.0) -> str:
    """The job's output up to the first match of regex ``until`` (the job keeps running)."""
    os.set_blocking(proc.stdout.fileno(), False)
    out, t0 = "", time.monotonic()
    while not re.search(until, out):
        if proc.poll() is not None or time.monotonic() - t0 > deadline_s:
            proc.kill()
            raise AssertionError(f"{until!r} never came:\n{out}{proc.stdout.read() or ''}")
        if select.select([proc.stdout], [], [], 0.5)[0]:
            out += proc.stdout.read() or ""
    return out


def finish(proc, out: str, limit: float = 120.0) -> str:
    from bridge.mpirun import wait_mpirun
    note = wait_mpirun(proc, limit)
    os.set_blocking(proc.stdout.fileno(), True)
    return out + (proc.stdout.read() or "") + note


def set_key(path: Path, pattern: str, text: str) -> None:
    path.write_text(re.sub(pattern, text, path.read_text(), count=1))


# ----------------------------------------------------------------------------- before the start
def test_worker_config_typo_past_the_checks_stops_the_job_at_once(tmp_path, gyre_exe):
    """Item 1: a typo in [worker.train] on a hand-written launch, under required = false: the worker joins MPI
    first, so it can stop the whole job (before, gyre waited in MPI_Init for ever)."""
    config = write_config(tmp_path, steps=240, members=2, required=False, timeout=TIMEOUT)
    res, took = run_job(config, edit=lambda d: set_key(d / "deploy.toml", r"batch_size = 4", "bach_size = 4"),
                        limit=TIMEOUT + 60)
    assert res.returncode != 0
    assert "[worker.train] unknown key 'bach_size'" in res.stdout, res.stdout
    assert "stopping the job before its start" in res.stdout
    assert took < TIMEOUT, took


def test_namelist_error_in_the_second_member_stops_the_job_naming_it(tmp_path, gyre_exe):
    """Item 11: a bad &namrun in member 2 (read before &namobridge): every rank of that member says what and
    where, and the job stops at once (before, only world rank 0 spoke, of process start-up, after the timeout)."""
    config = write_config(tmp_path, steps=240, members=2, required=False, timeout=TIMEOUT)

    def bad_namrun(run_dir):
        set_key(run_dir / "member_2" / "namelist_cfg", r"&namrun", "&namrun\n   nn_bogus = 3")
    res, took = run_job(config, edit=bad_namrun, limit=TIMEOUT + 60)
    assert res.returncode != 0
    assert re.search(r"gyre: ERROR \(world rank 1, in \S+/member_2\): namelist_cfg: block &namrun: unknown variable "
                     r"'nn_bogus'", res.stdout), res.stdout
    assert took < TIMEOUT, took


# ----------------------------------------------------------------------------- while coupled
def blow_up_member_2(run_dir: Path) -> None:
    """Member 2's wind 300 times too strong and its own checks off: its state turns NaN near step 130, and the
    bridge refuses to send it."""
    nl = run_dir / "member_2" / "namelist_cfg"
    set_key(nl, r"rn_tau0\s*=\s*[0-9.eE+-]+", "rn_tau0 = 40.0")
    nl.write_text(nl.read_text() + "&namctl\n   nn_ctl = 100000\n   rn_umax = 1e300\n   rn_hmin = -1e300\n"
                  "   rn_tmax = 1e300\n   rn_cflmax = 1e300\n/\n")


def test_nan_member_is_dropped_and_the_healthy_one_finishes(tmp_path, gyre_exe):
    """Item 6, required = false: member 2 stops on its NaN state naming it; the worker drops it and goes on
    with member 1, which runs to its end; the ensemble statistics are over the members still there."""
    config = write_config(tmp_path, steps=800, members=2, required=False, timeout=TIMEOUT,
                          modes=("train", "ensemble"))
    res, took = run_job(config, edit=blow_up_member_2)
    out = res.stdout
    assert re.search(r"put failed at step (\d+) .*this member's state holds NaN/Inf, which the bridge refuses to "
                     r"send; stopping this member \(gyre_2\)", out), out
    assert "member 'gyre_2' lost at step" in out and "goes on with 1 member(s) ['gyre_1']" in out
    assert "worker is absent, dead or slower" not in out  # item 12: the cause is the state, not the worker
    assert (tmp_path / "member_1" / "gyre_00000800_restart.nc").is_file(), out
    lost = json.loads((tmp_path / "worker_summary.json").read_text())["members_lost"]
    step = int(re.search(r"member 'gyre_2' lost at step (\d+)", out).group(1))
    assert list(lost) == ["gyre_2"] and lost["gyre_2"]["step"] == step
    with netCDF4.Dataset(tmp_path / "ensemble.nc") as ds:
        steps = ds["time"][:] / 1200.0
        members = ds["members"][:]
        assert ds["time"].size == 801 // 4 + 1  # every state step, to the end
        np.testing.assert_array_equal(members, np.where(steps < step, 2, 1))
        assert np.isfinite(ds["ssh_mean"][:]).all()
        assert (ds["ssh_std"][:][steps >= step] == 0).all()  # one member left: no spread
    assert took < 120


def test_sigterm_writes_the_checkpoint_and_the_relaunch_resumes(tmp_path, gyre_exe):
    """Item 4: SIGTERM to mpirun (a scheduler's time limit): the worker writes its final checkpoint at the step
    it had reached, the job stops; the relaunch resumes from it."""
    import torch
    config = write_config(tmp_path, steps=200000, timeout=TIMEOUT)
    cmd, run_dir, env = job(config)
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = follow(proc, r"train step 20: loss")
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    out = finish(proc, out)
    assert time.monotonic() - t0 < 40
    assert proc.returncode != 0
    m = re.search(r"SIGTERM received at ocean step (\d+); writing the final checkpoint", out)
    assert m, out
    assert "Traceback" not in out
    state = torch.load(tmp_path / "worker_ckpt.pt", weights_only=True)
    assert state["counters"]["last_step"] == int(m.group(1)) > 0
    assert state["trainer"]["step"] >= 20

    set_key(config, r"steps = 200000", "steps = 40")
    from bridge.mpirun import run_mpirun
    res = run_mpirun(*job(config)[:1], timeout=150, cwd=run_dir, env=env)
    assert res.returncode == 0, res.stdout
    assert re.search(rf"resumed from .*worker_ckpt.pt: train step {state['trainer']['step']}\b", res.stdout), res.stdout
    assert torch.load(tmp_path / "worker_ckpt.pt", weights_only=True)["counters"]["launches"] == 2


def test_killed_ocean_rank_under_required_gives_a_final_worker_checkpoint(tmp_path, gyre_exe):
    """Item 5: an ocean rank killed under required = true ends the job (mpirun stops every rank): the worker,
    told to stop, writes its final checkpoint first."""
    import torch
    config = write_config(tmp_path, steps=200000, members=2, timeout=TIMEOUT)
    cmd, run_dir, env = job(config)
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = follow(proc, r"train step 20: loss")
    gyre_2 = [p for p in Path("/proc").glob("[0-9]*") if _cwd(p) == str(run_dir / "member_2")]
    assert gyre_2, "member 2's gyre not found"
    os.kill(int(gyre_2[0].name), signal.SIGKILL)
    out = finish(proc, out)
    assert proc.returncode != 0
    assert re.search(r"SIG(TERM|INT|HUP) received at ocean step \d+; writing the final checkpoint", out), out
    state = torch.load(tmp_path / "worker_ckpt.pt", weights_only=True)
    assert state["trainer"]["step"] >= 20 and state["counters"]["last_step"] > 0


def test_killed_ocean_rank_without_required_is_named_and_the_others_finish_coupled(tmp_path, gyre_exe):
    """Items 6 and 12, required = false: member 2's gyre is SIGKILLed; the worker names it (world rank and
    component), drops it after half the timeout, and member 1, which waited on the worker meanwhile, runs to
    its end still coupled (it would have left uncoupled had the worker waited the full timeout)."""
    config = write_config(tmp_path, steps=20000, members=2, required=False, timeout=10.0)
    cmd, run_dir, env = job(config)
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = follow(proc, r"time loop from step 1 to 20000(.|\n)*time loop from step 1 to 20000")  # both coupled
    gyre_2 = [p for p in Path("/proc").glob("[0-9]*") if _cwd(p) == str(run_dir / "member_2")]
    assert gyre_2, "member 2's gyre not found"
    os.kill(int(gyre_2[0].name), signal.SIGKILL)
    out = finish(proc, out)
    assert re.search(r"member 'gyre_2' lost at step \d+ \(.*received nothing from world rank\(s\) \[1\] of "
                     r"component 'gyre_2'", out), out
    assert "continuing UNCOUPLED" not in out, out
    assert (tmp_path / "member_1" / "gyre_00020000_restart.nc").is_file(), out
    summary = json.loads((tmp_path / "worker_summary.json").read_text())
    assert list(summary["members_lost"]) == ["gyre_2"] and summary["counters"]["last_step"] == 20000


def _cwd(proc_dir: Path) -> str:
    try:
        return os.readlink(proc_dir / "cwd")
    except OSError:
        return ""


@pytest.mark.parametrize("stop_at", ["stream", "drain"])
def test_stop_signal_in_process_writes_checkpoint(tmp_path, stop_at):
    """The runtime's stop path without MPI: a Stopped raised in the stream or while draining to min_steps
    still ends with the final checkpoint and outputs, then propagates."""
    from bridge.worker.process import Stopped
    calls = []

    class FakeRuntime:
        from bridge.worker.runtime import Runtime
        run = Runtime.run
        _stop = Runtime._stop

        def __init__(self):
            self.counters = type("C", (), {"launches": 0, "last_step": 7})()
            self.learner = type("L", (), {"start": lambda s: None})()
            self.schedule = type("S", (), {"steps": range(3)})()
            self.lost = {}
            self.members = ["gyre"]

        live_members = Runtime.live_members

        def _step(self, kt):
            if stop_at == "stream" and kt == 1:
                raise Stopped(signal.SIGTERM)

        def _finish(self, wall, stream_ended=True, join_timeout=None):
            calls.append((stream_ended, join_timeout))
            if stop_at == "drain" and len(calls) == 1:
                raise Stopped(signal.SIGTERM)
            return {}

    with pytest.raises(Stopped):
        FakeRuntime().run()
    expected = [(False, 5.0)] if stop_at == "stream" else [(True, None), (False, 5.0)]
    assert calls == expected
