"""Physical metrics of an ocean state (analytic cases, gyre's own diagnostics) and the equilibrium detector."""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from models import equilibrium as eq
from models import ocean_metrics as om
from models.ncio import write_fields

REPO = Path(__file__).resolve().parents[2]
GYRE_EXE = REPO / "build" / "bin" / "gyre.exe"

NY, NX, DX, DY = 24, 16, 20.0e3, 25.0e3
PHYS = om.Physics(h0=500.0, gprime=0.02)


def basin(ny=NY, nx=NX) -> om.Grid:
    """A closed rectangular basin of ocean points."""
    return om.Grid(DX, DY, np.ones((ny, nx)))


def rest(grid, n=None) -> dict[str, np.ndarray]:
    shape = grid.shape if n is None else (n, *grid.shape)
    return {k: np.zeros(shape) for k in ("ssh", "u", "v", "temp")}


def from_streamfunction(psi: np.ndarray, ssh: np.ndarray, grid: om.Grid) -> tuple[np.ndarray, np.ndarray]:
    """u, v whose layer transports are those of psi at F points (psi = 0 on the walls, which are not stored)."""
    h = PHYS.h0 + PHYS.rgfac * ssh
    hu = -(psi - np.pad(psi[:-1], ((1, 0), (0, 0)))) / grid.dy
    hv = (psi - np.pad(psi[:, :-1], ((0, 0), (1, 0)))) / grid.dx
    h_u = 0.5 * (h + np.pad(h[:, 1:], ((0, 0), (0, 1)), mode="edge"))
    h_v = 0.5 * (h + np.pad(h[1:], ((0, 1), (0, 0)), mode="edge"))
    return hu / h_u * grid.umask, hv / h_v * grid.vmask


def double_gyre_psi(grid: om.Grid, amplitude: float) -> np.ndarray:
    """psi = A sin(pi x/Lx) sin(2 pi y/Ly) at F points: clockwise in the south, anticlockwise in the north."""
    ny, nx = grid.shape
    x = (np.arange(nx) + 1.0) / nx
    y = (np.arange(ny) + 1.0) / ny
    return amplitude * np.sin(np.pi * x)[None, :] * np.sin(2 * np.pi * y)[:, None]


# ----------------------------------------------------------------------------- the grid and constants


@pytest.mark.parametrize("kwargs, word", [
    ({"dx": 0.0, "dy": 1.0, "mask": np.ones((3, 3))}, "dx"),
    ({"dx": 1.0, "dy": 1.0, "mask": np.ones(3)}, "(ny, nx)"),
    ({"dx": 1.0, "dy": 1.0, "mask": np.full((3, 3), 0.5)}, "0 (land) and 1"),
    ({"dx": 1.0, "dy": 1.0, "mask": np.zeros((3, 3))}, "no ocean"),
])
def test_grid_refuses_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=re.escape(word)):
        om.Grid(**kwargs)


def test_physics_and_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="gprime"):
        om.Physics(h0=500.0, gprime=0.0)
    with pytest.raises(ValueError, match="wbc_width"):
        om.MetricSettings(wbc_width=-1.0)
    assert om.Physics(h0=500.0, gprime=0.0981).rgfac == pytest.approx(100.0)


def test_face_masks_close_the_walls_and_the_coast():
    mask = np.ones((4, 5))
    mask[1, 2] = 0.0
    grid = om.Grid(1.0, 1.0, mask)
    assert grid.umask[:, -1].sum() == 0 and grid.vmask[-1].sum() == 0  # eastern and northern walls
    assert grid.umask[1, 1] == 0 and grid.umask[1, 2] == 0 and grid.vmask[0, 2] == 0 and grid.vmask[1, 2] == 0


# ----------------------------------------------------------------------------- energy


def test_kinetic_energy_of_a_uniform_flow():
    """u = U on every open face: each face feeds two T cells a quarter each, KE = rho0/2 h0 U^2 dA (faces)."""
    grid, s = basin(), rest(basin())
    s["u"][:] = 0.3
    faces = (NX - 1) * NY  # the eastern wall's faces are closed
    expected = 0.5 * PHYS.rho0 * PHYS.h0 * 0.3 ** 2 * DX * DY * faces
    assert om.kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS) == pytest.approx(expected, rel=1e-13)
    s["v"][:] = 0.4  # |u|^2 adds up: 0.3^2 + 0.4^2 over the faces of each direction
    both = expected + 0.5 * PHYS.rho0 * PHYS.h0 * 0.4 ** 2 * DX * DY * NX * (NY - 1)
    assert om.kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS) == pytest.approx(both, rel=1e-13)


