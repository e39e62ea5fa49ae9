"""``EquilibriumWatch``: which members have finished their spin-up, decided on the states they stream.

The ``generate`` mode learns p(x_eq | θ) from equilibrated states only.  For every member the watch
computes the chosen physical metrics of each received state (``models.ocean_metrics``, the gyre's
layer), averages them over model years, and runs the equilibrium detector (``models.equilibrium``:
over the last ``window_years`` annual means, |trend| x horizon <= factor x interannual std) each
time a year completes.  A member qualifies the first time every metric has passed in
``persist_years`` consecutive windows, and stays qualified: its later states are samples of its
equilibrium.  The annual means and the year each member qualified go to ``equilibrium.nc`` (CF-1.8).

The metrics need the whole grid (the streamfunction is a global solve), so the mode runs on one
worker rank; the per-state metrics cost a few FFTs of the grid.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import netCDF4
import numpy as np

from models.equilibrium import EquilibriumConfig, first_equilibrated, trend_test
from models.ncio import CALENDAR, TIME_UNITS, atomic_write
from models.ocean_metrics import YEAR, Grid, Physics, evaluate, metric

log = logging.getLogger(__name__)
STATE_NAMES = {"sst": "temp"}  # a channel name -> the metrics' field name (gyre's alias)
PER_STATE_ONLY = ("eke",)  # needs a window of states around each one: not a per-state metric


def gyre_setup(cfg, mask: np.ndarray) -> tuple[Grid, dict[str, Physics]]:
    """The grid (rn_dx, rn_dy, ``mask``) and each member's layer constants, read from the namelists the members
    run with (namelist_cfg over namelist_ref): θ may set any of them."""
    from bridge.config.namelist import read_value

    def value(k: int, group: str, var: str) -> float:
        for path in (cfg.member_namelist(k), cfg.ocean.namelist_ref):
            found = read_value(path, group, var) if path is not None and Path(path).is_file() else None
            if found is not None:
                return float(found)
        raise ValueError(f"&{group} {var} is in neither {cfg.member_namelist(k)} nor {cfg.ocean.namelist_ref}")

    grid = Grid(value(1, "namdom", "rn_dx"), value(1, "namdom", "rn_dy"), mask)
    physics = {m: Physics(h0=value(k, "namphys", "rn_h0"), gprime=value(k, "namphys", "rn_gprime"),
                          rho0=value(k, "namphys", "rn_rho0")) for k, m in enumerate(cfg.components, start=1)}
    return grid, physics


def check_metric_names(names: tuple[str, ...], channels: tuple[str, ...]) -> None:
    """Every name is a per-state metric of the table whose inputs the streamed channels hold; ValueError if not."""
    have = {STATE_NAMES.get(c, c) for c in channels}
    for name in names:
        m = metric(name)  # unknown names raise, listing the known ones
        if name in PER_STATE_ONLY:
            raise ValueError(f"metric '{name}' needs a window of states, not one: choose another")
        missing = [k for k in m.inputs if k not in have]
        if missing:
            raise ValueError(f"metric '{name}' needs the field(s) {missing}, which the ocean does not send "
                             f"(state fields: {list(channels)})")


@dataclass
class MemberRecord:
    """One member's annual means so far, the year being summed, and the year it qualified (None: not yet)."""
    years: list[int] = field(default_factory=list)
    means: list[list[float]] = field(default_factory=list)  # per year, one value per metric
    year: int | None = None  # the year being summed
    sums: list[float] = field(default_factory=list)
    count: int = 0
    qualified: int | None = None  # first model year whose states count as equilibrated


