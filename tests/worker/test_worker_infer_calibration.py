"""The infer mode's calibration on held-out observations (``[worker.infer] holdout_members``), without MPI:
the held-out store of bridge/worker/infer.py and the writers of models/posterior_products.py, fed synthetic
posterior samples.

Synthetic task: θ ~ U[0, 1]² and x = θ + N(0, σ²) per component; the exact posterior of each component is
N(x, σ²) truncated to [0, 1] (drawn by scipy).  The calibrated case samples it; the under-dispersed one draws
with σ / 3, the miscalibration the check must catch.
"""
from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest
from scipy.stats import truncnorm
from worker_fixtures import write_config

from bridge.config.config import load_config
from bridge.worker.infer import HeldOutStates
from bridge.worker.samples import BufferedSample
from bridge.worker.settings import worker_settings
from models.posterior_products import calibration_record, calibration_summary, plot_coverage, plot_sbc, write_posterior
from models.sbi import BoxUniform, calibration
from models.settings import ConfigError

B, N, SIGMA = 200, 300, 0.08
PRIOR = BoxUniform([0.0, 0.0], [1.0, 1.0], names=("tau0", "rdrag"), units=("N m-2", "s-1"))
PNG = b"\x89PNG\r\n\x1a\n"


def synthetic(spread: float, seed: int = 0):
    """(θ (B, 2), posterior samples (N, B, 2)) with the samples' width ``spread`` x the true posterior's."""
    rng = np.random.default_rng(seed)
    theta = rng.random((B, 2))
    x = theta + SIGMA * rng.standard_normal((B, 2))
    scale = SIGMA * spread
    a, b = (0 - x) / scale, (1 - x) / scale
    samples = truncnorm.rvs(a, b, loc=x, scale=scale, size=(N, B, 2), random_state=rng)
    return theta, x, samples


def record(spread: float):
    theta, x, samples = synthetic(spread)
    return calibration_record(calibration(theta, x, samples), 0.1, theta, np.arange(B) % 5)


def test_a_calibrated_posterior_passes_and_is_written(tmp_path):
    rec = record(1.0)
    print(f"\ncalibrated: KS p {rec['ks_pvals']}, coverage error {rec['coverage_error']:.3f}, "
          f"TARP ATC {rec['tarp_atc']:.3f}")
    assert rec["calibrated"] and rec["coverage_error"] <= 0.1 and (rec["ks_pvals"] > 0.01).all()
    assert rec["ranks"].shape == (B, 2) and 0 <= rec["ranks"].min() and rec["ranks"].max() <= N
    samples = synthetic(1.0)[2][:, 0]
    path = write_posterior(tmp_path / "posterior.nc", samples, np.zeros(N), PRIOR, (0.5,), {}, {}, rec)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        assert ds.holdout_observations == B and ds.calibrated == 1 and ds.sbc_posterior_samples == N
        assert ds.dimensions["holdout"].size == B
        for name, units in zip(PRIOR.names, PRIOR.units):
            rank = ds[f"{name}_sbc_rank"]
            assert rank.dimensions == ("holdout",) and rank.units == "1" and "SBC rank" in rank.long_name
            assert ds[f"{name}_holdout_true"].units == units
            np.testing.assert_array_equal(rank[:], rec["ranks"][:, PRIOR.names.index(name)])
            assert ds[f"{name}_coverage"].dimensions == ("coverage_level",)
            assert 0 <= float(ds[f"{name}_sbc_ks_pvalue"][...]) <= 1
        levels = list(ds["coverage_level"][:])
        assert 0.5 in levels and 0.95 in levels and ds["coverage_level"].units == "1"
        assert float(ds["coverage_error"][...]) == pytest.approx(rec["coverage_error"])
        assert ds["tarp_ecp"].dimensions == ("tarp_alpha",) and "TARP" in ds["tarp_atc"].long_name
        np.testing.assert_array_equal(ds["holdout_member"][:], np.arange(B) % 5)
    summary = json.loads(json.dumps(calibration_summary(rec, PRIOR.names)))  # JSON as in worker_summary.json
    assert summary["calibrated"] and summary["holdout_observations"] == B and summary["holdout_members"] == [0, 1, 2,
                                                                                                              3, 4]
    assert set(summary["sbc_ks_pvalue"]) == {"tau0", "rdrag"} and len(summary["sbc_ranks"]["rdrag"]) == B
    assert set(summary["coverage"]) == {"0.5", "0.95"}
    assert plot_sbc(tmp_path / "sbc.png", rec, PRIOR).read_bytes()[:8] == PNG
    assert plot_coverage(tmp_path / "coverage.png", rec, PRIOR).read_bytes()[:8] == PNG


