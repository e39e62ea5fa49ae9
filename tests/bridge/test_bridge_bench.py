"""benchmarks/bench_bridge.py runs end to end in both directions: the Fortran ocean (bandwidth_ocean.F90)
and the Python worker agree on the six phases and their order, every phase moves the field, and the
JSON holds every figure the table prints. Timings are never asserted, only that they exist."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mpmd_jobs import REPO

pytestmark = pytest.mark.mpi


def test_bench_bridge_smoke_run_writes_every_figure(fortran_build, tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_bridge

    out = tmp_path / "bb.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_bridge.py"), "--setups", "1:1:j-split",
                          "--direction", "to-worker,to-ocean", "--launches", "2", "--reps", "1", "--iters", "1",
                          "--build", str(fortran_build),
                          "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "copy/buf" in run.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [(r["direction"], r["case"], r["n_ocean"], r["m_python"]) for r in rows] == \
        [(d, c[0], 1, 1) for d in ("to-worker", "to-ocean") for c in bench_bridge.CASES]
    for row in rows:
        assert len(row["times"]) == 2  # one measured repetition per launch, the warm-up dropped
        assert all(set(t) == set(bench_bridge.PHASES) and min(t.values()) > 0 for t in row["times"])
        assert row["raw_pattern"] in bench_bridge.RAW
        for name in ("copy", "direct", "copy_vs_buffered"):
            assert row[f"ratio_{name}_min"] <= row[f"ratio_{name}"] <= row[f"ratio_{name}_max"]


def test_phase_order_rotates_every_phase_through_every_slot():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_bridge

    orders = [bench_bridge.phase_order(rep) for rep in range(len(bench_bridge.PHASES))]
    assert all(sorted(o) == sorted(bench_bridge.PHASES) for o in orders)
    assert all(sorted(o[k] for o in orders) == sorted(bench_bridge.PHASES) for k in range(len(bench_bridge.PHASES)))


def test_unknown_direction_is_named_before_anything_runs(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_bridge.py"), "--direction", "to-oceans",
                          "--build", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--direction to-oceans: must be to-worker or to-ocean" in run.stderr, run.stderr
