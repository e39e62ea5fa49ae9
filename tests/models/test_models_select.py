"""Sampler selection on a validation set (models/sampler_select.py) and the benchmark's reference match."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from models import metrics as M
from models.sampler_select import CHURN_GRID, ChurnSetting, churn_grid, effective_churn, select
from models.sampling import SamplerConfig

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_surrogate.py"
RANGE = (0.8, 1.25)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_surrogate", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _red(rng, shape, passes=6):
    """Red-spectrum noise: white noise smoothed by repeated 1-2-1 filters, unit variance."""
    x = rng.standard_normal(shape)
    for _ in range(passes):
        for ax in (-1, -2):
            x = 0.25 * np.roll(x, 1, ax) + 0.5 * x + 0.25 * np.roll(x, -1, ax)
    return x / x.std()


def test_select_takes_the_calibrated_in_range_ensemble_of_a_known_case():
    """Truth = m + e (red noise e). "wide_white": right variance but white noise, so spread/skill
    ~ 1 and far too much high-k energy (excluded); "under": 0.93 e per member (spread/skill
    ~ 0.93, spectrum in range); "narrow": 0.6 e (both too low). The rule must take "under"."""
    rng = np.random.default_rng(0)
    t, n, m_members = 6, 32, 8
    m = _red(rng, (t, n, n), passes=20)
    truth = m + _red(rng, (t, n, n))
    ens = {"wide_white": m + rng.standard_normal((m_members, t, n, n)),
           "under": m + 0.93 * _red(rng, (m_members, t, n, n)),
           "narrow": m + 0.6 * _red(rng, (m_members, t, n, n))}
    scores = {k: M.summarize(e, truth) for k, e in ens.items()}
    assert abs(scores["wide_white"]["spread_skill"] - 1) < abs(scores["under"]["spread_skill"] - 1)
    assert scores["wide_white"]["high_k_ratio"] > 2 and RANGE[0] <= scores["under"]["high_k_ratio"] <= RANGE[1]
    choice = select(scores, RANGE, "high_k_ratio")
    assert choice.name == "under" and choice.high_k_in_range
    assert choice.spread_skill == pytest.approx(scores["under"]["spread_skill"])


def test_select_rule_log_distance_fallback_and_bad_scores():
    s = {"a": {"spread_skill": 0.8, "hk": 1.0}, "b": {"spread_skill": 1.24, "hk": 1.2}, "c": {"spread_skill": 1.0, "hk": 1.3}}
    assert select(s, RANGE, "hk").name == "b"  # |log 1.24| = 0.215 < |log 0.8| = 0.223; c is out of range
    none_in = {"a": {"spread_skill": 1.0, "hk": 0.5}, "b": {"spread_skill": 0.5, "hk": 1.5}}
    choice = select(none_in, RANGE, "hk")  # log(1.5/1.25) = 0.18 < log(0.8/0.5) = 0.47
    assert choice.name == "b" and not choice.high_k_in_range
    with pytest.raises(ValueError, match="'a' has no positive finite 'spread_skill'"):
        select({"a": {"spread_skill": math.nan, "hk": 1.0}}, RANGE, "hk")
    with pytest.raises(ValueError, match="no scored settings"):
        select({}, RANGE, "hk")


def test_grid_names_and_settings():
    assert churn_grid(["det", "churn5"]) == {"det": CHURN_GRID["det"], "churn5": CHURN_GRID["churn5"]}
    with pytest.raises(ValueError, match=r"unknown churn setting\(s\) \['churn7'\]; known: \['det'"):
        churn_grid(["churn7"])
    with pytest.raises(ValueError, match="S_min <= S_max"):
        ChurnSetting(5.0, 2.0, 1.0)
    cfg = CHURN_GRID["churn5_low"].sampler(18, 0.002)
    assert (cfg.S_churn, cfg.S_min, cfg.S_max, cfg.nfe) == (5.0, 0.0, 1.0, 35)


def test_reference_keeps_the_total_churn_and_window():
    bench = _bench()
    fast = SamplerConfig(num_steps=18, S_churn=5.0, S_min=0.0, S_max=1.0)
    ref = bench.reference_sampler(fast, 256)
    assert (ref.num_steps, ref.S_churn, ref.S_min, ref.S_max, ref.nfe) == (256, 5.0, 0.0, 1.0, 511)
    capped = SamplerConfig(num_steps=18, S_churn=10.0)  # gamma 10/18 is capped at sqrt(2) - 1
    assert effective_churn(capped, 256) == pytest.approx(18 * (math.sqrt(2) - 1))
    assert bench.reference_sampler(SamplerConfig(), 256).S_churn == 0.0
    with pytest.raises(ValueError, match="cannot carry the churn"):
        effective_churn(capped, 4)


def test_reference_match_tolerances():
    bench = _bench()
    fast = {"crps": 0.104, "spread_skill": 0.95, "high_k_ratio_dct": 1.2}
    ref = {"crps": 0.100, "spread_skill": 0.90, "high_k_ratio_dct": 1.0}
    match = bench.reference_match(fast, ref, "high_k_ratio_dct")
    assert match["crps"]["difference"] == pytest.approx(0.04) and match["crps"]["ok"]
    assert match["spread_skill"]["ok"] and not match["high_k"]["ok"]  # 0.2 > 0.15


def test_churn_auto_needs_validation_files(capsys, tmp_path):
    bench = _bench()
    with pytest.raises(SystemExit):
        bench.parse_args(["--synthetic", "--churn", "auto"])
    err = capsys.readouterr().err
    assert "--churn auto" in err and "--val-data" in err
    with pytest.raises(SystemExit):
        bench.parse_args(["--synthetic", "--churn", "-1"])
    assert "--churn must be >= 0" in capsys.readouterr().err
    args = bench.parse_args(["--data", "a.nc", "--test-data", "b.nc", "--val-data", "b.nc", "--churn", "auto"])
    with pytest.raises(SystemExit, match=r"--val-data shares .*b.nc.* with --test-data"):
        bench.check_disjoint(args, ["a.nc"], ["b.nc"])


def test_churn_auto_end_to_end_on_a_tiny_case(tmp_path):
    """Every grid setting is scored on the validation file, one is chosen, the test set is scored with it."""
    import json

    from models.synthetic import write_turbulence

    bench = _bench()
    val = tmp_path / "val.nc"
    write_turbulence(val, n=16, n_records=6, seed=5, steps_per_record=5)
    out = tmp_path / "res.json"
    rc = bench.main(["--synthetic", "--out", str(tmp_path), "--grid", "16", "--records", "12", "--steps", "2",
                     "--channels", "8", "--channel-mult", "1,2", "--batch-size", "2", "--no-progress", "--device", "cpu",
                     "--cases", "4", "--members", "3", "--val-data", str(val), "--val-cases", "2", "--churn", "auto",
                     "--num-steps", "3", "--ref-steps", "6", "--ref-cases", "2", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    sel = res["selection"]
    assert set(sel["scores"]) == set(CHURN_GRID) and sel["choice"]["name"] in CHURN_GRID
    chosen = CHURN_GRID[sel["choice"]["name"]]
    assert (res["sampler"]["S_churn"], res["sampler"]["S_min"]) == (chosen.S_churn, chosen.S_min)
    assert res["nfe"]["cases"] == 2 and set(res["nfe"]["match"]) == {"crps", "spread_skill", "high_k"}
    assert "nfe_matches_reference" in res["verdict"]
    assert "<- chosen" in (tmp_path / "table.txt").read_text()
