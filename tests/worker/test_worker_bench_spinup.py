"""Smoke run of the spin-up study (benchmarks/bench_spinup.py --quick): every phase, every output (about a minute).

It checks the plumbing and the report's shape, never the figures: those are the benchmark's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import netCDF4
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_spinup_study_smoke_run(tmp_path, gyre_exe):
    out = tmp_path / "study"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_spinup.py"), "--quick", "--members", "2",
                          "--train-years", "4", "--restart-years", "3", "--samples", "2", "--test", "1", "--val", "1",
                          "--out", str(out), "--json", str(tmp_path / "s.json")], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "s.json").read_text())
    assert set(report["theta"]) == {"val0", "test0"}
    scores = report["theta"]["test0"]["scores"]
    assert set(scores) == {"rest", "nearest", "mse", "diffusion0", "diffusion1"}
    assert set(scores["mse"]) == {"ke", "heat", "mean_temp", "thickness_var", "psi_max", "psi_min", "wbc_transport"}
    assert {"diffusion_within_2_std", "diffusion_closer_than_nearest_and_mse", "cost_ratio"} == set(report["targets"])
    assert all(t["pass"] in (True, False) for t in report["targets"].values())
    assert "PASS" in run.stdout or "FAIL" in run.stdout
    for png in ("spinup_states.png", "spinup_metrics.png"):
        assert (out / png).stat().st_size > 10_000
    with netCDF4.Dataset(out / "generated.nc") as ds:
        assert ds.Conventions == "CF-1.8" and ds["ssh"].units == "m"
        assert ds["ssh"].shape == (4, 2, 16, 16)  # (val0, test0) x (mse, diffusion) starts, 2 samples, the grid
