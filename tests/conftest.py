"""Shared fixtures: the Fortran build (MPMD runners are in mpmd_jobs.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mpmd_jobs import BUILD, REPO


@pytest.fixture(scope="session")
def fortran_build() -> Path:
    """Build the Fortran library and programs once per session (incremental)."""
    subprocess.run(["make", "-s", "fortran", f"BUILD={BUILD}"], cwd=REPO, check=True)
    return BUILD
