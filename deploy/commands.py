"""The deploy verbs of the ``oceanbridge`` command: preprod, launch, slurm.

Each returns a process exit status: 0 success, 1 the run is not ready (or
the job failed), 2 the config or a file is invalid; launch gives 128+N when
signal N (SIGTERM, SIGINT, SIGHUP) stopped it (the job is stopped first).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bridge.config.config import DeployConfig, load_config
from bridge.config.namelist import NamelistError
from deploy.launch import (
    LAUNCHERS,
    PreflightError,
    build_command,
    default_launcher,
    preflight,
    record_launch,
    require_ready,
    run_job,
)
from deploy.mpmd import job_env
from deploy.namcouple import NamcoupleError
from deploy.preprod import PreprodError, preprod
from deploy.runlock import RunFolderLocked, lock_holder, run_folder_lock
from deploy.slurm import write_slurm
from models.settings import ConfigError

INVALID = (ConfigError, PreprodError, NamelistError, NamcoupleError, OSError)
NOT_READY = (PreflightError, RunFolderLocked)


def _parser(verb: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"oceanbridge {verb}", description=description)
    parser.add_argument("config", help="deploy config (TOML), e.g. deploy/gyre/mpi.toml")
    return parser


def _fail(verb: str, err: Exception, status: int) -> int:
    print(f"oceanbridge {verb}: error: {err}", file=sys.stderr)
    return status


def load_checked(path: str | Path) -> DeployConfig:
    """The config with every section validated: the deploy layer's own, then the worker's ([worker.*],
    [model]; no torch is imported), so that a typo there stops preprod/launch before any rank starts."""
    from bridge.worker.settings import worker_settings  # (here: importing deployment needs no worker package)
    cfg = load_config(path)
    worker_settings(cfg)
    return cfg


def _command(verb: str, argv: list[str]) -> str:
    return shlex.join(["oceanbridge", verb, *argv])


def preprod_main(argv: list[str]) -> int:
    args = _parser("preprod", "Write the member folders, the &namobridge switches and member parameters "
                   "into the ocean namelists, and (backend oasis) the namcouple.").parse_args(argv)
    try:
        cfg = load_checked(args.config)
        with run_folder_lock(cfg.run.run_dir, _command("preprod", argv)):  # never under a running job
            written = preprod(cfg)
    except RunFolderLocked as err:
        return _fail("preprod", err, 1)
    except INVALID as err:
        return _fail("preprod", err, 2)
    for path in written:
        print(f"wrote {path}")
    print(f"next: oceanbridge launch {cfg.source}")
    return 0


def launch_main(argv: list[str]) -> int:
    parser = _parser("launch", "Check the namcouple and namelists against the config, then start the "
                     "MPMD job (mpirun, or srun inside a SLURM allocation).")
    parser.add_argument("--launcher", choices=("auto", *LAUNCHERS), default="auto",
                        help="auto: srun inside a SLURM allocation, else mpirun")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="run the checks and print the command only")
    mode.add_argument("--check", action="store_true", help="run the checks only")
    args = parser.parse_args(argv)
    launcher = default_launcher() if args.launcher == "auto" else args.launcher
    try:
        cfg = load_checked(args.config)
        if args.check or args.dry_run:
            return _report(cfg, launcher, print_command=args.dry_run)
        return launch_job(cfg, launcher, _command("launch", argv))
    except NOT_READY as err:
        return _fail("launch", err, 1)
    except INVALID as err:
        return _fail("launch", err, 2)
    except KeyboardInterrupt:  # Ctrl-C during the checks; during the job run_job handles it (and returns 130)
        print("oceanbridge launch: SIGINT received before the job started; nothing was launched", file=sys.stderr)
        return 130


def launch_job(cfg: DeployConfig, launcher: str, command: str, *, prepare: bool = False) -> int:
    """Under the run-folder lock, held for the whole job: preprod (with ``prepare``), the checks, the launch record
    (``<run_dir>/oceanbridge.launches.jsonl``), then the MPMD job; its exit status. ``command`` is what the lock file
    names as its holder."""
    with run_folder_lock(cfg.run.run_dir, command):
        if prepare:
            preprod(cfg)
        require_ready(cfg, launcher)
        cmd = build_command(cfg, launcher)
        record_launch(cfg, launcher, cmd, command)
        return run_job(cmd, cfg.run.run_dir, job_env(cfg))


def _report(cfg, launcher: str, *, print_command: bool) -> int:
    problems = preflight(cfg, launcher)
    locked = lock_holder(cfg.run.run_dir)
    problems += [locked] if locked else []
    for problem in problems:
        print(f"oceanbridge launch: not ready: {problem}", file=sys.stderr)
    if print_command:
        print(shlex.join(build_command(cfg, launcher)))
    elif not problems:
        print(f"{cfg.source}: ready to launch")
    return 1 if problems else 0


def slurm_main(argv: list[str]) -> int:
    args = _parser("slurm", "Write a SLURM batch script (ocean ranks on CPUs, worker ranks with GPUs) "
                   "for the config.").parse_args(argv)
    try:
        cfg = load_checked(args.config)
        written = write_slurm(cfg)
    except INVALID as err:
        return _fail("slurm", err, 2)
    for path in written:
        print(f"wrote {path}")
    print(f"submit with: sbatch {written[-1]}")
    return 0
