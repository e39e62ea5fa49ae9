"""Fixtures of the gyre tests: build once per session (make -s fortran), run directories, a small config."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "gyre" / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gyrerun  # noqa: E402
from gyre_testlib import small_cfg  # noqa: E402

GYRE_EXE = REPO / "build" / "bin" / "gyre.exe"
OBRIDGE_LIB = REPO / "build" / "lib" / "libobridge.a"


@pytest.fixture(scope="session")
def gyre_exe() -> Path:
    """Build the bridge library and gyre (incremental), return build/bin/gyre.exe."""
    proc = subprocess.run(["make", "-s", "fortran"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0 or not GYRE_EXE.exists():
        pytest.fail(f"make fortran failed:\n{proc.stdout}\n{proc.stderr}")
    return GYRE_EXE


@pytest.fixture(scope="session")
def gyre_coupled_exe(gyre_exe) -> Path:
    """gyre built against the bridge library (skip when the bridge is not there yet)."""
    if not OBRIDGE_LIB.exists():
        pytest.skip("build/lib/libobridge.a is missing: gyre was built without the bridge")
    return gyre_exe


@pytest.fixture
def rundir(tmp_path):
    """Factory: rundir(name, cfg_dict | None, raw_cfg=None) -> Path with namelist_ref and namelist_cfg."""
    def make(name: str = "run", cfg: dict | None = None, raw_cfg: str | None = None) -> Path:
        return gyrerun.make_rundir(tmp_path / name, cfg if cfg is not None else small_cfg(), raw_cfg=raw_cfg)
    return make
