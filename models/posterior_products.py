"""What a trained posterior estimator gives a user: the observation it conditions on, the posterior's samples as
CF netCDF (one variable per parameter, with its units, mean, std and quantiles) and a PNG of its marginals and
pairs.  Shared by the worker's ``infer`` mode (bridge/worker/infer.py) and the offline ``oceanbridge infer``
(models/cli.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
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
                       plot: Path | None, attrs: dict, holdout: HeldOut | None = None,
                       diagnostic_plots: tuple[Path, Path] | None = None) -> dict:
    """Sample q(θ | observed), write ``output`` (netCDF) and ``plot`` (PNG); per parameter mean, std, truth.
    With ``holdout`` (held-out (θ, x) observations) the posterior is also diagnosed on them (``calibration_record``):
    written into ``output``, drawn into ``diagnostic_plots`` (SBC ranks, coverage curve) and returned under
    ``"calibration"``."""
    from .sbi import diagnose
    posterior = npe.build_posterior().set_default_x(observed)
    samples = posterior.sample(n, generator=torch.Generator().manual_seed(0)).numpy()
    record = None
    if holdout is not None and len(holdout.theta):
        diag = diagnose(posterior, holdout.theta, holdout.x, holdout.samples,
                        generator=torch.Generator().manual_seed(1))
        record = calibration_record(diag, holdout.tol, holdout.theta, holdout.members)
    write_posterior(output, samples, posterior.log_prob(samples).numpy(), npe.prior, quantiles, truth,
                    {**attrs, "training_steps": npe.step, "rejected_simulations": npe.rejected}, record)
    if plot is not None:
        plot_posterior(plot, samples, npe.prior, truth)
    stats: dict = {name: {"mean": float(samples[:, i].mean()), "std": float(samples[:, i].std(ddof=1)),
                          "truth": truth.get(name)} for i, name in enumerate(npe.prior.names)}
    log.info("infer: posterior of %s after %d steps -> %s: %s", list(npe.prior.names), npe.step, output, stats)
    if record is not None:
        if diagnostic_plots is not None:
            plot_sbc(diagnostic_plots[0], record, npe.prior)
            plot_coverage(diagnostic_plots[1], record, npe.prior)
        stats["calibration"] = calibration_summary(record, npe.prior.names)
        c = stats["calibration"]
        log.info("infer: calibration on %d held-out observations: SBC KS p-values %s, coverage error %.3f "
                 "(tolerance %g: %s), TARP ATC %.3f", c["holdout_observations"], c["sbc_ks_pvalue"],
                 c["coverage_error"], c["coverage_tol"], "calibrated" if c["calibrated"] else "NOT calibrated",
                 c["tarp_atc"])
    return stats


# ----------------------------------------------------------------------------- calibration on held-out data

CURVE_LEVELS = tuple(round(k / 20, 2) for k in range(1, 20)) + (0.99,)  # the coverage curve's nominal levels


@dataclass(frozen=True)
class HeldOut:
    """Held-out observations: θ (B, D) in physical units, x (B, *x_shape), the member each came from (B,) (or
    None), the posterior draws per observation and the coverage tolerance of the check."""
    theta: np.ndarray
    x: np.ndarray
    members: np.ndarray | None = None
    samples: int = 500
    tol: float = 0.1


def calibration_record(diag: dict, tol: float, theta, members=None) -> dict:
    """``models.sbi.calibration``'s result as plain arrays, with the marginal coverage curve at
    ``CURVE_LEVELS`` and the check (``models.sbi.calibrated`` at tolerance ``tol``)."""
    from .sbi import calibrated, coverage_curve
    n = int(diag["num_posterior_samples"])
    ranks = np.asarray(diag["sbc_ranks"]).astype(np.int64)
    check = {float(level): np.asarray(c, dtype=np.float64) for level, c in diag["coverage"].items()}
    return {"ranks": ranks, "num_posterior_samples": n,
            "ks_pvals": np.asarray(diag["sbc_ks_pvals"], dtype=np.float64).reshape(-1),
            "check_levels": check, "coverage_error": float(diag["coverage_error"]),
            "curve_levels": np.asarray(CURVE_LEVELS), "curve": coverage_curve(ranks, n, CURVE_LEVELS).numpy(),
            "tarp_alpha": np.asarray(diag["tarp_alpha"], dtype=np.float64).reshape(-1),
            "tarp_ecp": np.asarray(diag["tarp_ecp"], dtype=np.float64).reshape(-1),
            "tarp_atc": float(diag["tarp_atc"]), "tarp_ks_pval": float(diag["tarp_ks_pval"]),
            "tol": float(tol), "calibrated": bool(calibrated(diag, tol)),
            "theta": np.asarray(theta, dtype=np.float64).reshape(len(ranks), -1),
            "members": None if members is None else np.asarray(members, dtype=np.int64)}


def calibration_summary(record: dict, names) -> dict:
    """The JSON part of a calibration record (worker_summary.json's ``posterior.calibration``)."""
    members = record["members"]
    return {"holdout_observations": int(len(record["ranks"])),
            "holdout_members": None if members is None else sorted(int(m) for m in set(members.tolist())),
            "posterior_samples": record["num_posterior_samples"],
            "sbc_ks_pvalue": {n: float(p) for n, p in zip(names, record["ks_pvals"])},
            "sbc_ranks": {n: record["ranks"][:, i].tolist() for i, n in enumerate(names)},
            "coverage": {f"{level:g}": {n: float(v) for n, v in zip(names, c)}
                         for level, c in record["check_levels"].items()},
            "coverage_curve": {"levels": [float(v) for v in record["curve_levels"]],
                               **{n: [float(v) for v in record["curve"][:, i]] for i, n in enumerate(names)}},
            "coverage_error": record["coverage_error"], "coverage_tol": record["tol"],
            "calibrated": record["calibrated"],
            "tarp_atc": record["tarp_atc"], "tarp_ks_pvalue": record["tarp_ks_pval"]}


def write_posterior(path: Path, samples: np.ndarray, log_prob: np.ndarray, prior, quantiles, truth: dict,
                    attrs: dict, calibration: dict | None = None) -> Path:
    """``samples`` (n, D) in physical units: one variable per parameter, plus mean, std, quantiles; and the
    ``calibration`` record on held-out observations (dimension ``holdout``), when given."""
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
            if calibration is not None:
                _calibration(ds, calibration, prior)
    return atomic_write(path, write)


def _calibration(ds, rec: dict, prior) -> None:
    """SBC ranks, KS p-values, coverage per level and its error, TARP, over the ``holdout`` dimension."""
    n, b = rec["num_posterior_samples"], len(rec["ranks"])
    checked = ", ".join(f"{level:g}" for level in rec["check_levels"])
    ds.setncatts({"holdout_observations": b, "sbc_posterior_samples": n, "coverage_tolerance": rec["tol"],
                  "calibrated": int(rec["calibrated"]),
                  "calibration_check": f"coverage_error <= coverage_tolerance at levels {checked}"})
    ds.createDimension("holdout", b)
    ds.createDimension("coverage_level", len(rec["curve_levels"]))
    ds.createDimension("tarp_alpha", len(rec["tarp_alpha"]))

    def variable(name, dims, values, long_name, units="1", dtype="f8", **extra):
        var = ds.createVariable(name, dtype, dims)
        var.setncatts({"long_name": long_name, "units": units, **extra})
        if dims:
            var[:] = values
        else:
            var.assignValue(values)
    if rec["members"] is not None:
        variable("holdout_member", ("holdout",), rec["members"], "index (in [ocean] members order) of the held-out "
                 "member whose state is the observation", dtype="i4")
    variable("coverage_level", ("coverage_level",), rec["curve_levels"], "nominal level of the central credible "
             "interval")
    for i, (name, units) in enumerate(zip(prior.names, prior.units)):
        variable(f"{name}_holdout_true", ("holdout",), rec["theta"][:, i], f"true {name} of the held-out "
                 "observation", units)
        variable(f"{name}_sbc_rank", ("holdout",), rec["ranks"][:, i], f"SBC rank of the true {name} among the "
                 f"{n} posterior samples of the held-out observation", dtype="i4", valid_min=0, valid_max=n)
        variable(f"{name}_sbc_ks_pvalue", (), float(rec["ks_pvals"][i]), f"p-value of the Kolmogorov-Smirnov "
                 f"test that the SBC ranks of {name} are uniform")
        variable(f"{name}_coverage", ("coverage_level",), rec["curve"][:, i], f"fraction of the held-out true "
                 f"{name} inside the central credible interval of their marginal posterior")
    variable("coverage_error", (), rec["coverage_error"], f"largest |coverage - level| over the parameters at "
             f"levels {checked}")
    variable("tarp_alpha", ("tarp_alpha",), rec["tarp_alpha"], "TARP credibility level")
    variable("tarp_ecp", ("tarp_alpha",), rec["tarp_ecp"], "TARP expected coverage probability (joint)")
    variable("tarp_atc", (), rec["tarp_atc"], "TARP area to the diagonal of the expected coverage curve "
             "(< 0: too narrow, > 0: too wide)")
    variable("tarp_ks_pvalue", (), rec["tarp_ks_pval"], "p-value of the TARP Kolmogorov-Smirnov test")


def _binomial_band(b: int, p, confidence: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` interval of a fraction of ``b`` Bernoulli(p) draws."""
    from scipy.stats import binom
    p = np.asarray(p, dtype=np.float64)
    return binom.ppf((1 - confidence) / 2, b, p) / b, binom.ppf((1 + confidence) / 2, b, p) / b


def plot_sbc(path: Path, rec: dict, prior, bins: int | None = None) -> Path:
    """SBC rank histograms, one panel per parameter, with the 99 % band of uniform ranks."""
    from models.plots import plt
    ranks, n = rec["ranks"], rec["num_posterior_samples"]
    b, d = len(ranks), prior.dim
    bins = bins or int(np.clip(b // 5, 4, 20))
    fig, axes = plt.subplots(1, d, figsize=(3.2 * d + 0.4, 2.8), squeeze=False)
    lo, hi = _binomial_band(b, 1 / bins)
    for i, ax in enumerate(axes[0]):
        ax.axhspan(lo * b, hi * b, color="0.85")
        ax.axhline(b / bins, color="0.5", lw=1)
        ax.hist(ranks[:, i], bins=bins, range=(0, n + 1), color="tab:blue", alpha=0.8)
        ax.set_title(f"{prior.names[i]}: KS p = {rec['ks_pvals'][i]:.2g}", fontsize=9)
        ax.set_xlabel(f"rank among {n} samples")
        ax.set_xlim(0, n + 1)
    axes[0, 0].set_ylabel(f"of {b} held-out observations")
    fig.suptitle("simulation-based calibration: uniform ranks when calibrated (grey: 99 % band of uniform "
                 "ranks per bin)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_coverage(path: Path, rec: dict, prior) -> Path:
    """Empirical against nominal coverage of the central intervals per parameter, TARP's joint curve, and the
    99 % band of a calibrated posterior over this many observations."""
    from models.plots import plt
    b = len(rec["ranks"])
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    grid = np.linspace(0.0, 1.0, 101)
    lo, hi = _binomial_band(b, grid)
    ax.fill_between(grid, lo, hi, color="0.85", label=f"99 % band, {b} obs.")
    ax.plot([0, 1], [0, 1], color="0.4", lw=1, ls="--")
    for i, name in enumerate(prior.names):
        ax.plot(rec["curve_levels"], rec["curve"][:, i], "o-", ms=3, label=name)
    ax.plot(rec["tarp_alpha"], rec["tarp_ecp"], color="k", lw=1.5, label=f"TARP (ATC {rec['tarp_atc']:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal level (credible interval)")
    ax.set_ylabel("empirical coverage")
    ax.set_title(f"coverage error {rec['coverage_error']:.3f} (tol {rec['tol']:g}): "
                 f"{'calibrated' if rec['calibrated'] else 'NOT calibrated'}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    from models.plots import plt
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path


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
