"""θ draws for ensemble members: Latin hypercube strata, bounds, seeded reproducibility."""
from __future__ import annotations

import numpy as np
from deploy_fixtures import PARAMETERS
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config.ensemble import draw_parameters, latin_hypercube, parameters_csv, read_parameters_csv, uniform_design


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), dims=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_lhs_one_draw_per_stratum(n, dims, seed):
    unit = latin_hypercube(n, dims, np.random.default_rng(seed))
    assert unit.shape == (n, dims)
    strata = np.floor(unit * n).astype(int)
    for column in strata.T:
        assert sorted(column) == list(range(n))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), dims=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_uniform_within_unit_box(n, dims, seed):
    unit = uniform_design(n, dims, np.random.default_rng(seed))
    assert unit.shape == (n, dims)
    assert np.all((unit >= 0.0) & (unit < 1.0))


def test_draw_is_scaled_seeded_and_reproducible(make_config):
    cfg = make_config(ocean={"members": 8}, parameters=PARAMETERS, ensemble={"design": "lhs", "seed": 7})
    theta = draw_parameters(cfg)
    assert theta.shape == (8, 2)
    assert np.all((theta[:, 0] >= 0.05) & (theta[:, 0] < 0.2))
    assert np.all((theta[:, 1] >= 100.0) & (theta[:, 1] < 1000.0))
    strata = np.floor((theta[:, 1] - 100.0) / 900.0 * 8).astype(int)
    assert sorted(strata) == list(range(8))
    np.testing.assert_array_equal(theta, draw_parameters(cfg))
    other = make_config(ocean={"members": 8}, parameters=PARAMETERS, ensemble={"design": "lhs", "seed": 8})
    assert not np.array_equal(theta, draw_parameters(other))


def test_uniform_design_within_bounds(make_config):
    cfg = make_config(ocean={"members": 50}, parameters=PARAMETERS, ensemble={"design": "uniform", "seed": 1})
    theta = draw_parameters(cfg)
    assert np.all((theta[:, 0] >= 0.05) & (theta[:, 0] < 0.2))
    assert np.all((theta[:, 1] >= 100.0) & (theta[:, 1] < 1000.0))


def test_parameters_csv_round_trip(make_config, tmp_path):
    cfg = make_config(ocean={"members": 3}, parameters=PARAMETERS)
    theta = draw_parameters(cfg)
    text = parameters_csv(cfg, theta)
    assert text.splitlines()[0] == "member,component,tau0,ahm"
    assert text.splitlines()[2].startswith("2,gyre_2,")
    (tmp_path / "p.csv").write_text(text)
    table = read_parameters_csv(tmp_path / "p.csv")
    assert list(table) == ["gyre_1", "gyre_2", "gyre_3"]
    assert table["gyre_3"] == {"tau0": theta[2, 0], "ahm": theta[2, 1]}


def test_given_values_replace_the_draw(make_config, write_config):
    """[[parameters]] values: one per member, or one for every member (a new θ* to start from)."""
    import pytest

    from bridge.config.config import load_config
    from models.settings import ConfigError
    given = [dict(PARAMETERS[0], values=[0.1, 0.15, 0.12]), dict(PARAMETERS[1], values=[200, 300.0, 400.0])]
    theta = draw_parameters(make_config(ocean={"members": 3}, parameters=given))
    np.testing.assert_array_equal(theta, [[0.1, 200.0], [0.15, 300.0], [0.12, 400.0]])
    one = [dict(PARAMETERS[0], values=[0.13]), dict(PARAMETERS[1], values=[500.0])]
    np.testing.assert_array_equal(draw_parameters(make_config(ocean={"members": 2}, parameters=one)),
                                  [[0.13, 500.0], [0.13, 500.0]])
    for bad, message in (
            ([dict(PARAMETERS[0], values=[0.3]), PARAMETERS[1]], r"key 'values': \[0.3\] outside \[low, high\]"),
            ([dict(PARAMETERS[0], values=[0.1]), PARAMETERS[1]], r"key 'values' is set for \['tau0'\] but not"),
            ([dict(PARAMETERS[0], values=[0.1, 0.1]), dict(PARAMETERS[1], values=[200.0])],
             "key 'values' has 2 values for 3 members")):
        with pytest.raises(ConfigError, match=message):
            load_config(write_config(ocean={"members": 3}, parameters=bad))