def test_kinetic_energy_is_thickness_weighted_and_ignores_land_faces():
    grid, s = basin(), rest(basin())
    s["u"][:] = 0.3
    base = om.kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS)
    s["ssh"][:] = PHYS.h0 / PHYS.rgfac  # h = 2 h0 everywhere
    assert om.kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS) == pytest.approx(2 * base, rel=1e-13)
    s["ssh"][:] = 0.0
    s["u"][:, -1] = 5.0  # a velocity on the eastern wall (a generated state may hold one) is no flow
    assert om.kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS) == pytest.approx(base, rel=1e-13)


def test_eddy_kinetic_energy_of_steady_and_oscillating_flows():
    grid, s = basin(), rest(basin(), n=4)
    s["u"][:] = 0.3  # steady: all mean, no eddy
    assert np.all(om.eddy_kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS) == 0.0)
    assert np.all(om.kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS) > 0.0)  # the case KE cannot tell
    s["u"] += np.array([0.1, -0.1, 0.1, -0.1])[:, None, None]  # mean 0.3, eddies +-0.1
    eddy = {**s, "u": np.full_like(s["u"], 0.1)}
    expected = om.kinetic_energy(eddy["ssh"], eddy["u"], eddy["v"], grid, PHYS)
    np.testing.assert_allclose(om.eddy_kinetic_energy(s["ssh"], s["u"], s["v"], grid, PHYS), expected, rtol=1e-12)


def test_eddy_windows_split_a_run_at_whole_window_lengths():
    """Two years of different steady flows: no eddy energy within each year, although the flow changed."""
    grid, s = basin(), rest(basin(), n=4)
    s["u"][:2], s["u"][2:] = 0.1, 0.5
    seconds = np.array([0.0, 0.5, 1.0, 1.5]) * om.YEAR
    out = om.evaluate(s, seconds, grid, PHYS, ["ke", "eke"])
    assert np.all(out["eke"] == 0.0) and out["ke"][3] > out["ke"][0]
    one_window = om.evaluate(s, seconds, grid, PHYS, ["eke"], om.MetricSettings(eke_window=2 * om.YEAR))
    assert np.all(one_window["eke"] > 0.0)  # the change of the mean flow counted as eddies


# ----------------------------------------------------------------------------- heat and thermocline


def test_heat_content_and_mean_temperature_of_a_uniform_layer():
    mask = np.ones((NY, NX))
    mask[5:8, 4:9] = 0.0  # an island: its points count for nothing
    grid, s = om.Grid(DX, DY, mask), rest(basin())
    s["temp"][:] = np.where(mask > 0, 12.0, 99.0)
    expected = PHYS.rho0 * PHYS.cp * DX * DY * PHYS.h0 * 12.0 * mask.sum()
    assert om.heat_content(s["ssh"], s["temp"], grid, PHYS) == pytest.approx(expected, rel=1e-13)
    assert om.mean_temperature(s["ssh"], s["temp"], grid, PHYS) == pytest.approx(12.0, rel=1e-13)


