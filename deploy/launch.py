"""``oceanbridge launch``: check the run folders against the config, then start the MPMD job.

Every check runs before any rank starts, because a stale namcouple or a
forgotten switch otherwise shows up as a hang or an OASIS abort minutes later
on a batch node.  Problems are collected and reported together.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.config.config import TO_WORKER
from bridge.mpirun import stop_signals, watch_mpirun
from bridge.transport.oasis_env import HOW_TO, oasis_problems
from deploy.croco_param import croco_rank_problems
from deploy.mpmd import (
    job_env,
    job_settings,
    mpirun_command,
    srun_hetjob_command,
    srun_multiprog_command,
    worker_argv,
    write_multiprog,
)
from deploy.namcouple import check_namcouple, restart_name
from deploy.preprod import check_members

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig

log = logging.getLogger(__name__)
LAUNCHERS = ("mpirun", "srun")
LAUNCH_RECORD = "oceanbridge.launches.jsonl"  # in run_dir: one JSON line per launch, appended


class PreflightError(RuntimeError):
    """The run folders do not match the config; the message lists every problem."""


def preflight(cfg: "DeployConfig", launcher: str = "mpirun") -> list[str]:
    """Every problem that would stop or corrupt the run, as one line each."""
    problems = _check_program(cfg.ocean.executable, "[ocean] executable")
    problems += shell_env_problems(cfg, os.environ)
    problems += _check_worker_python(cfg)
    problems += check_members(cfg)
    problems += croco_rank_problems(cfg)
    if cfg.run.backend == "oasis":
        problems += _check_oasis_files(cfg)
        problems += [f"backend 'oasis': {p}" for p in oasis_problems()]
    tool = cfg.run.mpirun if launcher == "mpirun" else "srun"
    if shutil.which(tool) is None:
        problems.append(f"launcher '{tool}' not found on PATH")
    return problems


def shell_env_problems(cfg: "DeployConfig", environ) -> list[str]:
    """A variable the launcher sets from the config (``mpmd.job_env``) that ``environ`` (the launching shell)
    holds with another value: the job would get the config's value, not the one the user exported, so the
    launch stops and names both instead of choosing silently.  The same value (``" Direct"`` for ``direct``,
    ``300`` for ``300.0``) is no problem."""
    problems = []
    for var, key, ours in job_settings(cfg):
        theirs = environ.get(var)
        if theirs is not None and not _same_setting(theirs, ours):
            problems.append(f"${var}={theirs!r} is set in this environment but the config gives [run] {key} = "
                            f"{getattr(cfg.run, key)!r}, which the launcher writes into the job as {var}={ours}: "
                            f"unset {var} (the config is the way to set it), or set [run] {key} in {cfg.source}")
    return problems


def _same_setting(theirs: str, ours: str) -> bool:
    try:
        return float(theirs) == float(ours)
    except ValueError:
        return theirs.strip().lower() == ours.strip().lower()


def launch_record(cfg: "DeployConfig", launcher: str, cmd: list[str], command: str) -> dict:
    """What ``record_launch`` writes: who launched what, and every setting the job runs with: the coupling
    and timeout keys of ``[run]`` (the two worker waits resolved) and the environment the job gets."""
    run = cfg.run
    settings = {key: getattr(run, key) for key in ("backend", "dt", "nit000", "steps", "timeout")}
    settings.update(result_timeout=run.result_timeout_s, ranks_timeout=run.ranks_timeout_s,
                    stop_grace=run.stop_grace, put_mode=run.put_mode, put_ring=run.put_ring,
                    wait_mode=run.wait_mode, nan_policy=run.nan_policy)
    return {"started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "host": socket.gethostname(), "pid": os.getpid(),
            "config": str(cfg.source), "command": command, "launcher": launcher, "job_command": cmd,
            "run": settings, "environment": job_env(cfg)}


def record_launch(cfg: "DeployConfig", launcher: str, cmd: list[str], command: str) -> Path:
    """Append this launch's record (``launch_record``) as one JSON line to ``<run_dir>/oceanbridge.launches.jsonl``;
    a relaunch (resume) adds a line, so the file keeps the settings of every launch of the run folder."""
    path = cfg.run.run_dir / LAUNCH_RECORD
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(launch_record(cfg, launcher, cmd, command)) + "\n")
    return path


def _check_program(path: Path, key: str) -> list[str]:
    if path.is_file() and os.access(path, os.X_OK):
        return []
    hint = " (an environment variable in the path is not set)" if "$" in str(path) else ""
    state = "is not executable" if path.is_file() else "not found"
    return [f"{key} {path} {state}{hint}"]


def _check_worker_python(cfg: "DeployConfig") -> list[str]:
    """The worker's interpreter imports the worker and mpi4py.  A worker that dies before it joins MPI leaves the
    ocean ranks in MPI_Init, which no timeout of ours bounds (the worker joins first thing: process.py)."""
    python = worker_argv(cfg)[0]
    try:
        run = subprocess.run([python, "-c", "import mpi4py, bridge.worker.process"], capture_output=True, text=True,
                             timeout=120, cwd=cfg.run.run_dir if cfg.run.run_dir.is_dir() else None,
                             env={**os.environ, **job_env(cfg)})
    except (OSError, subprocess.TimeoutExpired) as err:
        return [f"[worker] python {python} cannot be run ({err})"]
    if run.returncode == 0:
        return []
    last = (run.stderr.strip().splitlines() or ["no message"])[-1]
    return [f"[worker] python {python} cannot import the worker ({last}); install oceanbridge and mpi4py into "
            f"that environment, or set [worker] python"]


def _check_oasis_files(cfg: "DeployConfig") -> list[str]:
    """The namcouple is current, every member sees it, and lagged fields have their restart file."""
    problems = check_namcouple(cfg)
    for k in range(1, cfg.ocean.members + 1):
        if not (cfg.member_dir(k) / "namcouple").exists():
            problems.append(f"{cfg.member_dir(k) / 'namcouple'}: missing (OASIS reads it from each "
                            f"program's folder); run 'oceanbridge preprod {cfg.source}'")
    for k, comp in enumerate(cfg.components, start=1):
        for fld in (f for f in cfg.fields if f.lag > 0):
            source, _ = cfg.endpoints(comp, fld)
            # the sending program reads the restart file from its own folder
            folder = cfg.member_dir(k) if fld.direction == TO_WORKER else cfg.run.run_dir
            restart = folder / restart_name(source)
            if not restart.is_file():
                problems.append(f"field '{fld.name}' ({source}) has lag = {fld.lag} steps but its OASIS "
                                f"restart file {restart} is missing (copy it from the previous run)")
    return problems


def default_launcher() -> str:
    """srun inside a SLURM allocation, mpirun elsewhere."""
    return "srun" if os.environ.get("SLURM_JOB_ID") and shutil.which("srun") else "mpirun"


def is_openmpi(mpirun: str) -> bool:
    """Whether ``mpirun`` is Open MPI's (the only one that knows --oversubscribe/--allow-run-as-root)."""
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in out.stdout + out.stderr or "OpenRTE" in out.stdout + out.stderr


