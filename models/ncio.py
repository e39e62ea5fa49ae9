"""netCDF output with CF-style metadata, and atomic file writes.

Every file is written to a temporary name in the target directory and moved into
place with ``os.replace``: a crash mid-write leaves the previous file intact.  The
temporary name, ``.<name>.<host>.<pid>.<random>.tmp``, says which process wrote it,
so the next write of the same target removes those of dead processes (a SIGKILL
mid-write cannot clean up after itself).  A finished file gets the mode an ordinary
``open`` would give it (0666 less the umask), not mkstemp's 0600.  A failed write
raises ``WriteError`` naming the target and the cause ("no space left on device"
when the disk is full), after removing its temporary file.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Callable

import netCDF4
import numpy as np

__all__ = ["CF_VARIABLES", "TIME_UNITS", "CALENDAR", "FILL_VALUE", "WriteError", "atomic_write", "cf_attrs",
           "write_fields", "write_ensemble"]

TIME_UNITS = "seconds since 2000-01-01 00:00:00"
CALENDAR = "noleap"
FILL_VALUE = 1.0e20  # NEMO/CMIP missing value; netCDF readers mask it

# CF metadata of the variables the ocean models send (gyre/README.md, Outputs)
CF_VARIABLES: dict[str, dict[str, str]] = {
    "ssh": {"standard_name": "sea_surface_height_above_geoid", "units": "m", "long_name": "sea surface height"},
    "u": {"standard_name": "sea_water_x_velocity", "units": "m s-1", "long_name": "zonal velocity"},
    "v": {"standard_name": "sea_water_y_velocity", "units": "m s-1", "long_name": "meridional velocity"},
    "temp": {"standard_name": "sea_surface_temperature", "units": "degC", "long_name": "sea surface temperature"},
    "sst": {"standard_name": "sea_surface_temperature", "units": "degC", "long_name": "sea surface temperature"},
    "sss": {"standard_name": "sea_surface_salinity", "units": "1e-3", "long_name": "sea surface salinity"},
}


class WriteError(OSError):
    """An atomic write failed; the message names the target and the cause, and the previous file is intact.
    ``errno`` is the writer's when it gave one (ENOSPC...), ``filename`` the target."""

    def __init__(self, message: str, code: int | None = None, filename: str | None = None):
        super().__init__(message)
        self.errno, self.filename = code, filename

    def __str__(self) -> str:
        return self.args[0]


