"""benchmarks/bench_oasis.py end to end on tiny grids (--quick): both backends run, ratios come out."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from oasis_jobs import REPO


@pytest.mark.oasis
@pytest.mark.mpi
def test_bench_oasis_quick(tmp_path):
    from deploy.oasis_fortran import find_oasis_fortran
    try:
        find_oasis_fortran()
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT not available: {err}")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_oasis.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["results"]
    fortran = [r for r in rows if r["worker"] == "Fortran"]
    assert {(r["N"], r["M"]) for r in fortran} == {(1, 1), (2, 1), (2, 2)} and len(fortran) == 6
    assert len(rows) in (6, 12)  # Python rows where OASIS is built with -fPIC
    assert all(r["oasis_over_mpi"] > 0 and r["mpi_MBps"] > 0 and r["oasis_MBps"] > 0 for r in rows)


def test_bench_oasis_skips_without_oasis(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_oasis.py"), "--json",
                           str(tmp_path / "b.json")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "bench_oasis: skipped: OASIS_DIR is not set" in proc.stdout
    assert "OASIS_DIR" in json.loads((tmp_path / "b.json").read_text())["skipped"]