def build_command(cfg: "DeployConfig", launcher: str) -> list[str]:
    """The launch command; for srun --multi-prog it also writes the program file into run_dir."""
    if launcher == "mpirun":
        return mpirun_command(cfg, cores=len(os.sched_getaffinity(0)), openmpi=is_openmpi(cfg.run.mpirun))
    if launcher != "srun":
        raise ValueError(f"unknown launcher {launcher!r} (one of {', '.join(LAUNCHERS)})")
    if cfg.slurm.layout == "hetjob":
        return srun_hetjob_command(cfg)
    return srun_multiprog_command(cfg, write_multiprog(cfg))


def require_ready(cfg: "DeployConfig", launcher: str) -> None:
    """Raise PreflightError listing every problem, with the OASIS how-to when relevant."""
    problems = preflight(cfg, launcher)
    if problems:
        text = "\n".join(f"  - {p}" for p in problems)
        how = f"\n{HOW_TO}" if any("backend 'oasis'" in p for p in problems) else ""
        raise PreflightError(f"{cfg.source}: not ready to launch:\n{text}{how}")


def run_job(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> int:
    """Run the MPMD job in the foreground, with ``env`` added to this environment; return its exit status.

    It returns only once the launcher (mpirun or srun) has ended, so the run-folder lock of the caller covers the
    whole job.  SIGTERM, SIGINT or SIGHUP to this process stop the job through its launcher (the worker writes its
    checkpoint) and give 128+signal; a second one kills it at once."""
    log.info("launching in %s: %s", cwd, " ".join(cmd))
    with stop_signals() as stop:
        # a session of its own: a Ctrl-C at the terminal reaches this process only, which stops the job once;
        # mpirun hit too would take the second signal as 'leave the processes running'
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=True)
        status, note = watch_mpirun(proc, stop=stop)  # also stops an mpirun that outlives its job (Open MPI 4.1)
    if note:
        log.warning(note.strip())
    return status
