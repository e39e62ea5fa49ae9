"""Physical metrics of an ocean state on the gyre's C grid, and their time series over a run (numpy only).

What an oceanographer checks after a spin-up (in the spirit of m2lines' nemo-spinup-evaluation): energy,
heat, the thermocline, the gyres' transports, the western boundary current and the jet. Every metric is a
function of a state ``fields = {"ssh", "u", "v", "temp"}``, arrays ``(..., ny, nx)`` as in
``<cn_exp>_fields.nc``, plus the grid and the physical constants, passed explicitly (``Grid``, ``Physics``).
The ML scores live in ``metrics.py``; nothing here imports torch.

Grid (gyre/README.md, NEMO indexing, 0-based here): T(j, i) at the cell centre ((i+1/2) dx, (j+1/2) dy);
u(j, i) on its east face, v(j, i) on its north face, F(j, i) at its north-east corner. The upper-layer
thickness is h = h0 + (g/g') ssh at T points; velocities are taken as 0 on faces that touch land (the coast
is a wall, whatever a generated state holds there).

Transport streamfunction: the rotational part of the layer transport, u h = -d(psi)/dy, v h = d(psi)/dx,
with psi = 0 on the whole boundary of the basin: the discrete Poisson equation lap(psi) = curl(h u) at F points,
solved exactly with sine transforms. Integrating h u northward from the southern wall would give the same psi
for a flow in balance, but it carries the divergent part (d ssh/dt != 0) along each column: during a spin-up
from rest it left 11 Sv on the northern wall for an 11 Sv gyre (32x32 gyre at 40 km, tau0 0.5 N m-2,
day 8). psi > 0 is a clockwise
circulation: ``psi_max`` is the subtropical (southern, anticyclonic) gyre's transport, ``psi_min`` the
subpolar (northern, cyclonic) gyre's, both in Sv. Islands are part of the rectangle there (their transport is
0; their own circulation constant is not imposed).

The table ``METRICS`` lists every metric (name, units, long_name, description, function); ``evaluate``
computes any subset for a sequence of states, ``evaluate_file`` for a fields file window by window, and
``write_metrics`` / ``write_run_metrics`` write them as a CF-1.8 time series (atomic write).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import netCDF4
import numpy as np

from .ncio import atomic_write

__all__ = ["Grid", "Physics", "MetricSettings", "Metric", "METRICS", "metric", "metric_names",
           "layer_thickness", "kinetic_energy", "eddy_kinetic_energy", "heat_content", "mean_temperature",
           "mean_thickness", "thickness_variance", "transport_streamfunction", "gyre_transports",
           "western_boundary_transport", "western_band_columns", "jet_latitude", "read_setup", "evaluate",
           "evaluate_file", "RunMetrics", "write_metrics", "write_run_metrics", "seconds_per_unit",
           "GRAV", "CP0", "RHO0", "SV", "YEAR", "WBC_WIDTH"]

# the constants of gyre_par.F90 (and &namphys defaults), so that the sums agree with <cn_exp>_diag.nc
GRAV = 9.81  # m s-2, grav
CP0 = 3991.86795711963  # J kg-1 K-1, rcp (TEOS-10 cp0)
RHO0 = 1025.0  # kg m-3, rn_rho0's default: the fields file does not carry it
SV = 1.0e6  # m3 s-1 per sverdrup
YEAR = 365.0 * 86400.0  # s: a model year (gyre counts time as kt * rn_dt, 365-day years)
WBC_WIDTH = 200.0e3  # m: about the inertial boundary layer sqrt(U/beta) = 220 km for U = 1 m/s, beta = 2e-11


@dataclass(frozen=True, eq=False)
class Grid:
    """The horizontal grid: spacings dx, dy (m) and the T mask (ny, nx), 1 ocean 0 land."""
    dx: float
    dy: float
    mask: np.ndarray

    def __post_init__(self):
        mask = np.asarray(self.mask, dtype=float)
        if mask.ndim != 2:
            raise ValueError(f"Grid.mask must be (ny, nx), got shape {mask.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("Grid.mask must hold 0 (land) and 1 (ocean) only")
        if not mask.any():
            raise ValueError("Grid.mask has no ocean point")
        if not (self.dx > 0 and self.dy > 0):
            raise ValueError(f"Grid.dx and Grid.dy must be > 0 m, got {self.dx!r}, {self.dy!r}")
        mask.setflags(write=False)
        object.__setattr__(self, "mask", mask)

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape

    @property
    def cell_area(self) -> float:
        """Area of a T cell (m2)."""
        return self.dx * self.dy

    @property
    def umask(self) -> np.ndarray:
        """1 on east faces between two ocean cells (the eastern wall and coasts are 0)."""
        return self.mask * np.pad(self.mask[:, 1:], ((0, 0), (0, 1)))

    @property
    def vmask(self) -> np.ndarray:
        """1 on north faces between two ocean cells (the northern wall and coasts are 0)."""
        return self.mask * np.pad(self.mask[1:, :], ((0, 1), (0, 0)))

    @property
    def y_u(self) -> np.ndarray:
        """y of the u points of each row (m), the T rows' centres."""
        return (np.arange(self.shape[0]) + 0.5) * self.dy


