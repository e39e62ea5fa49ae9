"""Training data from netCDF: (θ, x_t, x_{t+Δ}) pairs, NaN screening, batches on device.

File convention (gyre/README.md, Outputs: written by the embedded gyre): dims ``time`` (unlimited),
``y``, ``x`` (optionally ``z``); fields (time, [z,] y, x); ``mask`` (y, x) 1 ocean / 0 land;
θ = scalar variables named in the global attribute ``parameters``. Several files are
ensemble members with different θ on the same grid. A 3-D field contributes one
channel per level, named ``var@k``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import netCDF4
import numpy as np
import torch

__all__ = ["DataSpec", "Batch", "Member", "read_member", "PairDataset", "finite_rows", "grid_position",
           "MissingVariableError", "describe_file", "base_variables"]

log = logging.getLogger(__name__)
TASKS = ("emulate", "generate")


@dataclass(frozen=True)
class DataSpec:
    """What a model was trained on; data given later must match it."""

    channels: tuple[str, ...]
    params: tuple[str, ...]
    ny: int
    nx: int

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "params", tuple(self.params))
        if not self.channels:
            raise ValueError("DataSpec.channels must not be empty")
        if self.ny < 1 or self.nx < 1:
            raise ValueError(f"DataSpec.ny/nx must be positive, got {self.ny}x{self.nx}")

    def describe(self) -> str:
        params = f", parameters {list(self.params)}" if self.params else ""
        return f"variables {list(self.channels)} on {self.ny}x{self.nx}{params}"

    def check_matches(self, other: "DataSpec", ours: str, theirs: str) -> None:
        """Raise a ValueError naming both sides when variables, grid or θ names differ."""
        if self != other:
            raise ValueError(f"{ours} expects {self.describe()}, {theirs} has {other.describe()}")


@dataclass
class Batch:
    """Physical-unit training/conditioning data; the surrogate normalizes it.

    target: (B, C, ny, nx) the state to predict (x_{t+Δ}, or x for generation)
    state:  (B, C, ny, nx) x_t (emulation) or x_0 (generation on an initial state), or None
    theta:  (B, P) physical parameters, or None
    mask:   (B|1, 1, ny, nx) 1 ocean, 0 land
    pos:    (B|1, 2, ny, nx) tile position in the global grid, or None
    """

    target: torch.Tensor | None
    state: torch.Tensor | None = None
    theta: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    pos: torch.Tensor | None = None

    def _map(self, fn) -> "Batch":
        return Batch(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                        for f in fields(self)})

    def to(self, device) -> "Batch":
        return self._map(lambda t: t.to(device))

    def _per_sample(self, fn) -> "Batch":
        """Apply ``fn`` to per-sample tensors; grid-wide ones (batch 1, e.g. the mask) are shared."""
        n = len(self)
        return self._map(lambda t: fn(t) if t.shape[0] == n else t)

    def select(self, keep: torch.Tensor) -> "Batch":
        """Rows picked by a boolean mask or an index tensor."""
        return self._per_sample(lambda t: t[keep.to(t.device)])

    def split(self, size: int) -> list["Batch"]:
        """Consecutive chunks of at most ``size`` samples (bounded memory per network call)."""
        return [self._per_sample(lambda t, i=i: t[i:i + size]) for i in range(0, max(len(self), 1), size)]

    def __len__(self) -> int:
        ref = self.target if self.target is not None else self.state if self.state is not None else self.theta
        return 0 if ref is None else ref.shape[0]


def finite_rows(batch: Batch) -> torch.Tensor:
    """(B,) True where every ocean value of the sample is finite.

    Used on files and on streams alike: a NaN from a blown-up ocean run must never
    reach the optimizer or the running statistics.
    """
    ref = next(t for t in (batch.target, batch.state, batch.theta) if t is not None)
    ok = torch.ones(len(batch), dtype=torch.bool, device=ref.device)
    ocean = None if batch.mask is None else batch.mask.to(torch.bool)
    for t in (batch.target, batch.state):
        if t is not None:
            bad = ~torch.isfinite(t) if ocean is None else ~torch.isfinite(t) & ocean
            ok &= ~bad.flatten(1).any(dim=1)
    if batch.theta is not None:
        ok &= torch.isfinite(batch.theta).all(dim=1)
    return ok


def grid_position(i0: int, j0: int, ni: int, nj: int, nx_glob: int, ny_glob: int) -> torch.Tensor:
    """(2, nj, ni) global coordinates of a tile's points scaled to [-1, 1] (x first, then y).

    Offsets are the 0-based global offsets of obr_def_partition (README.md); a network trained on tiles
    with these channels knows where in the basin each tile sits.
    """
    xs = 2 * (i0 + torch.arange(ni, dtype=torch.float32)) / max(nx_glob - 1, 1) - 1
    ys = 2 * (j0 + torch.arange(nj, dtype=torch.float32)) / max(ny_glob - 1, 1) - 1
    return torch.stack([xs.expand(nj, ni), ys[:, None].expand(nj, ni)])


# ----------------------------------------------------------------------------- one file


class MissingVariableError(ValueError):
    """A requested variable is absent from a data file."""


def base_variables(channels) -> list[str]:
    """File variable names behind channel names ('temp@3' -> 'temp'), in order."""
    return list(dict.fromkeys(c.split("@")[0] for c in channels))


def describe_file(path: str | Path) -> str:
    """'variables [...] on NYxNX, parameters [...]' of whatever fields a file holds."""
    with netCDF4.Dataset(path) as ds:
        names = _field_names(ds)
        shape = ds.variables[names[0]].shape[-2:] if names else (0, 0)
        params = getattr(ds, "parameters", "").split()
    return DataSpec(tuple(names) or ("none",), tuple(params), *(max(n, 1) for n in shape)).describe()


def _field_names(ds: netCDF4.Dataset) -> list[str]:
    return [v for v, var in ds.variables.items() if var.dimensions[:1] == ("time",) and var.ndim >= 3]


@dataclass
class Member:
    """One file: fields (T, C, ny, nx) float32 with land = 0 and NaN where data are missing."""

    path: str
    channels: tuple[str, ...]
    fields: np.ndarray
    mask: np.ndarray
    theta: np.ndarray
    params: tuple[str, ...]
    time: np.ndarray
    time_units: str
    calendar: str
    x: np.ndarray
    y: np.ndarray
    var_attrs: dict

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.channels, self.params, *self.mask.shape)


def _read_field(ds: netCDF4.Dataset, path: str, name: str) -> tuple[list[str], np.ndarray]:
    if name not in ds.variables:
        raise MissingVariableError(f"variable '{name}' not in data file {path}; it has {_field_names(ds)}")
    var = ds.variables[name]
    # Missing values (_FillValue) become NaN; land is cleaned later with the mask.
    data = np.ma.filled(var[:].astype(np.float32), np.nan)
    if var.ndim == 3:
        return [name], data[:, None]
    if var.ndim == 4:
        return [f"{name}@{k}" for k in range(data.shape[1])], data
    raise ValueError(f"variable '{name}' in {path} has dims {var.dimensions}; expected (time, [z,] y, x)")


def read_member(path: str | Path, variables: list[str] | tuple[str, ...]) -> Member:
    path = str(path)
    with netCDF4.Dataset(path) as ds:
        names, arrays, var_attrs = [], [], {}
        for v in variables:
            n, a = _read_field(ds, path, v)
            names += n
            arrays.append(a)
            var_attrs[v] = {k: ds.variables[v].getncattr(k) for k in ("standard_name", "units", "long_name")
                            if k in ds.variables[v].ncattrs()}
        fields_ = np.concatenate(arrays, axis=1)
        ny, nx = fields_.shape[-2:]
        mask = (np.ma.filled(ds.variables["mask"][:], 0) > 0) if "mask" in ds.variables else np.ones((ny, nx), bool)
        params = tuple(getattr(ds, "parameters", "").split())
        theta = np.array([float(ds.variables[p][...]) for p in params], dtype=np.float32)
        tvar = ds.variables.get("time")
        time = np.asarray(tvar[:], dtype=float) if tvar is not None else np.arange(len(fields_), dtype=float)
        units = getattr(tvar, "units", "seconds since 2000-01-01 00:00:00") if tvar is not None else "1"
        calendar = getattr(tvar, "calendar", "standard") if tvar is not None else "standard"
        x = np.asarray(ds.variables["x"][:]) if "x" in ds.variables else np.arange(nx, dtype=float)
        y = np.asarray(ds.variables["y"][:]) if "y" in ds.variables else np.arange(ny, dtype=float)
    fields_[:, :, ~mask] = 0.0  # land holds the fill value in normalized space, never NaN
    return Member(path, tuple(names), fields_, mask.astype(np.float32), theta, params, time, units, calendar,
                  x, y, var_attrs)


# ----------------------------------------------------------------------------- dataset


class PairDataset:
    """All (θ, x_t, x_{t+lag}) pairs (task 'emulate') or (θ [, x_0], x_t) samples (task
    'generate') of several files, held as tensors on one device.

    Samples touching a non-finite ocean value are rejected, counted in ``rejected``
    and logged. ``skip`` leading records of each file are not used as targets (spin-up).
    """

    def __init__(self, files, variables, lag: int = 1, task: str = "emulate", cond_on_initial: bool = False,
                 skip: int = 0):
        if task not in TASKS:
            raise ValueError(f"PairDataset.task must be one of {TASKS}, got {task!r}")
        if lag < 1:
            raise ValueError(f"PairDataset.lag must be >= 1 record, got {lag!r}")
        if not files:
            raise ValueError("PairDataset.files must name at least one netCDF file")
        self.task, self.lag, self.cond_on_initial = task, lag, cond_on_initial
        self.members = [read_member(f, variables) for f in files]
        self.spec = self.members[0].spec
        for m in self.members[1:]:
            self.spec.check_matches(m.spec, f"data file {self.members[0].path}", f"data file {m.path}")
        self._build_index(skip)
        self.device = torch.device("cpu")

    def _build_index(self, skip: int) -> None:
        fields_ = [torch.from_numpy(m.fields) for m in self.members]
        self.fields = torch.cat(fields_)  # (sum T, C, ny, nx)
        self.theta = torch.from_numpy(np.stack([m.theta for m in self.members]))  # (K, P)
        self.mask = torch.from_numpy(self.members[0].mask)[None, None]
        offsets = np.cumsum([0] + [len(f) for f in fields_])
        rows = []  # (member, source record, target record), global record indices
        for k, m in enumerate(self.members):
            first = max(skip, self.lag if self.task == "emulate" else 0)
            for t in range(first, len(m.fields)):
                src = t - self.lag if self.task == "emulate" else 0
                rows.append((k, offsets[k] + src, offsets[k] + t))
        index = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
        # Screen records (not pairs): each record is checked once, whatever the lag
        record_ok = finite_rows(Batch(target=self.fields, mask=self.mask))
        theta_ok = finite_rows(Batch(target=None, theta=self.theta)) if self.theta.shape[1] else \
            torch.ones(len(self.members), dtype=torch.bool)
        keep = record_ok[index[:, 1]] & record_ok[index[:, 2]] & theta_ok[index[:, 0]]
        self.rejected = int((~keep).sum())
        self.index = index[keep]
        if self.rejected:
            log.warning("rejected %d of %d samples with NaN/inf ocean values in %s", self.rejected, len(index),
                        ", ".join(m.path for m in self.members))
        if len(self.index) == 0:
            raise ValueError(f"no usable samples in {[m.path for m in self.members]} "
                             f"(lag {self.lag}, {self.rejected} rejected for NaN)")

    def _gather(self, index: torch.Tensor) -> Batch:
        has_state = self.task == "emulate" or self.cond_on_initial
        return Batch(target=self.fields[index[:, 2]],
                     state=self.fields[index[:, 1]] if has_state else None,
                     theta=self.theta[index[:, 0]] if self.theta.shape[1] else None,
                     mask=self.mask)

    def __len__(self) -> int:
        return len(self.index)

    def to(self, device) -> "PairDataset":
        """Move everything to ``device`` once: batches are then gathered without copies."""
        self.device = torch.device(device)
        self.fields, self.theta, self.mask, self.index = (t.to(self.device) for t in
                                                          (self.fields, self.theta, self.mask, self.index))
        return self

    def batch(self, rows: torch.Tensor) -> Batch:
        """Samples ``rows`` (positions in this dataset) as a Batch on the dataset's device."""
        return self._gather(self.index[rows.to(self.index.device)])

    def random_batch(self, batch_size: int, generator: torch.Generator, tile: int | None = None) -> Batch:
        """Uniformly drawn samples; with ``tile`` a random tile x tile crop plus its position."""
        rows = torch.randint(len(self), (batch_size,), generator=generator)
        batch = self.batch(rows)
        if tile is None:
            return batch
        ny, nx = self.spec.ny, self.spec.nx
        if not 0 < tile <= min(ny, nx):
            raise ValueError(f"tile size {tile} does not fit the {ny}x{nx} grid")
        j0, i0 = (int(torch.randint(n - tile + 1, (1,), generator=generator)) for n in (ny, nx))
        crop = (..., slice(j0, j0 + tile), slice(i0, i0 + tile))
        pos = grid_position(i0, j0, tile, tile, nx, ny)[None].to(self.device)
        return Batch(batch.target[crop], None if batch.state is None else batch.state[crop], batch.theta,
                     batch.mask[crop], pos)

    def full_position(self) -> torch.Tensor:
        return grid_position(0, 0, self.spec.nx, self.spec.ny, self.spec.nx, self.spec.ny)[None].to(self.device)
