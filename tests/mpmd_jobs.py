"""Running real MPMD jobs from tests: paths and ``run_mpmd``.

A module of its own (not conftest.py) so that test files in any folder can
import it by a name no other folder's conftest.py shadows."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BUILD", REPO / "build"))
PYTHON = sys.executable


def run_mpmd(apps: list[tuple[int, list[str]]], *, timeout: float = 120, env: dict | None = None,
             cwd: Path | None = None, keep_going: bool = False) -> subprocess.CompletedProcess:
    """Run ``mpirun -np n1 app1 : -np n2 app2 ...``; the output is stdout+stderr.

    ``keep_going``: a process that dies does not take the job down, so the
    survivors' own timeouts are what is tested. A job that outlives
    ``timeout`` is a hang: the test fails and says so."""
    from bridge.mpirun import mpirun_prefix, run_mpirun

    cmd = mpirun_prefix(sum(n for n, _ in apps), keep_going_on_failure=keep_going)
    for k, (n, argv) in enumerate(apps):
        cmd += ([":"] if k else []) + ["-np", str(n)] + argv
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    try:
        return run_mpirun(cmd, cwd=cwd or REPO, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"MPMD job hung for more than {timeout} s: {' '.join(cmd)}\n{exc.output}")
