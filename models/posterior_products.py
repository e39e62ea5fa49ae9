"""What a trained posterior estimator gives a user: the observation it conditions on, the posterior's samples as
CF netCDF (one variable per parameter, with its units, mean, std and quantiles) and a PNG of its marginals and
pairs.  Shared by the worker's ``infer`` mode (bridge/worker/infer.py) and the offline ``oceanbridge infer``
(models/cli.py).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import netCDF4
import numpy as np
import torch

from .ncio import atomic_write

if TYPE_CHECKING:
    from .sbi import NPE

log = logging.getLogger(__name__)


def read_observation(path: Path, channels, record: int, names, grid: tuple[int, int],
                     window: tuple[slice, slice] | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """The observed state (C, ny, nx) float32 on the ``grid`` (ny, nx), cut to ``window`` (a rank's tile: rows,
    columns), and the true θ found in the file."""
    bases = list(dict.fromkeys(c.split("@")[0] for c in channels))
    parts = []
    if not Path(path).is_file():
        raise FileNotFoundError(f"observation: no file {path} ([worker.infer] observation)")
    with netCDF4.Dataset(path) as ds:
        for name in bases:
            if name not in ds.variables:
                raise ValueError(f"observation {path}: no variable '{name}' (the state fields are "
                                 f"{bases}; the file has {sorted(ds.variables)})")
            var = ds.variables[name]
            data = np.ma.filled(var[record] if "time" in var.dimensions else var[:], np.nan).astype(np.float32)
            parts.append(data.reshape(-1, *data.shape[-2:]))
        land = (np.ma.filled(ds.variables["mask"][:], 0) == 0) if "mask" in ds.variables else None
        truth = {}
        for n in names:
            if n in ds.ncattrs():
                truth[n] = float(ds.getncattr(n))
            elif n in ds.variables and ds.variables[n].ndim == 0:
                truth[n] = float(ds.variables[n][...])
    state = np.concatenate(parts)
    if land is not None and land.shape == state.shape[-2:]:
        state[:, land] = 0.0  # land holds the fill value; the estimator masks it
    if state.shape != (len(channels), *grid):
        raise ValueError(f"observation {path}: state {state.shape} does not match the channels "
                         f"{list(channels)} on the {grid[0]} x {grid[1]} grid")
    tile = state if window is None else state[:, window[0], window[1]]
    if not np.isfinite(tile).all():
        raise ValueError(f"observation {path}: NaN/Inf or missing values in record {record}")
    return tile, truth


def posterior_products(npe: NPE, observed: np.ndarray, truth: dict, n: int, quantiles, output: Path,
                       plot: Path | None, attrs: dict) -> dict:
    """Sample q(θ | observed), write ``output`` (netCDF) and ``plot`` (PNG); per parameter mean, std, truth."""
    posterior = npe.build_posterior().set_default_x(observed)
    samples = posterior.sample(n, generator=torch.Generator().manual_seed(0)).numpy()
    write_posterior(output, samples, posterior.log_prob(samples).numpy(), npe.prior, quantiles, truth,
                    {**attrs, "training_steps": npe.step, "rejected_simulations": npe.rejected})
    if plot is not None:
        plot_posterior(plot, samples, npe.prior, truth)
    stats = {name: {"mean": float(samples[:, i].mean()), "std": float(samples[:, i].std(ddof=1)),
                    "truth": truth.get(name)} for i, name in enumerate(npe.prior.names)}
    log.info("infer: posterior of %s after %d steps -> %s: %s", list(npe.prior.names), npe.step, output, stats)
    return stats


def write_posterior(path: Path, samples: np.ndarray, log_prob: np.ndarray, prior, quantiles, truth: dict,
                    attrs: dict) -> Path:
    """``samples`` (n, D) in physical units: one variable per parameter, plus mean, std, quantiles."""
    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", "title": "oceanbridge parameter posterior (neural posterior "
                          "estimation)", "source": "oceanbridge worker, infer mode", "parameters":
                          " ".join(prior.names), **attrs})
            ds.createDimension("sample", len(samples))
            ds.createDimension("quantile", len(quantiles))
            q = ds.createVariable("quantile", "f8", ("quantile",))
            q.setncatts({"long_name": "quantile level", "units": "1"})
            q[:] = quantiles
            lp = ds.createVariable("log_prob", "f8", ("sample",))
            lp.setncatts({"long_name": "log posterior density of the sample", "units": "1"})
            lp[:] = log_prob
            for i, (name, units) in enumerate(zip(prior.names, prior.units)):
                _parameter(ds, name, units, samples[:, i], (float(prior.low[i]), float(prior.high[i])), quantiles,
                           truth.get(name))
    return atomic_write(path, write)


def _parameter(ds, name: str, units: str, values: np.ndarray, box: tuple[float, float], quantiles,
               truth: float | None) -> None:
    def scalar(suffix: str, value: float, long_name: str, **extra) -> None:
        var = ds.createVariable(f"{name}_{suffix}", "f8", ())
        var.setncatts({"units": units, "long_name": long_name, **extra})
        var.assignValue(value)
    var = ds.createVariable(name, "f8", ("sample",))
    var.setncatts({"units": units, "long_name": f"posterior samples of {name}", "valid_min": box[0],
                   "valid_max": box[1], "prior": f"uniform on [{box[0]:g}, {box[1]:g}] {units}"})
    var[:] = values
    scalar("mean", float(values.mean()), f"posterior mean of {name}", cell_methods="sample: mean")
    scalar("std", float(values.std(ddof=1)), f"posterior standard deviation of {name}",
           cell_methods="sample: standard_deviation")
    qv = ds.createVariable(f"{name}_quantile", "f8", ("quantile",))
    qv.setncatts({"units": units, "long_name": f"posterior quantiles of {name}", "cell_methods": "sample: quantile"})
    qv[:] = np.quantile(values, quantiles)
    if truth is not None:
        scalar("true", truth, f"true {name} of the observation")


def plot_posterior(path: Path, samples: np.ndarray, prior, truth: dict) -> Path:
    """Marginal histograms on the diagonal, pairs below it; prior box as the axis range, truth in red."""
    from models.plots import plt
    d = prior.dim
    fig, axes = plt.subplots(d, d, figsize=(2.6 * d + 0.6, 2.4 * d + 0.4), squeeze=False)
    box = [(float(prior.low[i]), float(prior.high[i])) for i in range(d)]
    true = [truth.get(n) for n in prior.names]
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
            elif i == j:
                ax.hist(samples[:, i], bins=40, range=box[i], color="tab:blue", alpha=0.8)
                if true[i] is not None:
                    ax.axvline(true[i], color="tab:red", lw=2)
                ax.set_xlim(box[i])
                ax.set_yticks([])
            else:
                ax.scatter(samples[:, j], samples[:, i], s=2, alpha=0.3, color="tab:blue")
                if true[i] is not None and true[j] is not None:
                    ax.plot(true[j], true[i], "*", color="tab:red", ms=12)
                ax.set_xlim(box[j])
                ax.set_ylim(box[i])
            if i == d - 1:
                ax.set_xlabel(f"{prior.names[j]} ({prior.units[j]})")
    known = any(t is not None for t in true)
    fig.suptitle("posterior over the prior box" + ("\ntruth in red" if known else ""), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path