class EquilibriumWatch:
    def __init__(self, members: tuple[str, ...], names: tuple[str, ...], config: EquilibriumConfig, grid: Grid,
                 physics: dict[str, Physics], channels: tuple[str, ...], dt: float):
        check_metric_names(names, channels)
        self.members, self.names, self.config, self.grid = members, names, config, grid
        self.physics, self.channels, self.dt = physics, channels, dt
        self.records = {m: MemberRecord() for m in members}

    def add(self, member: str, kt: int, state: np.ndarray) -> bool:
        """Account the state of ``member`` at step ``kt``; whether the member is equilibrated (this state counts)."""
        rec = self.records[member]
        year = math.floor(kt * self.dt / YEAR + 1e-9)
        if rec.year is not None and year != rec.year:
            self._close_year(member, rec)
        if rec.year != year:
            rec.year, rec.sums, rec.count = year, [0.0] * len(self.names), 0
        values = self.metrics(member, kt, state)
        rec.sums = [s + v for s, v in zip(rec.sums, values)]
        rec.count += 1
        return rec.qualified is not None and year >= rec.qualified

    def metrics(self, member: str, kt: int, state: np.ndarray) -> list[float]:
        """The chosen metrics of one (C, ny, nx) state of ``member``."""
        fields = {STATE_NAMES.get(c, c): state[k][None] for k, c in enumerate(self.channels)}
        out = evaluate(fields, [kt * self.dt], self.grid, self.physics[member], self.names)
        return [float(out[n][0]) for n in self.names]

    def _close_year(self, member: str, rec: MemberRecord) -> None:
        assert rec.year is not None  # observe closes a year it began
        rec.years.append(rec.year)
        rec.means.append([s / rec.count for s in rec.sums])
        if rec.qualified is not None or len(rec.means) < self.config.window_years:
            return
        series = np.asarray(rec.means).T  # one row per metric
        if first_equilibrated(series, self.config) is not None:  # this year's window completes the run of passes
            rec.qualified = rec.year + 1
            verdicts = [trend_test(row, self.config) for row in series]
            detail = ", ".join(f"{n}: drift {v.drift:.3g} <= {self.config.factor:g} x std {v.std:.3g}"
                               for n, v in zip(self.names, verdicts))
            log.info("member '%s' equilibrated after model year %d: its states from year %d on join the "
                     "generator's training set (%s)", member, rec.year, rec.qualified, detail)

    def qualified(self) -> dict[str, int | None]:
        return {m: r.qualified for m, r in self.records.items()}

    # -- checkpoint ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"names": list(self.names), "records": {m: vars(r).copy() for m, r in self.records.items()}}

    def load_state_dict(self, state: dict) -> None:
        if list(state["names"]) != list(self.names):
            raise ValueError(f"the checkpoint's equilibrium metrics {state['names']} are not [worker.generate] "
                             f"metrics {list(self.names)}: use --fresh, or the same metrics")
        for m, r in state["records"].items():
            if m in self.records:
                self.records[m] = MemberRecord(**r)

    # -- output ----------------------------------------------------------------------
    def write(self, path: Path) -> Path:
        """``equilibrium.nc``: annual means of every metric per member, and the year each member qualified."""
        years = sorted({y for r in self.records.values() for y in r.years})

        def write(tmp: str) -> None:
            with netCDF4.Dataset(tmp, "w") as ds:
                ds.setncatts({"Conventions": "CF-1.8", "title": "oceanbridge equilibrium detector: annual means",
                              "source": "oceanbridge worker (generate mode)",
                              "window_years": self.config.window_years, "horizon_years": self.config.horizon_years,
                              "factor": self.config.factor})
                self._axes(ds, years)
                for k, name in enumerate(self.names):
                    self._metric(ds, name, k, years)
                q = ds.createVariable("qualified_year", "i4", ("member",), fill_value=False)
                q.setncatts({"long_name": "first model year whose states count as equilibrated (-1: never)",
                             "units": "1"})
                q[:] = [-1 if r.qualified is None else r.qualified for r in self.records.values()]
        return atomic_write(path, write)

    def _axes(self, ds, years: list[int]) -> None:
        ds.createDimension("time", len(years))
        ds.createDimension("member", len(self.members))
        t = ds.createVariable("time", "f8", ("time",))
        t.setncatts({"standard_name": "time", "long_name": "middle of the model year", "units": TIME_UNITS,
                     "calendar": CALENDAR})
        t[:] = [(y + 0.5) * YEAR for y in years]
        m = ds.createVariable("member", str, ("member",))
        m.long_name = "ocean member (component name)"
        for i, name in enumerate(self.members):
            m[i] = name

    def _metric(self, ds, name: str, k: int, years: list[int]) -> None:
        table = metric(name)
        v = ds.createVariable(name, "f8", ("member", "time"), fill_value=np.nan)
        v.setncatts({"units": table.units, "long_name": f"annual mean of the {table.long_name}",
                     "cell_methods": "time: mean"})
        for i, rec in enumerate(self.records.values()):
            row = np.full(len(years), np.nan)
            for y, means in zip(rec.years, rec.means):
                row[years.index(y)] = means[k]
            v[i, :] = row
