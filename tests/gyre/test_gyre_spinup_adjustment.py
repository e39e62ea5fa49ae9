"""gyre/tools/spinup_adjustment.py: a short spin-up end to end on a coarse grid, the analysis on synthetic
series of known adjustment time, and bad input. No timing is asserted."""
from __future__ import annotations

import json
import math

import netCDF4
import numpy as np
import pytest
import spinup_adjustment as sa

from models import equilibrium as eq
from models import ocean_metrics as om

# the shipped spin-up configuration on a 16 x 16 grid of 90 km: two model years in a few seconds
COARSE = ["--set", "namdom.nn_nx=16", "--set", "namdom.nn_ny=16", "--set", "namdom.rn_dx=90000.0",
          "--set", "namdom.rn_dy=90000.0"]


def test_two_years_end_to_end(gyre_exe, tmp_path, capsys):
    out, js = tmp_path / "spin", tmp_path / "adjust.json"
    assert sa.main(["--years", "2", "--out", str(out), "--json", str(js)] + COARSE) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line for line in printed.splitlines() if line.split()}
    for name in om.metric_names():  # a table row for every metric, with its units
        assert name in rows and om.metric(name).units in rows[name].split()
    assert "per model year" in printed and "slowest:" in printed

    fig = json.loads(js.read_text())
    assert {"command", "cfg", "set", "years", "fields", "metrics_nc", "method", "cost", "slowest", "metrics"} <= set(fig)
    assert fig["years"] == 2 and fig["method"] == "crossing" and fig["set"]["namdom"]["nn_nx"] == 16
    assert {"loop_s", "loop_s_per_year", "wall_s", "wall_s_per_year", "steps_per_s", "cfl_max"} <= set(fig["cost"])
    assert fig["cost"]["loop_s_per_year"] > 0 and fig["cost"]["wall_s_per_year"] > 0
    assert set(fig["metrics"]) == set(om.metric_names())
    for name, r in fig["metrics"].items():
        assert {"units", "final", "adjust_years", "fit_years", "equilibrated_year", "constant", "annual_means"} <= set(r)
        assert len(r["annual_means"]) == 2 and r["equilibrated_year"] is None  # the detector needs 10 years
    assert fig["metrics"]["thickness_mean"]["constant"]  # the layer's volume is conserved (no outcrop here)
    assert 0 < fig["metrics"]["ke"]["adjust_years"] < 2 and fig["metrics"]["ke"]["final"] > 0

    with netCDF4.Dataset(fig["metrics_nc"]) as ds:  # the CF time series of every metric
        assert ds.Conventions == "CF-1.8" and ds.featureType == "timeSeries"
        assert ds["time"].standard_name == "time" and ds["time"].units.startswith("seconds since")
        assert len(ds["time"]) == 48 + 1  # every 15 days for two years (730 days), and the state at rest
        for name in om.metric_names():
            assert ds[name].units == om.metric(name).units and ds[name].long_name == om.metric(name).long_name
        assert ds.rho0 == 1025.0 and ds.cp == om.CP0
    with netCDF4.Dataset(fig["fields"]) as ds:  # gyre writes the constants the metrics need
        assert (ds.rho0, ds.cp, ds.grav) == (1025.0, om.CP0, om.GRAV)

    again = sa.measure(out, sa.DEFAULT_CFG, 2, sa.parse_sets(COARSE[1::2]), 60.0, do_run=False)
    assert again["metrics"]["ke"]["adjust_years"] == fig["metrics"]["ke"]["adjust_years"]  # --no-run: same run
    with pytest.raises(FileExistsError, match="already holds a run"):
        sa.measure(out, sa.DEFAULT_CFG, 2, {}, 60.0, do_run=True)


