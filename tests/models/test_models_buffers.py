"""Training buffers (FIFO, FIRO, Reservoir): exact orders, multisets, uniform draws,
eviction counts, validation, exact resume and concurrent use."""
import collections
import importlib.util
import io
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.buffers import BUFFER_KINDS, BufferConfig, BufferEmpty, make_buffer

KINDS = sorted(BUFFER_KINDS)
CHI2_999 = {19: 43.82}  # chi-square quantile 0.999, 19 degrees of freedom


def filled(kind, n, capacity=10, watermark=0, seed=0):
    buf = make_buffer(BufferConfig(kind, capacity=capacity, watermark=watermark, seed=seed))
    results = [buf.put(i) for i in range(n)]
    return buf, results


def served_removed(buf):
    """Samples that left the buffer by being served: all of n_got, except for the reservoir."""
    return 0 if buf.kind == "reservoir" else buf.n_got


def assert_nothing_unaccounted(buf):
    assert buf.n_put == buf.n_dropped + buf.n_evicted + served_removed(buf) + len(buf)


# -- configuration ---------------------------------------------------------------------
def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match=r"'lifo'.*fifo.*firo.*reservoir"):
        BufferConfig(kind="lifo")


@pytest.mark.parametrize("kw, what", [({"capacity": 0}, "capacity"), ({"capacity": 2.5}, "capacity"),
                                      ({"capacity": True}, "capacity"),
                                      ({"capacity": 5, "watermark": 6}, "watermark"),
                                      ({"watermark": -1}, "watermark")])
def test_capacity_and_watermark_validated(kw, what):
    with pytest.raises(ValueError, match=f"BufferConfig.{what}"):
        BufferConfig(**kw)


def test_config_is_frozen_and_kind_checked():
    cfg = BufferConfig("fifo", capacity=4, watermark=4)
    with pytest.raises(AttributeError):
        cfg.capacity = 8
    assert type(make_buffer(cfg)).__name__ == "FIFOBuffer"
    with pytest.raises(ValueError, match="needs BufferConfig.kind='firo'"):
        BUFFER_KINDS["firo"](cfg)


@pytest.mark.parametrize("kind", KINDS)
def test_not_ready_raises_buffer_empty_with_the_reason(kind):
    buf, _ = filled(kind, 3, capacity=10, watermark=5)
    assert not buf.ready(2)
    with pytest.raises(BufferEmpty, match=r"holds 3 sample\(s\).*needs 5.*watermark 5"):
        buf.get(2)
    with pytest.raises(ValueError, match="exceeds .* capacity 10"):
        buf.ready(11)
    buf.put(3), buf.put(4)
    assert buf.ready(5) and not buf.ready(6)


# -- FIFO ------------------------------------------------------------------------------
def test_fifo_order_exact_and_oldest_dropped():
    buf, results = filled("fifo", 13, capacity=10)
    assert results == [True] * 10 + [False] * 3
    assert buf.n_dropped == 3 and len(buf) == 10
    assert buf.get(4) == [3, 4, 5, 6]
    buf.put(13)
    assert buf.get(7) == [7, 8, 9, 10, 11, 12, 13]
    assert len(buf) == 0 and buf.n_got == 11
    assert_nothing_unaccounted(buf)


@pytest.mark.parametrize("kind", ["fifo", "firo"])
def test_close_drains_the_tail(kind):
    buf, _ = filled(kind, 7, capacity=10, watermark=5)
    got = buf.get(5)
    assert not buf.ready(5)
    buf.close()
    got += buf.get(5)
    assert sorted(got) == list(range(7)) and len(buf) == 0 and not buf.ready(1)
    buf.put(7)  # the stream resumed: the watermark applies again
    assert not buf.closed and not buf.ready(1)


# -- FIRO ------------------------------------------------------------------------------
def test_firo_serves_each_sample_exactly_once_in_random_order():
    buf, results = filled("firo", 60, capacity=100, watermark=10, seed=3)
    assert all(results)
    got = []
    while buf.ready(7):
        got += buf.get(7)
    buf.close()
    got += buf.get(7)
    assert collections.Counter(got) == collections.Counter(range(60))
    assert got != list(range(60))  # random out, not first out
    assert buf.n_got == 60 and buf.n_dropped == 0


