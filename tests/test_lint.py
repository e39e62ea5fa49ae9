"""The worker core and the coupling library pass ruff and pyright with the project's configuration
(pyproject.toml, [tool.ruff] and [tool.pyright]); the other folders are not held to them yet. For each tool a
second test shows the check can fail."""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tomllib
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


# --- pyright ------------------------------------------------------------------
PYRIGHT_ENV = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}  # no look-up of the newest version on PyPI
PYRIGHT_TIMEOUT = 540  # s (a cold run over the checked paths takes ~20 s)


@functools.cache
def _pyright_start() -> tuple[str | None, str]:
    """(the pyright executable, '') when it runs, else (None, why not)."""
    exe = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    if exe is None:
        return None, "pyright is not installed (it comes with the project's 'test' extra: pip install -e '.[test]')"
    try:  # the pip package runs pyright's npm package on node, which it fetches on first use when not bundled
        res = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=300, env=PYRIGHT_ENV)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"pyright cannot start ({type(err).__name__}: {err})"
    if res.returncode != 0 or "pyright" not in res.stdout:
        tail = (res.stdout + res.stderr).strip()[-600:]
        return None, (f"pyright cannot start (exit status {res.returncode}; the pip package fetches node and the "
                      f"pyright npm package on first use: no network and nothing cached?): {tail}")
    return exe, ""


def pyright() -> list[str]:
    exe, why = _pyright_start()
    if exe is None:
        pytest.skip(why)
    return [exe, "--outputjson", "--pythonpath", sys.executable]  # this environment's packages (numpy, torch, ...)


def pyright_report(res: subprocess.CompletedProcess) -> dict:
    """pyright's JSON report; exit status 0 (no error) or 1 (errors), anything else is a failure to check."""
    assert res.returncode in (0, 1), f"pyright failed (exit status {res.returncode}): {res.stdout}{res.stderr}"
    return json.loads(res.stdout)


def errors_of(report: dict) -> list[str]:
    return [f"{d['file']}:{d['range']['start']['line'] + 1}: {d['message']} ({d.get('rule', '-')})"
            for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_pyright_configuration_checks_these_paths_in_standard_mode():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pyright"]
    assert config["include"] == CHECKED
    assert config["typeCheckingMode"] in ("standard", "strict")  # not weakened to 'basic' or 'off'


def test_worker_core_and_coupling_library_pass_pyright():
    res = subprocess.run(pyright() + CHECKED, cwd=REPO, capture_output=True, text=True, timeout=PYRIGHT_TIMEOUT,
                         env=PYRIGHT_ENV)
    report = pyright_report(res)
    py_files = sum(len(list((REPO / p).rglob("*.py"))) if (REPO / p).is_dir() else 1 for p in CHECKED)
    assert report["summary"]["filesAnalyzed"] >= py_files, report["summary"]
    assert report["summary"]["errorCount"] == 0, "\n".join(errors_of(report))


def test_pyright_check_fails_on_type_errors(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def twice(n: int) -> int:\n    return 2 * n\n\n\n"
                   "def first_word(text: str | None) -> str:\n    return text.split()[0]\n\n\n"
                   "twice('3')\ntwice.marker = True\n")
    res = subprocess.run(pyright() + ["--project", str(REPO / "pyproject.toml"), str(bad)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=PYRIGHT_TIMEOUT, env=PYRIGHT_ENV)
    report = pyright_report(res)
    assert res.returncode == 1
    rules = {d.get("rule") for d in report["generalDiagnostics"] if d["severity"] == "error"}
    # a str for an int, an Optional used unchecked, and an attribute set on a function: the last is an error in
    # the 'standard' mode of [tool.pyright] only ('basic' lets it pass), so the project's configuration was used
    assert {"reportArgumentType", "reportOptionalMemberAccess", "reportFunctionMemberAccess"} <= rules, \
        "\n".join(errors_of(report))
