"""The worker core and the coupling library pass ruff with the project's configuration (pyproject.toml,
[tool.ruff]); the other folders are not held to it yet. The second test shows the check can fail."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKED = ["bridge/transport", "bridge/component.py", "bridge/partition.py", "bridge/routing.py",
           "bridge/handshake.py", "bridge/errors.py", "bridge/mpirun.py", "bridge/worker"]


def ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (it comes with the project's 'test' extra: pip install -e '.[test]')")
    return [exe, "check", "--no-cache"]


def test_worker_core_and_coupling_library_pass_ruff():
    res = subprocess.run(ruff() + CHECKED, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_check_fails_on_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom typing import Callable\n\n\ndef f(x: Callable) -> 'int':\n    return undefined\n")
    res = subprocess.run(ruff() + ["--config", str(REPO / "pyproject.toml"), str(bad)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 1
    for code in ("F401", "F821", "UP035"):  # unused import, undefined name, typing.Callable
        assert code in res.stdout, res.stdout