@dataclass(frozen=True)
class Physics:
    """The layer's constants: rest thickness h0 (m), reduced gravity gprime (m s-2), rho0, grav, cp."""
    h0: float
    gprime: float
    rho0: float = RHO0
    grav: float = GRAV
    cp: float = CP0

    def __post_init__(self):
        for name in ("h0", "gprime", "rho0", "grav", "cp"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Physics.{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def rgfac(self) -> float:
        """g/g': metres of interface displacement per metre of ssh (gyre's rgfac)."""
        return self.grav / self.gprime


@dataclass(frozen=True)
class MetricSettings:
    """Choices of the run metrics: the eddy window (s) and the western band's width (m)."""
    eke_window: float = YEAR  # eddies are departures from the mean over consecutive windows of this length
    wbc_width: float = WBC_WIDTH

    def __post_init__(self):
        if not self.eke_window > 0:
            raise ValueError(f"MetricSettings.eke_window must be > 0 s, got {self.eke_window!r}")
        if not self.wbc_width > 0:
            raise ValueError(f"MetricSettings.wbc_width must be > 0 m, got {self.wbc_width!r}")


# ----------------------------------------------------------------------------- grid operators


def _ocean_sum(values: np.ndarray) -> np.ndarray:
    return values.sum(axis=(-2, -1))


def _west(a: np.ndarray) -> np.ndarray:
    """a at i-1 (0 west of the basin: the western wall's face)."""
    return np.pad(a[..., :, :-1], [(0, 0)] * (a.ndim - 1) + [(1, 0)])


def _south(a: np.ndarray) -> np.ndarray:
    """a at j-1 (0 south of the basin: the southern wall's face)."""
    return np.pad(a[..., :-1, :], [(0, 0)] * (a.ndim - 2) + [(1, 0), (0, 0)])


def _east(a: np.ndarray) -> np.ndarray:
    return np.pad(a[..., :, 1:], [(0, 0)] * (a.ndim - 1) + [(0, 1)])


def _north(a: np.ndarray) -> np.ndarray:
    return np.pad(a[..., 1:, :], [(0, 0)] * (a.ndim - 2) + [(0, 1), (0, 0)])


def layer_thickness(ssh: np.ndarray, physics: Physics) -> np.ndarray:
    """Upper-layer thickness h = h0 + (g/g') ssh at T points (m)."""
    return physics.h0 + physics.rgfac * np.asarray(ssh, dtype=float)


def _layer_ke_density(h: np.ndarray, u: np.ndarray, v: np.ndarray, grid: Grid) -> np.ndarray:
    """h |u|^2 / 2 at T points (m3 s-2), the four faces averaged as gyre_diag does."""
    u = np.asarray(u, dtype=float) * grid.umask
    v = np.asarray(v, dtype=float) * grid.vmask
    return 0.25 * h * (_west(u) ** 2 + u ** 2 + _south(v) ** 2 + v ** 2) * grid.mask


def _transports(ssh, u, v, grid: Grid, physics: Physics) -> tuple[np.ndarray, np.ndarray]:
    """Layer thickness fluxes h u, h v on u and v points (m2 s-1), h averaged onto the faces as in gyre_ssh."""
    h = layer_thickness(ssh, physics)
    hu = 0.5 * (h + _east(h)) * np.asarray(u, dtype=float) * grid.umask
    hv = 0.5 * (h + _north(h)) * np.asarray(v, dtype=float) * grid.vmask
    return hu, hv


# ----------------------------------------------------------------------------- metrics of a state


def kinetic_energy(ssh, u, v, grid: Grid, physics: Physics) -> np.ndarray:
    """Kinetic energy of the upper layer, rho0 sum(h |u|^2 / 2) dx dy (J): gyre_diag's ``ke``."""
    h = layer_thickness(ssh, physics)
    return physics.rho0 * grid.cell_area * _ocean_sum(_layer_ke_density(h, u, v, grid))


def eddy_kinetic_energy(ssh, u, v, grid: Grid, physics: Physics) -> np.ndarray:
    """Kinetic energy of the departures from the time mean of the states given, (T, ny, nx) -> (T,) (J).

    The velocities' mean over the leading (time) axis is the mean flow; each state's eddy energy is the
    kinetic energy of u - mean(u), v - mean(v) with its own thickness, so that KE = EKE for a flow at rest
    on average and EKE = 0 for a steady one.
    """
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if u.ndim != 3:
        raise ValueError(f"eddy_kinetic_energy needs states (time, ny, nx), got shape {u.shape}")
    return kinetic_energy(ssh, u - u.mean(axis=0), v - v.mean(axis=0), grid, physics)


def heat_content(ssh, temp, grid: Grid, physics: Physics) -> np.ndarray:
    """Heat content of the upper layer, rho0 cp sum(h T) dx dy (J, T in degC): gyre_diag's ``heat``."""
    h = layer_thickness(ssh, physics)
    return physics.rho0 * physics.cp * grid.cell_area * _ocean_sum(h * np.asarray(temp, dtype=float) * grid.mask)


def mean_temperature(ssh, temp, grid: Grid, physics: Physics) -> np.ndarray:
    """Volume-weighted mean temperature of the layer, sum(h T) / sum(h) over ocean points (degC)."""
    # the heat content divided by rho0 cp V: the layer's temperature once mixed, which is what heat measures
    h = layer_thickness(ssh, physics) * grid.mask
    return _ocean_sum(h * np.asarray(temp, dtype=float)) / _ocean_sum(h)


def mean_thickness(ssh, grid: Grid, physics: Physics) -> np.ndarray:
    """Area-mean upper-layer thickness over ocean points (m); changes only where the outcrop guard adds water."""
    return _ocean_sum(layer_thickness(ssh, physics) * grid.mask) / grid.mask.sum()


def thickness_variance(ssh, grid: Grid, physics: Physics) -> np.ndarray:
    """Spatial variance of the upper-layer thickness over ocean points (m2): the thermocline's tilt."""
    h = layer_thickness(ssh, physics)
    anomaly = (h - mean_thickness(ssh, grid, physics)[..., None, None]) * grid.mask
    return _ocean_sum(anomaly ** 2) / grid.mask.sum()


def transport_streamfunction(ssh, u, v, grid: Grid, physics: Physics) -> np.ndarray:
    """Streamfunction of the rotational layer transport at F points, psi = 0 on every wall (m3 s-1)."""
    hu, hv = _transports(ssh, u, v, grid, physics)
    # curl(h u) at the interior F points (the last row and column of F points lie on the walls)
    curl = (_east(hv) - hv)[..., :-1, :-1] / grid.dx - (_north(hu) - hu)[..., :-1, :-1] / grid.dy
    sy, ly = _sine_basis(grid.shape[0] - 1, grid.dy)
    sx, lx = _sine_basis(grid.shape[1] - 1, grid.dx)
    psi = sy @ ((sy @ curl @ sx) / (ly[:, None] + lx[None, :])) @ sx
    return np.pad(psi, [(0, 0)] * (psi.ndim - 2) + [(0, 1), (0, 1)])


def _sine_basis(n: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal DST-I matrix of n points and the eigenvalues of the Dirichlet second difference (m-2)."""
    k = np.arange(1, n + 1)
    basis = np.sqrt(2.0 / (n + 1)) * np.sin(np.pi * np.outer(k, k) / (n + 1))
    return basis, -4.0 / spacing ** 2 * np.sin(0.5 * np.pi * k / (n + 1)) ** 2


def gyre_transports(ssh, u, v, grid: Grid, physics: Physics) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) of the transport streamfunction (Sv): the subtropical and the subpolar gyre."""
    psi = transport_streamfunction(ssh, u, v, grid, physics)
    return psi.max(axis=(-2, -1)) / SV, psi.min(axis=(-2, -1)) / SV


def western_band_columns(grid: Grid, width: float) -> int:
    """Number of T columns from the western wall in a band of ``width`` m (at least one)."""
    return max(1, int(round(width / grid.dx)))


def western_boundary_transport(ssh, v, grid: Grid, physics: Physics, width: float = WBC_WIDTH) -> np.ndarray:
    """Largest northward transport through a row of the western band (width m from the western wall) (Sv).

    The band holds the first round(width/dx) columns; the transport of each v row is sum h v dx over them,
    and the metric is its maximum over the rows: the subtropical gyre's boundary current where it is
    strongest, wherever the separation sits (a fixed latitude would see the jet move across it).
    """
    _, hv = _transports(ssh, np.zeros_like(np.asarray(v, dtype=float)), v, grid, physics)
    band = hv[..., :, :western_band_columns(grid, width)].sum(axis=-1) * grid.dx
    return band.max(axis=-1) / SV


def jet_latitude(u, grid: Grid) -> np.ndarray:
    """y of the maximum of the zonal-mean eastward velocity (m from the southern wall).

    The separated jet is the strongest eastward flow between the gyres, so the signed maximum picks it out and
    not the westward flanks of the recirculations (|u| could) nor the boundary currents (meridional). The
    zero of psi between the gyres was not chosen: with eddies psi has several zeros across the basin, and
    where the recirculations differ in strength the line between the gyres need not run under the jet. The
    row of the maximum is refined by a parabola through it and its two neighbours, so the position moves
    continuously rather than by whole rows. A state with no eastward zonal-mean flow (at rest) has no jet: NaN.
    """
    u = np.asarray(u, dtype=float)
    points = grid.umask.sum(axis=-1)
    profile = np.where(points > 0, (u * grid.umask).sum(axis=-1) / np.maximum(points, 1), -np.inf)
    flat = profile.reshape(-1, grid.shape[0])
    k = flat.argmax(axis=-1)
    around = np.pad(flat, ((0, 0), (1, 1)), constant_values=-np.inf)  # rows k-1, k, k+1 are k, k+1, k+2 here
    a, b, c = (np.take_along_axis(around, (k + d)[:, None], axis=-1)[:, 0] for d in (0, 1, 2))
    curvature = a - 2.0 * b + c
    fit = np.isfinite(curvature) & (curvature < 0)
    offset = np.where(fit, 0.5 * (a - c) / np.where(fit, curvature, -1.0), 0.0)
    y = (k + np.clip(offset, -0.5, 0.5) + 0.5) * grid.dy
    return np.where(b > 0, y, np.nan).reshape(profile.shape[:-1])


# ----------------------------------------------------------------------------- the table


Fields = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One run metric: fn(fields (T, ny, nx) of one eddy window, grid, physics, settings) -> (T,)."""
    name: str
    units: str
    long_name: str
    description: str
    function: Callable[[Fields, Grid, Physics, MetricSettings], np.ndarray] = field(repr=False)
    inputs: tuple[str, ...] = ("ssh", "u", "v", "temp")


METRICS: tuple[Metric, ...] = (
    Metric("ke", "J", "kinetic energy of the upper layer",
           "rho0 sum(h |u|^2/2) dx dy over ocean T points, the four faces averaged (gyre_diag's ke)",
           lambda f, g, p, s: kinetic_energy(f["ssh"], f["u"], f["v"], g, p), ("ssh", "u", "v")),
    Metric("eke", "J", "eddy kinetic energy of the upper layer",
           "kinetic energy of the departure of u, v from their mean over the record's eddy window "
           "(consecutive windows of eke_window seconds of model time)",
           lambda f, g, p, s: eddy_kinetic_energy(f["ssh"], f["u"], f["v"], g, p), ("ssh", "u", "v")),
    Metric("heat", "J", "heat content of the upper layer",
           "rho0 cp sum(h T) dx dy over ocean T points, T in degC (gyre_diag's heat)",
           lambda f, g, p, s: heat_content(f["ssh"], f["temp"], g, p), ("ssh", "temp")),
    Metric("mean_temp", "degC", "volume-weighted mean temperature of the upper layer",
           "sum(h T) / sum(h) over ocean T points", lambda f, g, p, s: mean_temperature(f["ssh"], f["temp"], g, p),
           ("ssh", "temp")),
    Metric("thickness_mean", "m", "mean upper-layer thickness",
           "area mean of h = h0 + (g/g') ssh over ocean T points", lambda f, g, p, s: mean_thickness(f["ssh"], g, p),
           ("ssh",)),
    Metric("thickness_var", "m2", "spatial variance of the upper-layer thickness (thermocline tilt)",
           "area variance of h over ocean T points", lambda f, g, p, s: thickness_variance(f["ssh"], g, p),
           ("ssh",)),
    Metric("psi_max", "Sv", "subtropical gyre transport (maximum of the transport streamfunction)",
           "max of psi, lap(psi) = curl(h u) with psi = 0 on the walls (psi > 0 clockwise)",
           lambda f, g, p, s: gyre_transports(f["ssh"], f["u"], f["v"], g, p)[0], ("ssh", "u", "v")),
    Metric("psi_min", "Sv", "subpolar gyre transport (minimum of the transport streamfunction)",
           "min of psi, lap(psi) = curl(h u) with psi = 0 on the walls (psi < 0 anticlockwise)",
           lambda f, g, p, s: gyre_transports(f["ssh"], f["u"], f["v"], g, p)[1], ("ssh", "u", "v")),
    Metric("wbc_transport", "Sv", "western boundary current transport",
           "largest northward transport sum h v dx through a row of the western band of wbc_width metres",
           lambda f, g, p, s: western_boundary_transport(f["ssh"], f["v"], g, p, s.wbc_width), ("ssh", "v")),
    Metric("jet_latitude", "m", "latitude of the eastward jet (y from the southern wall)",
           "y of the maximum of the zonal-mean u, refined by a parabola through the three rows around it",
           lambda f, g, p, s: jet_latitude(f["u"], g), ("u",)),
)


def metric_names() -> list[str]:
    """Names of every metric of the table, in table order."""
    return [m.name for m in METRICS]


def metric(name: str) -> Metric:
    """The table entry of ``name``; an unknown name raises ValueError naming the known ones."""
    for m in METRICS:
        if m.name == name:
            return m
    raise ValueError(f"unknown ocean metric {name!r}; known: {', '.join(metric_names())}")


def _selected(names: Sequence[str] | None) -> list[Metric]:
    return [metric(n) for n in (metric_names() if names is None else names)]


def _window_labels(seconds: np.ndarray, window: float) -> np.ndarray:
    """Index of each record's eddy window: consecutive windows of ``window`` s counted from the time origin."""
    # a tiny tolerance so a record written exactly at a window's end (kt*dt in float) opens the next one
    return np.floor(np.asarray(seconds, dtype=float) / window + 1e-9).astype(np.int64)


def evaluate(fields: Fields, seconds, grid: Grid, physics: Physics, names: Sequence[str] | None = None,
             settings: MetricSettings = MetricSettings()) -> dict[str, np.ndarray]:
    """Every metric of ``names`` (default all) for states (T, ny, nx) at times ``seconds`` -> {name: (T,)}."""
    chosen = _selected(names)
    seconds = np.atleast_1d(np.asarray(seconds, dtype=float))
    labels = _window_labels(seconds, settings.eke_window)
    out = {m.name: np.empty(len(seconds)) for m in chosen}
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        window = {k: np.asarray(fields[k])[rows] for k in _inputs(chosen)}
        for m in chosen:
            out[m.name][rows] = m.function(window, grid, physics, settings)
    return out


def _inputs(chosen: list[Metric]) -> list[str]:
    return sorted({k for m in chosen for k in m.inputs})


# ----------------------------------------------------------------------------- files


_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def seconds_per_unit(units: str) -> float:
    """Seconds per unit of a CF time axis '<unit>s since <date>' (seconds, minutes, hours, days)."""
    m = re.match(r"\s*(second|minute|hour|day)s?\s+since\s", units or "")
    if not m:
        raise ValueError(f"time units {units!r}: expected '<seconds|minutes|hours|days> since <date>'")
    return _SECONDS[m.group(1)]


def _namelist_value(path: Path, name: str) -> float | None:
    """A real from gyre's output.namelist (the values the run used), or None."""
    if not path.is_file():
        return None
    m = re.search(rf"^\s*{name}\s*=\s*([-+0-9.eEdD]+)", path.read_text(), re.IGNORECASE | re.MULTILINE)
    return float(m.group(1).replace("d", "e").replace("D", "E")) if m else None


def read_setup(path: str | Path, rho0: float | None = None) -> tuple[Grid, Physics]:
    """Grid and Physics of a gyre ``*_fields.nc``: dx, dy, h0 (attributes), gprime and mask (variables).

    rho0 is taken from ``rho0``, else from the file's global attribute ``rho0`` (gyre writes it, with ``cp``
    and ``grav``), else from the run's ``output.namelist`` beside the file (``rn_rho0``: files of older
    builds), else gyre's default; cp and grav from the attributes, else gyre's constants.
    """
    path = Path(path)
    with netCDF4.Dataset(path) as ds:
        missing = [a for a in ("dx", "dy", "h0") if a not in ds.ncattrs()]
        missing += [v for v in ("gprime", "mask") if v not in ds.variables]
        if missing:
            raise ValueError(f"{path}: not a gyre fields file, it lacks {', '.join(missing)}")
        grid = Grid(float(ds.dx), float(ds.dy), np.asarray(ds["mask"][...], dtype=float))
        gprime, h0 = float(ds["gprime"][...]), float(ds.h0)
        attrs = {a: float(ds.getncattr(a)) for a in ("rho0", "cp", "grav") if a in ds.ncattrs()}
    if rho0 is None:
        rho0 = attrs.get("rho0") or _namelist_value(path.parent / "output.namelist", "rn_rho0") or RHO0
    return grid, Physics(h0=h0, gprime=gprime, rho0=rho0, grav=attrs.get("grav", GRAV), cp=attrs.get("cp", CP0))


@dataclass
class RunMetrics:
    """Time series of a run: time in the source's units and calendar, {name: (T,)}, and what made them."""
    time: np.ndarray
    time_units: str
    calendar: str
    series: dict[str, np.ndarray]
    attrs: dict = field(default_factory=dict)


def evaluate_file(path: str | Path, names: Sequence[str] | None = None, settings: MetricSettings = MetricSettings(),
                  rho0: float | None = None, progress: bool = False) -> RunMetrics:
    """Every metric of ``names`` for each record of a gyre fields file, read one eddy window at a time."""
    path = Path(path)
    grid, physics = read_setup(path, rho0)
    chosen = _selected(names)
    with netCDF4.Dataset(path) as ds:
        tvar = ds["time"]
        time = np.ma.filled(tvar[:].astype(float), np.nan)
        units, calendar = tvar.units, getattr(tvar, "calendar", "standard")
        labels = _window_labels(time * seconds_per_unit(units), settings.eke_window)
        series = {m.name: np.empty(len(time)) for m in chosen}
        windows = np.unique(labels)
        for label in _progress(windows, progress, path.name):
            rows = np.flatnonzero(labels == label)
            # land holds 0 in gyre's convention; files written through ncio mask it with a fill value instead
            fields = {k: np.ma.filled(ds[k][rows[0]:rows[-1] + 1].astype(float), 0.0) for k in _inputs(chosen)}
            for m in chosen:
                series[m.name][rows] = m.function(fields, grid, physics, settings)
    attrs = {"source_file": str(path), "dx": grid.dx, "dy": grid.dy, "h0": physics.h0, "gprime": physics.gprime,
             "rho0": physics.rho0, "grav": physics.grav, "cp": physics.cp, "eke_window_seconds": settings.eke_window,
             "wbc_width_m": western_band_columns(grid, settings.wbc_width) * grid.dx}
    return RunMetrics(time, units, calendar, series, attrs)


def _progress(items, show: bool, label: str):
    if not show:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc=f"metrics {label}", unit="window")


def write_metrics(path: str | Path, run: RunMetrics, title: str = "oceanbridge: physical metrics of a run") -> Path:
    """Write every series of ``run`` as a CF-1.8 time series (one variable per metric), atomically."""
    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", "title": title, "featureType": "timeSeries", **run.attrs})
            ds.createDimension("time", None)
            t = ds.createVariable("time", "f8", ("time",))
            t.setncatts({"standard_name": "time", "units": run.time_units, "calendar": run.calendar, "axis": "T"})
            t[:] = run.time
            for name, values in run.series.items():
                m = metric(name)
                var = ds.createVariable(name, "f8", ("time",))
                var.setncatts({"units": m.units, "long_name": m.long_name, "comment": m.description})
                var[:] = values
    return atomic_write(path, write)


def write_run_metrics(fields_path: str | Path, out_path: str | Path, names: Sequence[str] | None = None,
                      settings: MetricSettings = MetricSettings(), rho0: float | None = None,
                      progress: bool = False) -> Path:
    """Metrics time series of a gyre fields file, written to ``out_path`` as CF netCDF."""
    return write_metrics(out_path, evaluate_file(fields_path, names, settings, rho0, progress))

