"""Environment settings of the Python transport: a bad value is named before anything starts."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mpmd_jobs import REPO


def import_transport(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "OBRIDGE_RING"}
    return subprocess.run([sys.executable, "-c", "import bridge.transport.mpi as m; print('ring', m.RING)"],
                          capture_output=True, text=True, cwd=REPO, env={**base, **env})


@pytest.mark.parametrize("value", ["0", "four", "-2", "2.5"])
def test_bad_ring_depth_is_named(value):
    run = import_transport(OBRIDGE_RING=value)
    assert run.returncode != 0
    assert f"OBRIDGE_RING={value!r}: the put ring depth must be a whole number >= 1" in run.stderr


def test_ring_depth_default_and_override():
    assert "ring 4" in import_transport().stdout
    assert "ring 7" in import_transport(OBRIDGE_RING="7").stdout
