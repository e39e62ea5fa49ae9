"""gyre/tools/twin.py's measures on analytic cases (no model run)."""
from __future__ import annotations

import gyre_testlib  # noqa: F401  (puts gyre/tools on the path)
import numpy as np
import pytest
from twin import efold_days, high_k_enstrophy, parse_sets, steps_per_day


def test_efold_of_decay_then_exponential_growth():
    days = np.arange(200.0)
    # a remnant decaying over 40 days, then growth with an e-folding time of 25 days, saturating at 1
    diff = np.where(days < 40, 1e-6 * np.exp(-days / 40), 1e-6 * np.exp(-1.0) * np.exp((days - 40) / 25))
    diff = np.minimum(diff, 1.0)
    assert efold_days(days, diff, saturated=1.0) == pytest.approx(25.0, rel=1e-6)


def test_efold_without_growth_is_infinite():
    days = np.arange(100.0)
    assert efold_days(days, 1e-6 * np.exp(-days / 50), saturated=1.0) == float("inf")


def test_high_k_enstrophy_tells_a_checkerboard_from_a_smooth_flow():
    ny, nx = 32, 40
    y, x = np.mgrid[0:ny, 0:nx]
    smooth_u = np.sin(np.pi * y / ny)[None] * np.ones((1, ny, nx))       # a jet: vorticity at the largest scales
    noisy_u = smooth_u + 0.05 * ((-1.0) ** (x + y))[None]
    v = np.zeros((1, ny, nx))
    assert high_k_enstrophy(smooth_u, v) < 1e-3
    assert high_k_enstrophy(noisy_u, v) > 0.5


def test_parse_sets_and_daily_steps():
    assert parse_sets(["namphys.rn_ahm=20", "namphys.ln_dynvor_een=True", "namrun.cn_exp='x'"]) == {
        "namphys": {"rn_ahm": 20, "ln_dynvor_een": True}, "namrun": {"cn_exp": "x"}}
    with pytest.raises(ValueError, match="BLOCK.VARIABLE=VALUE"):
        parse_sets(["rn_ahm=20"])
    assert steps_per_day({"namrun": {"rn_dt": 2400.0}}) == 36
    assert steps_per_day({}) == 72                                       # namelist_ref's 1200 s
    with pytest.raises(ValueError, match="does not divide a day"):
        steps_per_day({"namrun": {"rn_dt": 1000.0}})