def test_an_under_dispersed_posterior_fails_the_check(tmp_path):
    rec = record(1 / 3)
    print(f"\nunder-dispersed: KS p {rec['ks_pvals']}, coverage at 0.5 {rec['check_levels'][0.5]}, coverage error "
          f"{rec['coverage_error']:.3f}, TARP ATC {rec['tarp_atc']:.3f}")
    assert not rec["calibrated"] and rec["coverage_error"] > 0.2
    assert (rec["ks_pvals"] < 1e-3).all() and rec["tarp_atc"] < 0  # TARP's reference points are random: its sign
    assert (rec["check_levels"][0.5] < 0.35).all()
    write_posterior(tmp_path / "p.nc", synthetic(1 / 3)[2][:, 0], np.zeros(N), PRIOR, (0.5,), {}, {}, rec)
    with netCDF4.Dataset(tmp_path / "p.nc") as ds:
        assert ds.calibrated == 0
    assert not calibration_summary(rec, PRIOR.names)["calibrated"]
    assert plot_coverage(tmp_path / "coverage.png", rec, PRIOR).read_bytes()[:8] == PNG


def sample(member: int, theta: float, step: int, shape=(2, 4, 4)) -> BufferedSample:
    def state(k):
        return np.full(shape, 100.0 * member + k, np.float32)
    return BufferedSample(member, np.float32([theta, 2 * theta]), state(step), state(step + 1))


def test_held_out_states_are_distinct_and_bounded():
    held = HeldOutStates((2, 3), capacity=5)
    assert held.holds(sample(2, 0.1, 0)) and not held.holds(sample(0, 0.1, 0))
    for _ in range(3):  # the buffer repeats its items: each state counts once
        held.add(sample(2, 0.5, 0))
        held.add(sample(2, 0.5, 1))
    assert len(held) == 3 and held.seen == 3  # states 0, 1, 2 of member 2
    for step in range(10):
        held.add(sample(3, 0.7, step))
    assert len(held) == 5 and held.seen == 14
    out = held.held_out(samples=100, tol=0.1)
    assert out.x.shape == (5, 2, 4, 4) and out.theta.shape == (5, 2) and set(out.members) <= {2, 3}
    for t, x, m in zip(out.theta, out.x, out.members):  # each state keeps its own member's θ
        assert t[0] == pytest.approx({2: 0.5, 3: 0.7}[m], rel=1e-6) and x.flat[0] // 100 == m
    again = HeldOutStates((2, 3), capacity=5)
    again.load_state_dict(held.state_dict())
    assert again.seen == held.seen and again.keys == held.keys and len(again) == 5
    assert HeldOutStates((1,), 3).held_out(10, 0.1) is None


def test_holdout_members_are_the_last_ones(tmp_path):
    obs = tmp_path / "obs.nc"
    obs.write_bytes(b"")

    def plan(infer: str, members: int = 4):
        extra = f'\n[worker.infer]\nobservation = {json.dumps(str(obs))}\n{infer}\n'
        folder = tmp_path / f"c{abs(hash(infer)) % 10 ** 6}_{members}"
        return worker_settings(load_config(write_config(folder, modes=("train", "infer"), members=members,
                                                        extra=extra))).inference
    p = plan("holdout_members = 2")
    assert p.holdout == (2, 3) and p.settings.holdout_max == 256 and p.settings.coverage_tol == 0.1
    assert [q.name for q in p.diagnostic_plots] == ["posterior_sbc.png", "posterior_coverage.png"]
    assert plan("").holdout == () and plan('plot = ""').diagnostic_plots is None
    with pytest.raises(ConfigError, match="leaves none of the 4 member"):
        plan("holdout_members = 4")
    with pytest.raises(ConfigError, match="lr_decay_steps = 20 exceeds min_steps = 10"):
        plan("min_steps = 10\nlr_decay_steps = 20")