LOW_SPACE = 1 << 20  # bytes: a write that failed with less free space than this is put down to a full disk
_HOST = socket.gethostname().split(".")[0]  # pids are per host: a shared run folder may hold others' temps


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` (its result is ignored) then move the finished file onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # after write: a writer may recreate the file
        with open(tmp, "rb") as f:  # the data must be on disk before the rename is
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as err:
        cause = _failure_cause(err, path.parent)  # before the unlink: the temp's blocks show a full disk as full
        _unlink(tmp)
        kept = f"; the previous {path.name} is intact" if path.exists() else ""
        raise WriteError(f"cannot write {path}: {cause}{kept}", getattr(err, "errno", None), str(path)) from err
    except BaseException:  # KeyboardInterrupt, SystemExit: clean up and let them through unchanged
        _unlink(tmp)
        raise
    return path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}."


def _remove_stale_temps(path: Path) -> None:
    """Remove the temporary files of ``path`` left by dead processes of this host (killed mid-write)."""
    pattern = re.compile(re.escape(_temp_prefix(path)) + r"(\d+)\.[^.]*\.tmp")
    for tmp in path.parent.glob(glob.escape(_temp_prefix(path)) + "*.tmp"):
        m = pattern.fullmatch(tmp.name)
        if m and not _alive(int(m.group(1))):
            with contextlib.suppress(OSError):  # tidying only: never a reason to fail the write
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _unlink(tmp: str | None) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask sets it, racing other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _failure_cause(err: BaseException, folder: Path) -> str:
    """Why a write failed, in words: a full disk is named even when the writer only says
    "iostream error" (torch.save), from the free space left."""
    code = getattr(err, "errno", None)
    try:
        st = os.statvfs(folder)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    space = "" if free is None else f" ({free} bytes free in {folder})"
    if code == errno.ENOSPC:
        return f"no space left on device{space}"
    if code == errno.EDQUOT:
        return f"disk quota exceeded{space}"
    said = f"{type(err).__name__}: {err}"
    if free is not None and free < LOW_SPACE:
        return f"no space left on device{space}; the writer said {said}"
    return said


def cf_attrs(name: str, known: dict | None = None) -> dict[str, str]:
    """CF attributes of a variable: those read from the source file win over the table."""
    base = name.split("@")[0]
    attrs = dict(CF_VARIABLES.get(base, {"long_name": base, "units": "1"}))
    attrs.update(known or {})
    return attrs


def _grid(ds: netCDF4.Dataset, x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> None:
    ds.createDimension("time", None)
    ds.createDimension("y", len(y))
    ds.createDimension("x", len(x))
    for name, values, axis in (("x", x, "X"), ("y", y, "Y")):
        var = ds.createVariable(name, "f8", (name,))
        var.setncatts({"units": "m", "axis": axis, "long_name": f"{name} distance",
                       "standard_name": f"projection_{name}_coordinate"})
        var[:] = values
    m = ds.createVariable("mask", "i1", ("y", "x"))
    m.setncatts({"long_name": "land-sea mask", "flag_values": np.array([0, 1], "i1"),
                 "flag_meanings": "land ocean"})
    m[:] = mask


def _time(ds: netCDF4.Dataset, seconds: np.ndarray, units: str, calendar: str) -> None:
    t = ds.createVariable("time", "f8", ("time",))
    t.setncatts({"units": units, "calendar": calendar, "standard_name": "time", "axis": "T"})
    t[:] = seconds


def _field(ds, name: str, dims: tuple[str, ...], values: np.ndarray, mask: np.ndarray, attrs: dict) -> None:
    var = ds.createVariable(name, "f4", dims, fill_value=np.float32(FILL_VALUE), zlib=True)
    var.setncatts({k: v for k, v in attrs.items() if k != "_FillValue"})
    var[:] = np.ma.masked_array(values, mask=np.broadcast_to(mask == 0, values.shape))


def write_fields(path, fields: dict[str, np.ndarray], mask: np.ndarray, x: np.ndarray, y: np.ndarray,
                 time: np.ndarray, params: dict[str, tuple[float, str, str]] | None = None,
                 attrs: dict | None = None, var_attrs: dict[str, dict] | None = None,
                 time_units: str = TIME_UNITS, calendar: str = CALENDAR) -> Path:
    """A data file in the project convention: fields (time, y, x), mask, θ scalars.

    ``params`` maps name -> (value, units, long_name); their names go to the global
    attribute ``parameters``, which is how readers find θ.
    """
    params = params or {}

    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", **(attrs or {}), "parameters": " ".join(params)})
            _grid(ds, x, y, mask)
            _time(ds, time, time_units, calendar)
            for name, values in fields.items():
                _field(ds, name, ("time", "y", "x"), values, mask, cf_attrs(name, (var_attrs or {}).get(name)))
            for name, (value, units, long_name) in params.items():
                p = ds.createVariable(name, "f8", ())
                p.setncatts({"units": units, "long_name": long_name})
                p.assignValue(value)
    return atomic_write(path, write)


def write_ensemble(path, members: dict[str, np.ndarray], mask: np.ndarray, x: np.ndarray, y: np.ndarray,
                   time: np.ndarray, extra: dict[str, tuple[tuple[str, ...], np.ndarray, dict]] | None = None,
                   attrs: dict | None = None, var_attrs: dict[str, dict] | None = None,
                   time_units: str = TIME_UNITS, calendar: str = CALENDAR) -> Path:
    """Samples (member, time, y, x) per variable, plus their ensemble mean and std.

    ``extra`` holds further variables as name -> (dims, values, attrs), e.g. the index
    of the source record each time step was conditioned on.
    """
    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", **(attrs or {})})
            _grid(ds, x, y, mask)
            _time(ds, time, time_units, calendar)
            n_members = next(iter(members.values())).shape[0]
            ds.createDimension("member", n_members)
            mem = ds.createVariable("member", "i4", ("member",))
            mem.setncatts({"long_name": "ensemble member", "units": "1"})
            mem[:] = np.arange(n_members)
            for name, values in members.items():
                a = cf_attrs(name, (var_attrs or {}).get(name))
                _field(ds, name, ("member", "time", "y", "x"), values, mask, a)
                cf = {k: a[k] for k in ("standard_name", "units") if k in a}
                _field(ds, f"{name}_mean", ("time", "y", "x"), values.mean(0), mask,
                       {**cf, "long_name": f"ensemble mean of {a['long_name']}", "cell_methods": "member: mean"})
                std = values.std(0, ddof=1) if n_members > 1 else np.zeros_like(values[0])
                _field(ds, f"{name}_std", ("time", "y", "x"), std, mask,
                       {"units": a["units"], "long_name": f"ensemble standard deviation of {a['long_name']}",
                        "cell_methods": "member: standard_deviation"})
            for name, (dims, values, a) in (extra or {}).items():
                var = ds.createVariable(name, np.asarray(values).dtype, dims)
                var.setncatts(a)
                var[:] = values
    return atomic_write(path, write)
