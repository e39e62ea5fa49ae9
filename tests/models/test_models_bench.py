"""The surrogate benchmark end to end at a reduced size (slow: a few CPU minutes)."""
import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_surrogate.py"


@pytest.mark.slow
def test_benchmark_runs_and_diffusion_keeps_small_scales(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_surrogate", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    rc = bench.main(["--synthetic", "--out", str(tmp_path), "--json", str(out), "--records", "120", "--steps", "400",
                     "--cases", "16", "--members", "6", "--ref-steps", "64", "--ref-cases", "2", "--no-progress"])
    assert rc == 0
    res = json.loads(out.read_text())
    d, m = res["diffusion"]["mean"], res["mse"]["mean"]
    assert d["high_k_ratio"] > m["high_k_ratio"] + 0.1  # MSE regresses to the mean at small scales
    assert 0.6 < d["spread_skill"] < 1.5
    assert res["nfe"]["nfe"] == 35
    assert all(Path(p).exists() for p in res["figures"])
