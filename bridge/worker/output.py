"""The worker's netCDF products (CF names and units, atomic writes).

- ``ensemble.nc`` (mode ``ensemble``): at every state step, the mean, standard
  deviation and quantiles over the K members of each received field, leaving out
  a member lost during the run and a rejected (NaN) state; ``members`` counts
  the members each step's statistics are over.
- ``emulated.nc`` (mode ``emulate``): per member and emulator step, the state
  the worker sent, the ocean's own step from the same start (the truth of that
  step) and, with several samples, the mean and spread of the diffusion samples and
  their fair CRPS against the ocean's step at each point.

With several worker ranks each rank writes its own tile (``_r<rank>`` before
the suffix, tile offsets in the global attributes): no field is gathered.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import netCDF4
import numpy as np

from models.ncio import CALENDAR, TIME_UNITS, atomic_write, cf_attrs


def rank_path(path: Path, rank: int, size: int) -> Path:
    return path if size == 1 else path.with_name(f"{path.stem}_r{rank}{path.suffix}")


def _grid(ds, box, dx: float, dy: float, mask: np.ndarray, times: np.ndarray) -> None:
    ds.createDimension("time", None)
    ds.createDimension("y", box.nj)
    ds.createDimension("x", box.ni)
    for name, n, off, d, axis in (("x", box.ni, box.i0, dx, "X"), ("y", box.nj, box.j0, dy, "Y")):
        var = ds.createVariable(name, "f8", (name,))
        var.setncatts({"units": "m", "axis": axis, "standard_name": f"projection_{name}_coordinate"})
        var[:] = (off + np.arange(n) + 0.5) * d
    m = ds.createVariable("mask", "i1", ("y", "x"))
    m.setncatts({"long_name": "land-sea mask", "flag_values": np.array([0, 1], "i1"), "flag_meanings": "land ocean"})
    m[:] = mask
    t = ds.createVariable("time", "f8", ("time",))
    t.setncatts({"units": TIME_UNITS, "calendar": CALENDAR, "standard_name": "time", "axis": "T"})
    t[:] = times


def _var(ds, name: str, dims: tuple[str, ...], values: np.ndarray, attrs: dict, dtype: str = "f4") -> None:
    var = ds.createVariable(name, dtype, dims, zlib=True)
    var.setncatts(attrs)
    var[:] = values


def _header(ds, box, title: str, steps: np.ndarray) -> None:
    ds.setncatts({"Conventions": "CF-1.8", "title": title, "source": "oceanbridge worker",
                  "tile_i0": box.i0, "tile_j0": box.j0, "nx_global": box.nx, "ny_global": box.ny})
    s = ds.createVariable("step", "i8", ("time",))
    s.setncatts({"long_name": "ocean time step index"})
    s[:] = steps


def write_ensemble_stats(path: Path, channels, steps, states: np.ndarray, quantiles, box, dx, dy, dt,
                         mask: np.ndarray) -> Path:
    """``states`` (T, K, C, nj, ni): statistics over the member axis K."""
    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            _grid(ds, box, dx, dy, mask, np.asarray(steps, float) * dt)
            _header(ds, box, f"oceanbridge ensemble statistics over {states.shape[1]} members", np.asarray(steps))
            ds.createDimension("quantile", len(quantiles))
            q = ds.createVariable("quantile", "f8", ("quantile",))
            q.setncatts({"long_name": "quantile level", "units": "1"})
            q[:] = quantiles
            for c, name in enumerate(channels):
                a = cf_attrs(name)
                cf = {key: a[key] for key in ("standard_name", "units") if key in a}
                mean, std, quant = _member_statistics(states[:, :, c], quantiles)
                _var(ds, f"{name}_mean", ("time", "y", "x"), mean,
                     {**cf, "long_name": f"ensemble mean of {a['long_name']}", "cell_methods": "realization: mean"})
                _var(ds, f"{name}_std", ("time", "y", "x"), std,
                     {"units": a["units"], "long_name": f"ensemble standard deviation of {a['long_name']}",
                      "cell_methods": "realization: standard_deviation"})
                _var(ds, f"{name}_quantile", ("quantile", "time", "y", "x"), quant,
                     {**cf, "long_name": f"ensemble quantiles of {a['long_name']}",
                      "cell_methods": "realization: quantile"})
            members = np.isfinite(states).all(axis=(2, 3, 4)).sum(1)
            _var(ds, "members", ("time",), members,
                 {"long_name": "members with a valid state (lost or rejected ones are left out)", "units": "1"}, "i4")
    return atomic_write(path, write)


def _member_statistics(x: np.ndarray, quantiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation (0 where fewer than 2 members) and quantiles over axis 1 of ``x`` (T, K, ...),
    leaving out NaN: a member lost during the run, or a rejected state."""
    count = np.isfinite(x).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer there
        std = np.where(count > 1, np.nanstd(x, axis=1, ddof=1), 0.0)
        return np.nanmean(x, axis=1), std, _nan_quantile(x, quantiles, count)


def _nan_quantile(x: np.ndarray, quantiles, count: np.ndarray) -> np.ndarray:
    """``np.nanquantile(x, quantiles, axis=1)`` (linear interpolation), vectorized: numpy's loops over every
    1-D slice in Python (minutes for a long run's ensemble).  Sorting puts the NaNs last; each slice then
    interpolates between its ``count`` valid members."""
    if count.min() == x.shape[1]:
        return np.quantile(x, quantiles, axis=1)
    ordered = np.sort(x, axis=1)
    out = []
    for q in quantiles:
        pos = q * np.maximum(count - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        a = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
        b = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
        out.append(np.where(count > 0, a + (pos - lo) * (b - a), np.nan))
    return np.stack(out)


EMULATION_VARIABLES = {  # suffix -> (long name, netCDF type); the first two are compared bit for bit in tests
    "emulated": ("{} sent by the worker (the first diffusion sample)", "f8"),
    "ocean": ("{} after the ocean's own step from the same start", "f8"),
    "start": ("{} the step started from", "f4"),
    "mean": ("mean of the diffusion samples of {}", "f4"),
    "spread": ("standard deviation of the diffusion samples of {}", "f4"),
    "crps": ("fair CRPS of the diffusion samples of {} against the ocean's own step", "f4"),
    "initial": ("{} generated for the start of the run (spin-up mode)", "f8"),
}


def write_emulation(path: Path, channels, members, steps, arrays: dict[str, np.ndarray], box, dx, dy, dt,
                    mask: np.ndarray) -> Path:
    """``arrays``: suffix of EMULATION_VARIABLES -> (K, T, C, nj, ni)."""
    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            _grid(ds, box, dx, dy, mask, np.asarray(steps, float) * dt)
            _header(ds, box, "oceanbridge emulated states and the ocean's own steps", np.asarray(steps))
            ds.setncattr("members", " ".join(members))
            ds.createDimension("member", len(members))
            dims = ("member", "time", "y", "x")
            for c, name in enumerate(channels):
                a = cf_attrs(name)
                cf = {key: a[key] for key in ("standard_name", "units") if key in a}
                for suffix, values in arrays.items():
                    long_name, dtype = EMULATION_VARIABLES[suffix]
                    attrs = {"units": a["units"]} if suffix in ("spread", "crps") else dict(cf)
                    _var(ds, f"{name}_{suffix}", dims, values[:, :, c],
                         {**attrs, "long_name": long_name.format(a["long_name"])}, dtype)
    return atomic_write(path, write)
