"""Fixtures of the worker tests: the gyre executable."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # worker_fixtures, standin_ocean

from worker_fixtures import BUILD, REPO  # noqa: E402


@pytest.fixture(scope="session")
def gyre_exe() -> Path:
    """build/bin/gyre.exe, built with 'make fortran'; an existing executable is used if the
    (incremental) build of a source being edited fails, and the test is skipped without one."""
    exe = BUILD / "bin" / "gyre.exe"
    run = subprocess.run(["make", "-s", "fortran", f"BUILD={BUILD}"], cwd=REPO, capture_output=True, text=True)
    if run.returncode != 0:
        if not exe.is_file():
            pytest.skip(f"'make fortran' failed and {exe} is missing:\n{run.stderr[-2000:]}")
        warnings.warn(f"'make fortran' failed; using the existing {exe}:\n{run.stderr[-500:]}")
    return exe