def test_mean_temperature_is_volume_weighted():
    """Half the basin twice as thick at 20 degC, the other half at 5: (2*20 + 5)/3 = 15 degC."""
    grid, s = basin(), rest(basin())
    s["ssh"][: NY // 2] = PHYS.h0 / PHYS.rgfac / 3  # h = 4/3 h0
    s["ssh"][NY // 2:] = -PHYS.h0 / PHYS.rgfac / 3  # h = 2/3 h0
    s["temp"][: NY // 2], s["temp"][NY // 2:] = 20.0, 5.0
    assert om.mean_temperature(s["ssh"], s["temp"], grid, PHYS) == pytest.approx(15.0, rel=1e-13)
    assert om.mean_temperature(s["ssh"], s["temp"], grid, PHYS) != pytest.approx(12.5)  # the area mean


def test_thickness_mean_and_variance():
    grid, s = basin(), rest(basin())
    assert om.mean_thickness(s["ssh"], grid, PHYS) == pytest.approx(PHYS.h0)
    assert om.thickness_variance(s["ssh"], grid, PHYS) == 0.0  # a flat thermocline
    s["ssh"][: NY // 2], s["ssh"][NY // 2:] = 0.2, -0.2  # interface displaced by -+ rgfac * 0.2
    assert om.mean_thickness(s["ssh"], grid, PHYS) == pytest.approx(PHYS.h0, rel=1e-13)
    assert om.thickness_variance(s["ssh"], grid, PHYS) == pytest.approx((PHYS.rgfac * 0.2) ** 2, rel=1e-12)


# ----------------------------------------------------------------------------- transports


@pytest.mark.parametrize("thick", [False, True])
def test_streamfunction_of_an_analytic_double_gyre(thick):
    """A non-divergent transport built from psi gives psi back, and its max/min (Sv), whatever h does."""
    grid = basin()
    ssh = 0.3 * np.cos(np.linspace(0, 3, NX))[None, :] * np.linspace(-1, 1, NY)[:, None]  # h varies by 30 %
    ssh = ssh if thick else np.zeros(grid.shape)
    psi = double_gyre_psi(grid, 30.0e6)
    u, v = from_streamfunction(psi, ssh, grid)
    np.testing.assert_allclose(om.transport_streamfunction(ssh, u, v, grid, PHYS), psi, atol=1e-6 * 30.0e6)
    top, bottom = om.gyre_transports(ssh, u, v, grid, PHYS)
    assert top == pytest.approx(30.0, rel=1e-9) and bottom == pytest.approx(-30.0, rel=1e-9)


def test_streamfunction_drops_the_divergent_part():
    """A purely divergent flow (a uniform eastward flux leaving through nothing) has no gyre; integrating h u
    from the southern wall would have reported one of NY*U*h0*dy."""
    grid, s = basin(), rest(basin())
    x = (np.arange(NX) + 1.0) * DX
    s["u"][:] = 0.1 * np.sin(np.pi * x / (NX * DX))[None, :] * grid.umask  # converges/diverges along x only
    psi = om.transport_streamfunction(s["ssh"], s["u"], s["v"], grid, PHYS)
    assert np.abs(psi).max() < 1e-6 * PHYS.h0 * 0.1 * DY
    integrated = -DY * np.cumsum(PHYS.h0 * s["u"], axis=0)
    assert np.abs(integrated).max() > 0.5 * NY * PHYS.h0 * 0.1 * DY * 0.9


def test_western_boundary_transport_of_the_analytic_gyre():
    """Northward transport across a row of the first n columns is psi at the band's eastern edge."""
    grid = basin()
    psi = double_gyre_psi(grid, 30.0e6)
    u, v = from_streamfunction(psi, np.zeros(grid.shape), grid)
    for n in (1, 3, 8):
        expected = 30.0 * np.sin(np.pi * n / NX)  # the row of psi's max: y = Ly/4 lies on an F row
        assert om.western_boundary_transport(0 * u, v, grid, PHYS, width=n * DX) == pytest.approx(expected, rel=1e-9)
    assert om.western_band_columns(grid, 0.1 * DX) == 1  # never an empty band
    reversed_gyres = om.western_boundary_transport(0 * u, -v, grid, PHYS, width=3 * DX)
    assert reversed_gyres == pytest.approx(30.0 * np.sin(np.pi * 3 / NX), rel=1e-9)  # the north's, now northward


@pytest.mark.parametrize("y0_rows", [10.0, 10.3, 11.5, 12.75])
def test_jet_latitude_of_a_gaussian_jet_with_westward_flanks(y0_rows):
    grid = basin()
    y0 = (y0_rows + 0.5) * DY
    y = grid.y_u[:, None] * np.ones((1, NX))
    jet = 1.0 * np.exp(-((y - y0) / (2 * DY)) ** 2)
    flanks = -1.5 * (np.exp(-((y - y0 - 6 * DY) / (1.5 * DY)) ** 2) + np.exp(-((y - y0 + 6 * DY) / (1.5 * DY)) ** 2))
    u = jet + flanks
    assert om.jet_latitude(u, grid) == pytest.approx(y0, abs=0.05 * DY)
    zonal = np.abs(u[:, :-1].mean(axis=1))
    assert abs(grid.y_u[zonal.argmax()] - y0) > 4 * DY  # |u| would have picked a westward flank
    assert np.isnan(om.jet_latitude(np.zeros(grid.shape), grid))  # at rest there is no jet


def test_metrics_broadcast_over_leading_axes():
    grid = basin()
    psi = double_gyre_psi(grid, 30.0e6)
    u, v = from_streamfunction(psi, np.zeros(grid.shape), grid)
    states = {"ssh": np.zeros((2, 3, NY, NX)), "u": np.stack([np.stack([u, 2 * u, 3 * u])] * 2),
              "v": np.stack([np.stack([v, 2 * v, 3 * v])] * 2), "temp": np.zeros((2, 3, NY, NX))}
    top, _ = om.gyre_transports(states["ssh"], states["u"], states["v"], grid, PHYS)
    np.testing.assert_allclose(top, [[30.0, 60.0, 90.0]] * 2, rtol=1e-9)
    assert om.jet_latitude(states["u"], grid).shape == (2, 3)


# ----------------------------------------------------------------------------- the table and files


def test_table_names_units_and_unknown_names():
    names = om.metric_names()
    assert names == ["ke", "eke", "heat", "mean_temp", "thickness_mean", "thickness_var", "psi_max", "psi_min",
                     "wbc_transport", "jet_latitude"]
    assert all(om.metric(n).units and om.metric(n).long_name and om.metric(n).description for n in names)
    with pytest.raises(ValueError, match="unknown ocean metric 'amoc'.*psi_max"):
        om.metric("amoc")
    with pytest.raises(ValueError, match="unknown ocean metric"):
        om.evaluate(rest(basin(), 1), [0.0], basin(), PHYS, ["ke", "amoc"])


def synthetic_run(path: Path, n=6, calendar="standard", units="seconds since 2000-01-01 00:00:00") -> Path:
    """A fields file in gyre's layout (via ncio): a double gyre growing in time, land masked with fill values."""
    mask = np.ones((NY, NX))
    mask[0, 0] = 0.0
    grid = om.Grid(DX, DY, np.ones((NY, NX)))
    u, v = from_streamfunction(double_gyre_psi(grid, 10.0e6), np.zeros(grid.shape), grid)
    growth = np.arange(1.0, n + 1)[:, None, None]
    fields = {"ssh": np.zeros((n, NY, NX)), "u": growth * u * mask, "v": growth * v * mask,
              "temp": np.full((n, NY, NX), 10.0)}
    time = np.arange(n) * 73.0 * (1.0 if units.startswith("days") else 86400.0)  # five records a year
    attrs = {"dx": DX, "dy": DY, "h0": PHYS.h0}
    params = {"gprime": (PHYS.gprime, "m s-2", "reduced gravity")}
    return write_fields(path, fields, mask, np.arange(NX) * DX, np.arange(NY) * DY, time, params, attrs,
                        time_units=units, calendar=calendar)


@pytest.mark.parametrize("units", ["seconds since 2000-01-01 00:00:00", "days since 1990-01-01"])
def test_run_metrics_written_as_cf_time_series(tmp_path, units):
    src = synthetic_run(tmp_path / "run" / "gyre_fields.nc", units=units)
    (tmp_path / "run" / "output.namelist").write_text("&NAMPHYS\n RN_RHO0=  1027.5000000000000     ,\n/\n")
    out = om.write_run_metrics(src, tmp_path / "metrics.nc", progress=True)
    with netCDF4.Dataset(out) as ds:
        assert ds.Conventions == "CF-1.8" and ds.rho0 == 1027.5  # from the run's output.namelist
        assert ds["time"].units == units and ds["time"].calendar == "standard"
        assert set(om.metric_names()) <= set(ds.variables)
        for name in om.metric_names():
            assert ds[name].units == om.metric(name).units and ds[name].long_name == om.metric(name).long_name
        psi_max = ds["psi_max"][:]
        eke = ds["eke"][:]
    u, v = from_streamfunction(double_gyre_psi(basin(), 10.0e6), np.zeros((NY, NX)), basin())
    mask = np.ones((NY, NX))
    mask[0, 0] = 0.0
    expected = om.gyre_transports(0 * u, u * mask, v * mask, om.Grid(DX, DY, mask), PHYS)[0]
    assert psi_max[0] == pytest.approx(expected, rel=1e-6)  # the file's float32 fields, its land point
    assert np.all(eke[:5] > 0) and eke[5] == 0.0  # records 0-4 share year 0; record 5 (day 365) opens year 1
    assert not list(tmp_path.glob(".metrics.nc*"))  # atomic: no temporary left


def test_read_setup_prefers_the_files_constants(tmp_path):
    """gyre writes rho0, cp and grav as global attributes: they win over output.namelist and the defaults."""
    path = tmp_path / "run" / "gyre_fields.nc"
    path.parent.mkdir()
    write_fields(path, {"ssh": np.zeros((1, NY, NX))}, np.ones((NY, NX)), np.arange(NX) * DX, np.arange(NY) * DY,
                 np.zeros(1), {"gprime": (PHYS.gprime, "m s-2", "reduced gravity")},
                 {"dx": DX, "dy": DY, "h0": PHYS.h0, "rho0": 1030.0, "cp": 4000.0, "grav": 9.8})
    (path.parent / "output.namelist").write_text("&NAMPHYS\n RN_RHO0=  1027.5000000000000     ,\n/\n")
    _, physics = om.read_setup(path)
    assert (physics.rho0, physics.cp, physics.grav) == (1030.0, 4000.0, 9.8)
    assert om.read_setup(path, rho0=1020.0)[1].rho0 == 1020.0  # an explicit value wins over the file


def test_read_setup_names_what_a_file_lacks(tmp_path):
    path = tmp_path / "plain.nc"
    write_fields(path, {"ssh": np.zeros((1, 3, 3))}, np.ones((3, 3)), np.arange(3.0), np.arange(3.0), np.zeros(1))
    with pytest.raises(ValueError, match="lacks dx, dy, h0, gprime"):
        om.read_setup(path)


# ----------------------------------------------------------------------------- against gyre's own diagnostics


@pytest.mark.skipif(not GYRE_EXE.is_file(), reason="build/bin/gyre.exe is missing (make fortran)")
def test_energy_heat_and_volume_match_gyre_diagnostics(tmp_path):
    """A 300-step 32x32 gyre with an island: KE, heat and the layer volume agree with <cn_exp>_diag.nc."""
    sys.path.insert(0, str(REPO / "gyre" / "tools"))
    sys.path.insert(0, str(REPO / "tests" / "gyre"))
    import gyrerun
    from gyre_testlib import small_cfg

    cfg = small_cfg(namrun={"nn_itend": 300, "nn_write": 50, "nn_diag": 50}, namdom={"nn_nx": 32, "nn_ny": 32})
    rd = gyrerun.make_rundir(tmp_path / "run", cfg)
    res = gyrerun.run_gyre(rd, 1, exe=GYRE_EXE, timeout=120)
    assert res.returncode == 0, res.output
    run = om.evaluate_file(rd / "gyre_fields.nc")
    diag, fields = gyrerun.read_fields(rd / "gyre_diag.nc"), gyrerun.read_fields(rd / "gyre_fields.nc")
    rows = [list(diag["step"]).index(s) for s in fields["step"]]
    grid, _ = om.read_setup(rd / "gyre_fields.nc")
    assert grid.mask.sum() < 32 * 32 and run.series["ke"][-1] > 0  # the island is there, the flow moves
    np.testing.assert_allclose(run.series["ke"], diag["ke"][rows], rtol=1e-13, atol=0)
    np.testing.assert_allclose(run.series["heat"], diag["heat"][rows], rtol=1e-13, atol=0)
    volume = run.series["thickness_mean"] * grid.mask.sum() * grid.cell_area
    np.testing.assert_allclose(volume, diag["volume"][rows], rtol=1e-13)


# ----------------------------------------------------------------------------- the equilibrium detector


TAU = 20.0  # years


def approach(years: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Annual means of 1 - exp(-t/tau) plus noise of a known std."""
    return 1.0 - np.exp(-(years + 0.5) / TAU) + noise * np.random.default_rng(seed).standard_normal(len(years))


@pytest.mark.parametrize("kwargs, field", [({"window_years": 2}, "window_years"),
                                           ({"window_years": 5.5}, "window_years"),
                                           ({"horizon_years": 0.0}, "horizon_years"), ({"factor": -1.0}, "factor"),
                                           ({"persist_years": 0}, "persist_years")])
def test_config_refuses_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        eq.EquilibriumConfig(**kwargs)


def test_annual_means_keep_complete_years_only():
    day = 86400.0
    seconds = np.arange(0, 2 * 365 + 100, 5) * day  # two years and 100 days, every 5 days
    years, means = eq.annual_means(seconds, seconds / om.YEAR)
    np.testing.assert_array_equal(years, [0, 1])
    np.testing.assert_allclose(means, [0.5 - 2.5 / 365, 1.5 - 2.5 / 365])


def test_adjustment_time_of_an_exponential_approach():
    """tau of a noisy approach within a few percent: the fit on 5-day records, the crossing on annual means."""
    seconds = np.arange(0, 8 * TAU * 365, 5) * 86400.0
    rng = np.random.default_rng(1)
    values = 3.0 + 2.0 * (1.0 - np.exp(-seconds / (TAU * om.YEAR))) + 0.01 * rng.standard_normal(len(seconds))
    assert eq.adjustment_time(seconds, values, "fit") / om.YEAR == pytest.approx(TAU, rel=0.03)
    years, annual = eq.annual_means(seconds, values)
    centres = (years + 0.5) * om.YEAR  # an exponential forgets its start: tau counts from any first value
    assert eq.adjustment_time(centres, annual) / om.YEAR == pytest.approx(TAU, rel=0.03)
    assert eq.adjustment_time(centres, -annual) / om.YEAR == pytest.approx(TAU, rel=0.03)  # a decay alike
    early = eq.adjustment_time(seconds, values) / om.YEAR  # the crossing on raw records: noise crosses first
    assert early < 0.98 * TAU
    assert math.isnan(eq.adjustment_time(seconds, np.full(len(seconds), 4.0)))  # nothing adjusts
    with pytest.raises(ValueError, match="method"):
        eq.adjustment_time(seconds, values, "median")


def test_detector_waits_several_e_folding_times():
    years = np.arange(200.0)
    annual = approach(years, noise=0.01)
    first = eq.first_equilibrated(annual)
    assert first is not None and 2 * TAU <= first <= 6 * TAU
    assert not eq.trend_test(annual[:int(1.5 * TAU)]).equilibrated  # still adjusting after 1.5 tau


def test_detector_on_noise_of_known_std():
    annual = 5.0 + 0.3 * np.random.default_rng(2).standard_normal(2000)
    long = eq.trend_test(annual, eq.EquilibriumConfig(window_years=500))
    assert long.std == pytest.approx(0.3, rel=0.1) and long.equilibrated
    short = eq.EquilibriumConfig(window_years=10, horizon_years=10.0)
    passed = [eq.trend_test(annual[:end], short).equilibrated for end in range(10, 2001)]
    assert np.mean(passed) == pytest.approx(0.89, abs=0.03)  # P(|t_8| <= 1.82): the rate the module doc gives
    twenty = eq.EquilibriumConfig(window_years=20, horizon_years=20.0)
    passed = [eq.trend_test(annual[:end], twenty).equilibrated for end in range(20, 2001)]
    assert np.mean(passed) == pytest.approx(0.98, abs=0.015)  # drift / std = 20/sqrt(665) |t|: P(|t_18| <= 2.58)
    assert all(eq.trend_test(annual[:end]).equilibrated for end in range(30, 2001))  # the default: > 0.999


def dip_then_rise(years: np.ndarray) -> np.ndarray:
    """The gyre's heat content from rest: a fall over a few years, then a rise on a 25-year time scale."""
    return 1.0 - np.exp(-years / 25.0) - 3.0 * (np.exp(-years / 25.0) - np.exp(-years / 1.5))


def test_a_dip_fools_one_window_but_not_three_in_a_row():
    """The defect of the first spin-up study: one 10-year window at the bottom of the dip passes while the
    series has most of its rise ahead; the default rule (3 passing 30-year windows in a row) waits."""
    years = np.arange(300.0)
    annual = dip_then_rise(years) + 0.002 * np.random.default_rng(4).standard_normal(len(years))
    final = annual[-50:].mean()
    one_window = eq.first_equilibrated(annual, eq.EquilibriumConfig(10, 10.0, 2.0, persist_years=1))
    assert one_window is not None and abs(annual[one_window - 1] - final) > 0.5  # early: half the range ahead
    first = eq.first_equilibrated(annual)
    assert first is not None and abs(annual[first - 1] - final) < 0.05


def test_every_row_must_pass_in_the_same_windows():
    noise = 0.3 * np.random.default_rng(5).standard_normal(100)
    drift = 0.3 * np.arange(100.0)
    assert eq.first_equilibrated(noise) is not None
    assert eq.first_equilibrated(np.stack([noise, drift])) is None


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_a_linear_drift_is_never_equilibrated(noise):
    years = np.arange(300.0)
    annual = 0.3 * years + noise * np.random.default_rng(3).standard_normal(len(years))  # 1 std per year
    assert eq.first_equilibrated(annual) is None
    verdict = eq.trend_test(annual)
    assert verdict.trend == pytest.approx(0.3, rel=0.2) and verdict.drift > 2 * verdict.std


def test_detector_needs_a_full_window():
    with pytest.raises(ValueError, match="needs 30 annual means"):
        eq.trend_test(np.zeros(29))