def test_firo_full_evicts_random_unseen_samples():
    buf, results = filled("firo", 30, capacity=10, seed=1)
    assert results.count(False) == 20 and buf.n_dropped == 20
    kept = buf.get(10)
    assert len(set(kept)) == 10 and 29 in kept  # the newest always enters
    assert min(kept) < 20  # random eviction: not only the 10 newest survive (seeded)
    assert_nothing_unaccounted(buf)


# -- Reservoir -------------------------------------------------------------------------
def test_reservoir_repeats_and_never_starves_after_watermark():
    buf, _ = filled("reservoir", 8, capacity=50, watermark=8)
    draws = [s for _ in range(100) if buf.ready(4) for s in buf.get(4)]
    assert len(draws) == 400  # 100 batches from 8 samples: ready every time
    assert set(draws) == set(range(8)) and len(buf) == 8
    assert buf.n_got == 400 and buf.n_dropped == 0


def test_reservoir_batches_have_no_duplicates():
    buf, _ = filled("reservoir", 6, capacity=6)
    for _ in range(50):
        assert sorted(buf.get(6)) == list(range(6))


def test_reservoir_draws_are_uniform_chi_square():
    buf, _ = filled("reservoir", 20, capacity=20, seed=12345)
    counts = collections.Counter(s for _ in range(2000) for s in buf.get(5))
    expected = 2000 * 5 / 20
    chi2 = sum((counts[i] - expected) ** 2 / expected for i in range(20))
    assert chi2 < CHI2_999[19], f"chi-square {chi2:.1f} over 19 dof: draws are not uniform"


def test_reservoir_full_replaces_only_served_samples():
    buf, results = filled("reservoir", 11, capacity=10, seed=0)
    assert results[-1] is False and buf.n_dropped == 1 and buf.n_evicted == 0  # all unseen: one lost
    served = set(buf.get(4))
    unseen_before = set(buf.state_dict()["items"]) - served
    assert [buf.put(100 + i) for i in range(4)] == [True] * 4  # each replaces a served one
    assert buf.n_evicted == 4 and buf.n_dropped == 1
    items = set(buf.state_dict()["items"])
    assert unseen_before <= items and {100, 101, 102, 103} <= items and not served & items
    assert buf.put(104) is False and buf.n_dropped == 2  # nothing served is left to replace
    assert_nothing_unaccounted(buf)


# -- persistence -----------------------------------------------------------------------
def _script(buf, start):
    """Interleaved puts and gets; returns what was served and what put returned."""
    out = []
    for i in range(start, start + 40):
        out.append(("put", buf.put(torch.tensor([float(i)]))))
        if i % 3 == 0 and buf.ready(4):
            out.append(("get", [float(t) for t in buf.get(4)]))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip_gives_identical_draws(kind, caplog):
    cfg = BufferConfig(kind, capacity=16, watermark=6, seed=7)
    buf = make_buffer(cfg)
    _script(buf, 0)
    raw = io.BytesIO()
    torch.save(buf.state_dict(), raw)
    raw.seek(0)
    twin = make_buffer(BufferConfig(kind, capacity=1, watermark=0, seed=99))  # overwritten by the state
    twin.load_state_dict(torch.load(raw, weights_only=True))
    assert "the saved configuration is kept" in caplog.text
    assert twin.config == cfg and twin.stats() == buf.stats()
    assert _script(twin, 40) == _script(buf, 40)
    assert twin.stats() == buf.stats()


def test_state_of_another_kind_is_refused():
    buf, _ = filled("fifo", 3)
    with pytest.raises(ValueError, match="state is for kind 'fifo'.*'reservoir'"):
        make_buffer(BufferConfig("reservoir", watermark=0)).load_state_dict(buf.state_dict())


# -- counters under any history and under threads ---------------------------------------
@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), ops=st.lists(st.integers(0, 5), max_size=80),
       capacity=st.integers(1, 8))
