"""The MPMD job of a deploy config, and its rendering for mpirun and srun.

``mpmd_apps`` lists the programs once (K ocean members, then the worker
group); every launcher line is a rendering of that list, so mpirun, srun
--multi-prog and a SLURM heterogeneous job always start the same thing.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.mpirun import mpirun_prefix
from bridge.transport.env import COUPLING

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig


MULTIPROG_FILE = "oceanbridge.multiprog"


@dataclass(frozen=True)
class App:
    """One program of the MPMD job (an app context in mpirun's words)."""
    component: str
    ntasks: int
    wdir: Path
    argv: tuple[str, ...]
    cpus_per_task: int
    gpus_per_task: int


def worker_argv(cfg: "DeployConfig") -> tuple[str, ...]:
    python = cfg.worker.python or sys.executable
    return (python, "-m", "deploy.cli", "worker", "--config", str(cfg.source), *cfg.worker.args)


def worker_gpus(cfg: "DeployConfig") -> int:
    """GPUs per worker rank: none for CPU workers."""
    return 0 if cfg.worker.device == "cpu" else cfg.slurm.gpus_per_worker


def mpmd_apps(cfg: "DeployConfig") -> list[App]:
    """Members 1..K (each in its folder), then the worker group in run_dir."""
    ocean_argv = (str(cfg.ocean.executable), *cfg.ocean.args)
    apps = [App(comp, cfg.ocean.ranks, cfg.member_dir(k), ocean_argv, cfg.slurm.ocean_cpus_per_task, 0)
            for k, comp in enumerate(cfg.components, start=1)]
    apps.append(App(cfg.worker.name, cfg.worker.ranks, cfg.run.run_dir, worker_argv(cfg),
                    cfg.slurm.worker_cpus_per_task, worker_gpus(cfg)))
    return apps


def job_settings(cfg: "DeployConfig") -> list[tuple[str, str, str]]:
    """``(variable, [run] key, value)`` of every variable the job's environment gets from the config."""
    rows = [(s.var, s.key, s.text(getattr(cfg.run, s.key))) for s in COUPLING]
    if cfg.run.backend == "oasis":
        rows += [("OBRIDGE_DT", "dt", f"{cfg.run.dt:g}"), ("OBRIDGE_NIT000", "nit000", str(cfg.run.nit000))]
    return rows


def job_env(cfg: "DeployConfig") -> dict[str, str]:
    """Environment every program of the job gets, from ``[run]``: the coupling settings ($OBRIDGE_TIMEOUT,
    $OBRIDGE_PUT_MODE, $OBRIDGE_RING, $OBRIDGE_WAIT, $OBRIDGE_NAN_POLICY: bridge.transport.env.COUPLING),
    which both sides read before they join, and with OASIS the time axis (``OBRIDGE_DT``,
    ``OBRIDGE_NIT000``), so the Fortran bridge and the pyoasis transport turn steps into OASIS seconds even
    where the host does not call ``obr_def_time`` (a host's own call wins).  The config is the source of
    truth: these replace the launching shell's values, and ``launch`` refuses a shell whose value of one
    differs (``launch.shell_env_problems``)."""
    return {var: value for var, _, value in job_settings(cfg)}


def total_ranks(cfg: "DeployConfig") -> int:
    return sum(app.ntasks for app in mpmd_apps(cfg))


# ---------------------------------------------------------------- mpirun
def mpirun_command(cfg: "DeployConfig", *, cores: int | None = None, openmpi: bool = True) -> list[str]:
    """``mpirun [flags] -np N -wdir member_1 ocean.exe : ... : -np M -wdir run_dir python -m ...``.

    With Open MPI the flags are those of every oceanbridge launch
    (bridge.mpirun: --oversubscribe only with more ranks than ``cores``,
    --allow-run-as-root only as root, ``[run] stop_grace``, and with ``[ocean] required = false``
    the MCA setting that keeps the job alive when a side dies), plus ``-x``
    for ``job_env`` in every app context (remote nodes too); other MPIs get
    no flags of ours and inherit ``job_env`` from the launching process
    (``launch.run_job``).
    """
    cmd = [cfg.run.mpirun]
    if openmpi:  # an ocean that need not stop with its worker must survive the worker's death
        cmd += mpirun_prefix(total_ranks(cfg), cores=cores, keep_going_on_failure=not cfg.ocean.required,
                             stop_grace=cfg.run.stop_grace)[1:]
    cmd += cfg.run.mpirun_args
    # Open MPI applies -x to one app context (before the first one: to the first only), so each gets its own
    env = [arg for key, value in job_env(cfg).items() for arg in ("-x", f"{key}={value}")] if openmpi else []
    for i, app in enumerate(mpmd_apps(cfg)):
        cmd += ([":"] if i else []) + ["-np", str(app.ntasks), *env, "-wdir", str(app.wdir), *app.argv]
    return cmd


# ---------------------------------------------------------------- srun --multi-prog
def multiprog_conf(cfg: "DeployConfig") -> str:
    """The ``--multi-prog`` file: one line per program, ``FIRST-LAST program args``.

    ``srun --multi-prog`` has no per-program working directory, so programs
    that run outside run_dir are started through ``env -C DIR`` (GNU coreutils).
    """
    lines = [f"# written by oceanbridge from {cfg.source}; one line per program: task ranks, command"]
    first = 0
    for app in mpmd_apps(cfg):
        last = first + app.ntasks - 1
        ranks = str(first) if first == last else f"{first}-{last}"
        prefix = [] if app.wdir == cfg.run.run_dir else ["env", "-C", str(app.wdir)]
        lines.append(f"{ranks} {shlex.join([*prefix, *app.argv])}")
        first = last + 1
    return "\n".join(lines) + "\n"


def write_multiprog(cfg: "DeployConfig") -> Path:
    """Write the ``--multi-prog`` file into run_dir and return its path."""
    path = cfg.run.run_dir / MULTIPROG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(multiprog_conf(cfg))
    return path


def multiprog_resources(cfg: "DeployConfig") -> dict[str, int]:
    """One job step gives every task the same resources: the largest CPU need, and the
    workers' GPUs for the whole step (the worker binds rank r to a visible GPU)."""
    apps = mpmd_apps(cfg)
    gpus = sum(app.ntasks * app.gpus_per_task for app in apps)
    return {"ntasks": total_ranks(cfg), "cpus_per_task": max(app.cpus_per_task for app in apps), "gpus": gpus}


def srun_multiprog_command(cfg: "DeployConfig", conf: Path) -> list[str]:
    res = multiprog_resources(cfg)
    cmd = ["srun", f"--ntasks={res['ntasks']}", f"--cpus-per-task={res['cpus_per_task']}"]
    if res["gpus"]:
        cmd.append(f"--gpus={res['gpus']}")
    return cmd + [f"--chdir={cfg.run.run_dir}", "--multi-prog", str(conf)]


# ---------------------------------------------------------------- srun, heterogeneous job
def srun_hetjob_command(cfg: "DeployConfig") -> list[str]:
    """``srun --het-group=0 ... : --het-group=1 ...``: one het component per program."""
    cmd = ["srun"]
    for i, app in enumerate(mpmd_apps(cfg)):
        cmd += ([":"] if i else []) + [f"--het-group={i}", f"--chdir={app.wdir}", *app.argv]
    return cmd