def synthetic_run(years: int = 100, tau: float = 20.0, per_year: int = 24) -> om.RunMetrics:
    """Series of known e-folding times (years): mean_temp tau, ke tau / 4 with the jet NaN at rest, a constant."""
    t = np.arange(years * per_year + 1) * eq.YEAR / per_year
    rng = np.random.default_rng(0)
    jet = 5.0e5 + 1.0e5 * (1.0 - np.exp(-t / (tau / 4 * eq.YEAR)))
    jet[0] = np.nan
    series = {"mean_temp": 15.0 - 2.0 * (1.0 - np.exp(-t / (tau * eq.YEAR))) + 0.02 * rng.standard_normal(t.size),
              "jet_latitude": jet, "thickness_mean": np.full(t.size, 600.0)}
    return om.RunMetrics(t, "seconds since 2000-01-01 00:00:00", "standard", series)


def test_adjustment_times_of_known_series():
    table = sa.adjustment_table(synthetic_run(years=150))
    assert table["mean_temp"]["adjust_years"] == pytest.approx(20.0, rel=0.1)
    assert table["mean_temp"]["fit_years"] == pytest.approx(20.0, rel=0.1)
    # the detector's default (3 passing 30-year windows in a row) waits several e-folding times: here 119 years
    assert table["mean_temp"]["equilibrated_year"] is not None and table["mean_temp"]["equilibrated_year"] > 80
    assert table["mean_temp"]["units"] == "degC" and len(table["mean_temp"]["annual_means"]) == 150
    assert sa.adjustment_table(synthetic_run(years=100))["mean_temp"]["equilibrated_year"] is None  # too short
    # the jet starts at its first finite value; its 5-year adjustment is read from annual means (coarse)
    assert table["jet_latitude"]["adjust_years"] == pytest.approx(5.0, rel=0.2)
    assert table["thickness_mean"]["constant"] and math.isnan(table["thickness_mean"]["adjust_years"])
    assert sa.slowest(table)[0] == "mean_temp"
    text = sa.format_table(table)
    assert "constant" in text.splitlines()[3] and text.splitlines()[0].split()[0] == "metric"


def test_namelist_edits():
    text = "&namrun\n   rn_dt = 1200.  ! step\n/\n&namdom\n   nn_nx = 8\n/\n"
    edited = sa.set_value(text, "namrun", "rn_dt", "2400.0")
    assert sa.get_value(edited, "namrun", "rn_dt") == "2400.0" and "! step" in edited
    edited = sa.set_value(edited, "namdom", "nn_ny", "9")
    assert sa.get_value(edited, "namdom", "nn_ny") == "9" and sa.get_value(edited, "namdom", "nn_nx") == "8"
    edited = sa.set_value(edited, "namphys", "rn_tau0", "0.1")
    assert sa.get_value(edited, "namphys", "rn_tau0") == "0.1"
    cfg, per_year = sa.run_cfg(sa.DEFAULT_CFG, 3, {})
    assert per_year == 13140 and sa.get_value(cfg, "namrun", "nn_itend") == str(3 * 13140)


def test_bad_input_names_the_file_and_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="--cfg .*nowhere: no such file"):
        sa.run_cfg(tmp_path / "nowhere", 2, {})
    cfg = tmp_path / "namelist_cfg"
    cfg.write_text("&namrun\n   rn_dt = 7000.\n/\n")
    with pytest.raises(ValueError, match=r"namelist_cfg: &namrun rn_dt = 7000.0 s does not divide a 365-day year"):
        sa.run_cfg(cfg, 2, {})
    cfg.write_text("&namrun\n   rn_dt = 'x'\n/\n")
    with pytest.raises(ValueError, match=r"namelist_cfg: &namrun rn_dt = \"'x'\" is not a number"):
        sa.run_cfg(cfg, 2, {})
    with pytest.raises(ValueError, match="--years must be a whole number"):
        sa.run_cfg(sa.DEFAULT_CFG, 0, {})
    with pytest.raises(FileNotFoundError, match="--no-run: .*gyre.out is missing"):
        sa.measure(tmp_path / "empty", sa.DEFAULT_CFG, 2, {}, 60.0, do_run=False)