def test_counters_account_for_every_sample(kind, ops, capacity):
    buf = make_buffer(BufferConfig(kind, capacity=capacity, watermark=0))
    served, lost = [], 0
    for k, op in enumerate(ops):
        if op and buf.ready(min(op, capacity)):
            served += buf.get(min(op, capacity))
        else:
            lost += not buf.put(k)
    assert lost == buf.n_dropped and len(served) == buf.n_got
    assert_nothing_unaccounted(buf)
    if kind != "reservoir":
        assert len(set(served)) == len(served)


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_producer_and_consumer_lose_nothing_unreported(kind):
    buf = make_buffer(BufferConfig(kind, capacity=64, watermark=16, seed=1))
    n, served = 20000, []
    done = threading.Event()

    def produce():
        for i in range(n):
            buf.put(i)
        buf.close()
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    while not (done.is_set() and (kind == "reservoir" or not buf.ready(8))):
        if buf.ready(8):
            served += buf.get(8)
    producer.join(timeout=30)
    assert not producer.is_alive()
    assert buf.n_put == n and buf.n_got == len(served)
    assert_nothing_unaccounted(buf)
    if kind == "reservoir":
        assert len(set(served)) >= buf.n_evicted  # every replaced sample had been served
    else:
        assert len(set(served)) == len(served) and len(buf) == 0


# -- the buffer study benchmark ----------------------------------------------------------
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_buffers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_buffers", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_bench_heat_solver_keeps_constants_and_the_maximum_principle(bench):
    cfg = bench.StudyConfig(**bench.QUICK)
    theta = np.array([[300.0] * 5, [100.0, 500.0, 200.0, 400.0, 250.0]])
    u = bench.simulate_heat(theta, cfg)
    assert u.shape == (2, cfg.n_times, cfg.grid, cfg.grid)
    np.testing.assert_array_equal(u[0], 300.0)  # uniform parameters: nothing moves
    assert u[1].min() >= 100.0 and u[1].max() <= 500.0
    assert np.all(u[1, 0] == 100.0) and not np.allclose(u[1, -1], 100.0)  # starts at T0, then heats up


def test_bench_heat_solver_is_symmetric(bench):
    cfg = bench.StudyConfig(**bench.QUICK)
    theta = np.array([[150.0, 420.0, 420.0, 230.0, 230.0]])  # south = north, west = east
    u = bench.simulate_heat(theta, cfg)[0]
    np.testing.assert_allclose(u, u[:, ::-1, :], rtol=1e-6)
    np.testing.assert_allclose(u, u[:, :, ::-1], rtol=1e-6)


def test_bench_stream_is_time_ordered_and_offers_each_sample_once(bench):
    cfg = bench.StudyConfig(**bench.QUICK)
    ticks = bench.stream_order(cfg)
    assert ticks.shape == (cfg.n_train // cfg.clients * cfg.n_times, cfg.clients)
    assert sorted(ticks.ravel().tolist()) == list(range(cfg.n_train * cfg.n_times))
    times = ticks % cfg.n_times
    assert np.all(times == times[:, :1])  # one time per tick
    assert np.array_equal(times[:, 0], np.tile(np.arange(cfg.n_times), cfg.n_train // cfg.clients))


def test_bench_quick_end_to_end(bench, tmp_path):
    t0 = time.perf_counter()
    result = bench.main(["--quick", "--no-progress", "--json", str(tmp_path / "b.json")])
    elapsed = time.perf_counter() - t0
    saved = json.loads((tmp_path / "b.json").read_text())
    s = saved["summary"]
    assert set(s) == set(bench.METHODS) and saved["samples"] == result["samples"] == 128 * 20
    assert s["offline"]["mse_ratio_to_offline"] == 1.0
    one_epoch = saved["samples"] // 16
    assert s["offline"]["steps"] == s["fifo"]["steps"] == s["firo"]["steps"] == one_epoch  # each sample once
    assert s["reservoir"]["steps"] > one_epoch and s["reservoir"]["idle_fraction"] < 0.1  # repetition: no starving
    assert all(v["dropped"] == 0 and np.isfinite(v["mse"]) for v in s.values())
    assert elapsed < 60, f"--quick took {elapsed:.0f} s"


@pytest.mark.parametrize("rate, per_tick", [(2.0, [2, 2, 2, 2]), (0.5, [0, 1, 0, 1]), (1.5, [1, 2, 1, 2])])
def test_bench_training_chances_spread_a_fractional_rate(bench, rate, per_tick):
    cfg = bench.StudyConfig(**{**bench.QUICK, "steps_per_tick": rate})
    assert [bench.chances(cfg, k + 1) - bench.chances(cfg, k) for k in range(4)] == per_tick
    assert bench.compute_budget(cfg) == int(rate * len(bench.stream_order(cfg)))
