"""``oceanbridge slurm``: a SLURM batch script for the MPMD job of a deploy config.

Two standard layouts (``[slurm] layout``):

* ``multi-prog`` -- one job step, ``srun --multi-prog FILE``.  Works with any
  MPI that srun can start, but a job step gives every task the same resources:
  each task gets the largest ``cpus_per_task`` and the step holds all worker
  GPUs (the worker binds its rank r to a visible GPU).  Best on one node.
* ``hetjob`` -- a heterogeneous job, one component per member and one for the
  workers, so ocean ranks get CPUs only and worker ranks ``--gpus-per-task``.
  The MPI must support heterogeneous steps (Open MPI/PMIx, Intel MPI).

The script first runs ``oceanbridge launch --check`` so that a stale
namcouple or namelist fails the job in seconds, not after the queue wait.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.mpmd import (
    MULTIPROG_FILE,
    job_env,
    mpmd_apps,
    multiprog_resources,
    srun_hetjob_command,
    srun_multiprog_command,
    worker_argv,
    write_multiprog,
)
from models.settings import ConfigError, control_char

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig

def script_path(cfg: "DeployConfig") -> Path:
    return cfg.slurm.script or cfg.run.run_dir / "oceanbridge.sbatch"


def sbatch_line(opt: str) -> str:
    """One ``#SBATCH`` line.  sbatch splits these lines as a shell would, so a value with a space or a
    quote is quoted (``--output='/runs/my run/x-%j.out'``); ``opt`` is one option, as in an argv."""
    key, eq, value = _one_line(opt).partition("=")
    if opt.startswith("-") and eq:
        return f"#SBATCH {key}={shlex.quote(value)}"
    return f"#SBATCH {shlex.quote(opt)}"


def _one_line(text: str) -> str:
    """``text`` unchanged; a control character in it (a newline would start a new line of the script
    header, e.g. an injected ``#SBATCH --wrap``) is an error.  [slurm] values are checked on loading;
    this also covers paths from other sections (run_dir in --output, the config's own path)."""
    bad = control_char(text)
    if bad:
        raise ConfigError(f"batch script header line {text!r} would contain {bad}; remove it from the "
                          "config (or choose a [run] run_dir and a config path without it)")
    return text


def _job_options(cfg: "DeployConfig") -> list[str]:
    s = cfg.slurm
    opts = [f"--job-name={s.job_name}", f"--time={s.time}",
            f"--output={cfg.run.run_dir / (s.job_name + '-%j.out')}"]
    opts += [f"--{key}={value}" for key, value in (("account", s.account), ("qos", s.qos)) if value]
    return opts + list(s.sbatch_args)


def _placement(cfg: "DeployConfig") -> list[str]:
    s = cfg.slurm
    return [f"--{key}={value}" for key, value in (("partition", s.partition), ("constraint", s.constraint))
            if value]


def _multiprog_header(cfg: "DeployConfig") -> list[str]:
    res = multiprog_resources(cfg)
    opts = _job_options(cfg) + _placement(cfg)
    opts += [f"--ntasks={res['ntasks']}", f"--cpus-per-task={res['cpus_per_task']}"]
    if res["gpus"]:
        opts.append(f"--gpus={res['gpus']}")
    return opts


def _hetjob_header(cfg: "DeployConfig") -> list[str]:
    opts = _job_options(cfg)
    for i, app in enumerate(mpmd_apps(cfg)):
        opts += ["hetjob"] if i else []
        opts += _placement(cfg) + [f"--ntasks={app.ntasks}", f"--cpus-per-task={app.cpus_per_task}"]
        opts += [f"--gpus-per-task={app.gpus_per_task}"] if app.gpus_per_task else []
    return opts


def render_script(cfg: "DeployConfig", multiprog: Path | None = None) -> str:
    """The batch script text; ``multiprog`` is the program file of the multi-prog layout."""
    hetjob = cfg.slurm.layout == "hetjob"
    header = _hetjob_header(cfg) if hetjob else _multiprog_header(cfg)
    srun = srun_hetjob_command(cfg) if hetjob else srun_multiprog_command(
        cfg, multiprog or cfg.run.run_dir / MULTIPROG_FILE)
    python = worker_argv(cfg)[0]
    check = [python, "-m", "deploy.cli", "launch", "--check", "--launcher", "srun", str(cfg.source)]
    lines = ["#!/bin/bash", _one_line(f"# written by 'oceanbridge slurm {cfg.source}' ({cfg.slurm.layout} layout)")]
    lines += [sbatch_line(opt) for opt in header]
    lines += ["", *cfg.slurm.setup, *(f"export {k}={shlex.quote(v)}" for k, v in job_env(cfg).items()),
              "set -euo pipefail", f"cd {shlex.quote(str(cfg.run.run_dir))}", "",
              "# stop now if the namcouple or namelists are stale against the config",
              shlex.join(check), "", shlex.join(srun)]
    return "\n".join(lines) + "\n"


def write_slurm(cfg: "DeployConfig") -> list[Path]:
    """Write the batch script (and the multi-prog file for that layout); return the paths."""
    cfg.run.run_dir.mkdir(parents=True, exist_ok=True)
    multiprog = write_multiprog(cfg) if cfg.slurm.layout == "multi-prog" else None
    written = [multiprog] if multiprog else []
    path = script_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_script(cfg, multiprog))
    path.chmod(0o755)
    return [*written, path]
