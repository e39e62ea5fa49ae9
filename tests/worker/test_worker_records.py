"""The run's records when a member is lost mid-run: statistics over the members still there."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.worker.output import _member_statistics
from bridge.worker.records import EmulationRecord, EnsembleRecord


def state(value: float) -> np.ndarray:
    return np.full((2, 3, 4), value)


def test_ensemble_record_goes_on_without_a_lost_member():
    rec = EnsembleRecord(("a", "b", "c"))
    for kt in (0, 4):
        for k, m in enumerate(rec.members):
            rec.add(m, kt, state(kt + k))
    rec.add("a", 8, state(1.0))
    rec.drop("c")  # lost before sending step 8
    rec.add("b", 8, state(2.0))
    rec.add("a", 12, state(5.0))
    rec.add("b", 12, state(7.0))
    assert rec.steps == [0, 4, 8, 12]
    x = rec.array()
    assert x.shape == (4, 3, 2, 3, 4)
    assert np.isnan(x[2:, 2]).all() and np.isfinite(x[:2]).all() and np.isfinite(x[2:, :2]).all()
    mean, std, quant = _member_statistics(x, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(mean[:, 0, 0, 0], [1.0, 5.0, 1.5, 6.0])
    np.testing.assert_allclose(std[:, 0, 0, 0], [1.0, 1.0, np.sqrt(0.5), np.sqrt(2.0)])
    np.testing.assert_allclose(quant[:, 3, 0, 0, 0], [5.0, 6.0, 7.0])  # min, median, max of the two left


def test_one_member_left_has_no_spread():
    x = np.stack([state(1.0), np.full((2, 3, 4), np.nan)])[None]  # (T=1, K=2, ...)
    mean, std, quant = _member_statistics(x, [0.1, 0.9])
    assert (mean == 1.0).all() and (std == 0.0).all() and (quant == 1.0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_member_quantiles_match_numpy_with_nan(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(7, 5, 3, 6))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0, :, 0, 0] = np.nan  # every member missing at one point: NaN there
    q = [0.1, 0.25, 0.5, 0.9]
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(x, q, axis=1)
    _, _, got = _member_statistics(x, q)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_emulation_record_keeps_the_steps_of_the_members_left():
    rec = EmulationRecord(("a", "b"))
    for kt in (4, 8):
        for m in ("a", "b"):
            rec.add(m, kt, state(0.0), state(kt), state(kt + 1.0), state(0.0), state(kt))
    rec.drop("b")
    rec.add("a", 12, state(0.0), state(12.0), state(12.0), state(0.0), state(12.0))
    assert rec.common_steps() == [4, 8, 12]
    sent = rec.arrays(rec.sent)
    assert sent.shape == (2, 3, 2, 3, 4) and np.isnan(sent[1, 2]).all() and (sent[0, 2] == 12).all()
    # errors over what exists: (1 + 1 + 1 + 1 + 0) / 5 values of (sent - ocean)^2
    assert rec.errors()["emulator_mse"] == pytest.approx(4 / 5)
