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


def _bench():
    spec = importlib.util.spec_from_file_location("bench_surrogate", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_reuse_rescores_the_saved_checkpoint_and_refuses_other_settings(tmp_path):
    """--reuse loads the checkpoint of the same settings instead of training again (rescoring with
    another sampler); a checkpoint of other settings stops the benchmark naming the file."""
    import math

    import torch

    from models.data import PairDataset

    bench = _bench()
    small = ["--synthetic", "--out", str(tmp_path), "--grid", "16", "--records", "12", "--steps", "2",
             "--channels", "8", "--channel-mult", "1,2", "--batch-size", "2", "--no-progress", "--device", "cpu"]
    args = bench.parse_args(small)
    train_files, _ = bench.split_files(args)
    dataset = PairDataset(train_files, args.variables, lag=1)
    first = bench.train("diffusion", dataset, args)
    again = bench.train("diffusion", dataset, bench.parse_args(small + ["--reuse"]))
    assert again.step == 2 and math.isnan(again.throughput)  # nothing trained
    saved = again.ema.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in first.ema.state_dict().items() if isinstance(v, torch.Tensor))
    with pytest.raises(SystemExit, match="diffusion.pt was trained with other settings"):
        bench.train("diffusion", dataset, bench.parse_args(small + ["--reuse", "--whiten", "0.5"]))