def test_inference_trains_without_the_held_out_members_and_diagnoses_on_them(tmp_path):
    """Inference (no MPI, an 8 x 8 tile): the held-out member's items never make a posterior step, their states
    are kept, and finish writes the diagnostics into posterior.nc, the PNGs and the summary."""
    import torch

    from bridge.partition import BoxPartition
    from bridge.worker.engine import Engine, build_inference, build_trainer
    from models.data import DataSpec
    from models.ncio import write_fields

    torch.set_num_threads(1)
    n = 8
    grid = np.arange(n, dtype=float)
    write_fields(tmp_path / "obs.nc", {c: np.ones((1, n, n)) for c in ("ssh", "u", "v", "temp")},
                 np.ones((n, n), "i1"), grid, grid, np.zeros(1))
    extra = (f'\n[worker.infer]\nobservation = "{tmp_path / "obs.nc"}"\nnorm_warmup_steps = 2\nholdout_members = 2\n'
             'holdout_samples = 50\nsamples = 100\n')
    settings = worker_settings(load_config(write_config(tmp_path, modes=("train", "infer"), members=4, extra=extra)))
    spec = DataSpec(("ssh", "u", "v", "temp"), ("tau0",), n, n)
    inference = build_inference(spec, settings, "cpu")
    Engine(build_trainer(spec, settings, "cpu", use_position=False, lag=1), BoxPartition.whole(n, n),
           np.ones((n, n)), use_position=False, inference=inference)
    rng = np.random.default_rng(0)

    def item(member, step):
        t = 0.1 + 0.01 * member
        return BufferedSample(member, np.float32([t]), rng.random((4, n, n), np.float32) * t,
                              rng.random((4, n, n), np.float32) * t)
    held = [item(m, s) for m in (2, 3) for s in range(3)]
    assert inference.train_step(held[:2]) is None and inference.step == 0  # only held-out items: no step
    for k in range(3):
        inference.train_step([item(0, k), item(1, k), held[2 + k]])
    assert inference.step == 3 and len(inference.holdout) == 10  # 5 distinct held-out items, 2 states each
    assert inference.holds_out(3) and not inference.holds_out(1)
    inference.hold_out(3, np.float32([0.13]), np.zeros((4, n, n), np.float32))
    assert len(inference.holdout) == 11
    stats = inference.finish(0, 1)
    calib = stats["calibration"]
    assert calib["holdout_observations"] == 11 and calib["holdout_members"] == [2, 3]
    assert set(calib["sbc_ks_pvalue"]) == {"tau0"} and isinstance(calib["calibrated"], bool)
    with netCDF4.Dataset(tmp_path / "posterior.nc") as ds:
        assert ds.dimensions["holdout"].size == 11 and len(ds["tau0"]) == 100
        assert ds["tau0_sbc_rank"].valid_max == 50
    for png in ("posterior_sbc.png", "posterior_coverage.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG
    state = inference.state_dict()
    assert state["holdout"]["x"].shape == (11, 4, n, n)


def test_learning_rate_decays_to_one_percent_by_min_steps(tmp_path):
    from types import SimpleNamespace

    from bridge.worker.infer import Inference
    from bridge.worker.settings import InferSettings
    rate = Inference.learning_rate
    plan = SimpleNamespace(settings=InferSettings(lr=1e-3, min_steps=300, lr_decay_steps=200))
    me = SimpleNamespace(plan=plan)
    assert rate(me, 0) == rate(me, 100) == pytest.approx(1e-3)
    assert rate(me, 200) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert rate(me, 300) == rate(me, 5000) == pytest.approx(1e-5)
    me.plan = SimpleNamespace(settings=InferSettings(lr=1e-3, min_steps=300))
    assert rate(me, 300) == 1e-3
