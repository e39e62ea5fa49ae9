"""The worker's ``infer`` mode: a posterior over the members' parameters θ.

While the ocean runs, every optimizer step of the surrogate also gives the
posterior estimator (``models.sbi.NPE``: sbi's neural spline flow over the prior
box, or its NPSE / FMPE posteriors, or our mixture density, conditioned on a
masked CNN summary of the state) one step on the same buffered items: x = the
member's states (x_t and x_{t+Δ}), θ = its parameters.  At the
end the posterior is sampled for the observed state of ``[worker.infer]
observation`` and written as ``posterior.nc`` (CF: one variable per parameter,
with units from ``[[parameters]]``, plus mean, std and quantiles) and a PNG
(marginals and pairs; the true θ marked when the observation file carries it).

With several worker ranks each rank learns from, and conditions on, its own
tile (``_r<rank>`` outputs), like the other products: nothing is gathered.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import netCDF4
import numpy as np
import torch

from bridge.partition import BoxPartition
from bridge.worker.output import rank_path
from bridge.worker.samples import BufferedSample, stacked_states
from models.cli import cli_verb
from models.ncio import atomic_write
from models.sbi import NPE, BoxUniform, NPEConfig

log = logging.getLogger(__name__)


def read_observation(path: Path, channels, record: int, box, names) -> tuple[np.ndarray, dict[str, float]]:
    """This rank's tile of the observed state (C, nj, ni) float32 and the true θ found in the file."""
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
    if state.shape != (len(channels), box.ny, box.nx):
        raise ValueError(f"observation {path}: state {state.shape} does not match the channels "
                         f"{list(channels)} on the {box.ny} x {box.nx} grid")
    tile = state[:, box.j0:box.j0 + box.nj, box.i0:box.i0 + box.ni]
    if not np.isfinite(tile).all():
        raise ValueError(f"observation {path}: NaN/Inf or missing values in record {record}")
    return tile, truth


class Inference:
    """NPE on buffered (θ, x) items, the observation, and the outputs of one worker rank."""

    def __init__(self, plan, channels, tile_shape: tuple[int, int], device: str):
        s = plan.settings
        self.plan, self.channels = plan, tuple(channels)
        self.prior = BoxUniform(plan.low, plan.high, names=plan.names, units=plan.units)
        config = NPEConfig(estimator=s.estimator, components=s.components, hidden=s.hidden,
                           summary_width=s.summary_width, lr=s.lr, norm_warmup_steps=s.norm_warmup_steps)
        self.npe = NPE(self.prior, config, x_shape=(len(self.channels), *tile_shape), device=device)
        self.observed: np.ndarray | None = None
        self.truth: dict[str, float] = {}

    @property
    def step(self) -> int:
        return self.npe.step

    def wants(self, draining: bool) -> bool:
        """Whether another step is due: while the stream runs (up to max_steps), then up to min_steps."""
        s = self.plan.settings
        return self.step < s.min_steps if draining else (s.max_steps == 0 or self.step < s.max_steps)

    def attach(self, box, mask: torch.Tensor) -> None:
        """This rank's tile: its land mask, and the observation cut to it (read now, so a bad file fails early)."""
        self.npe.set_mask(mask)
        s = self.plan.settings
        self.observed, self.truth = read_observation(s.observation, self.channels, s.record, box, self.prior.names)

    def train_step(self, samples) -> float | None:
        """One step on buffered samples: x_t and x_{t+Δ} are both simulations of θ."""
        samples = [BufferedSample.of(s) for s in samples]
        theta = np.stack([s.theta for s in samples] * 2)
        states = stacked_states(samples)
        assert states is not None  # the infer mode runs with 'train', never with 'generate': every sample has x_t
        x = np.concatenate([states, np.stack([s.target for s in samples])])
        return self.npe.train_step(theta.astype(np.float64), x)

    def finish(self, rank: int, size: int) -> dict | None:
        """Sample the posterior of the observation; write posterior.nc and the figure."""
        if not self.npe.trained:
            log.error("infer: the posterior estimator made no training step (no pairs reached the buffer): "
                      "no %s written", self.plan.output.name)
            return None
        s, plot = self.plan.settings, self.plan.plot
        assert self.observed is not None  # attach (Engine's init, before any step) reads it
        return posterior_products(self.npe, self.observed, self.truth, s.samples, s.levels,
                                  rank_path(self.plan.output, rank, size),
                                  None if plot is None else rank_path(plot, rank, size),
                                  {"observation": str(s.observation), "observation_record": s.record})

    def state_dict(self) -> dict:
        return self.npe.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.npe.load_state_dict(state)


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


# ----------------------------------------------------------------------------- offline: oceanbridge infer


def _prior_arg(text: str) -> tuple[str, float, float, str]:
    """NAME=LOW:HIGH[:UNITS]"""
    try:
        name, rest = text.split("=", 1)
        low, high, *units = rest.split(":")
        return name, float(low), float(high), units[0] if units else "1"
    except ValueError:
        raise argparse.ArgumentTypeError(f"--prior {text!r}: expected NAME=LOW:HIGH[:UNITS], e.g. "
                                         "tau0=0.05:0.2:N m-2") from None


def _infer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oceanbridge infer", description="Neural posterior estimation offline: train "
                                "q(θ | state) on netCDF runs with known θ (one file per run, θ named in its "
                                "'parameters' attribute, as `oceanbridge train` reads them), then sample the "
                                "posterior of an observed state and write posterior.nc and a PNG.")
    p.add_argument("--data", nargs="+", required=True, help="netCDF runs in the oceanbridge convention")
    p.add_argument("--prior", nargs="+", required=True, type=_prior_arg, metavar="NAME=LOW:HIGH[:UNITS]",
                   help="the uniform prior box, one per parameter (the order of the outputs)")
    p.add_argument("--observation", required=True, type=Path, help="netCDF file of the observed state")
    p.add_argument("--record", type=int, default=-1, help="time record of the observation (-1: the last)")
    p.add_argument("--variables", nargs="+", default=["ssh", "u", "v", "temp"], help="state fields")
    p.add_argument("--skip", type=int, default=0, help="leading records of each run not used (spin-up)")
    p.add_argument("--epochs", type=int, default=200, help="training epochs at most (early stopping)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--estimator", choices=("nsf", "npse", "fmpe", "mixture"), default="nsf",
                   help="sbi's neural spline flow (default), score-based (npse) or flow-matching (fmpe) posterior, "
                   "or our mixture density network")
    p.add_argument("--components", type=int, default=4, help="Gaussians of the mixture density (--estimator "
                   "mixture)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--quantiles", type=lambda t: tuple(float(q) for q in t.split(",")),
                   default=(0.025, 0.16, 0.5, 0.84, 0.975))
    p.add_argument("--out", type=Path, default=Path("posterior.nc"))
    p.add_argument("--plot", default="posterior.png", help="figure ('' for none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


def _simulations(files, variables, names, skip: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """θ (N, D) in the order of ``names``, states (N, C, ny, nx), the mask and the channels of every run."""
    from models.data import read_member
    thetas, states, first = [], [], None
    for f in files:
        m = read_member(f, variables)
        missing = [n for n in names if n not in m.params]
        if missing:
            raise ValueError(f"data file {f}: no value of parameter(s) {missing} "
                             f"(its 'parameters' are {list(m.params)})")
        if first is not None:
            first.spec.check_matches(m.spec, f"data file {first.path}", f"data file {f}")
        first = first or m
        x = m.fields[skip:]
        states.append(x)
        thetas.append(np.repeat(np.array([[m.theta[m.params.index(n)] for n in names]]), len(x), axis=0))
    if first is None:
        raise ValueError("no data file given")  # (argparse's nargs='+' asks for one)
    return np.concatenate(thetas), np.concatenate(states), first.mask, first.channels


@cli_verb
def infer_main(argv) -> int:
    """``oceanbridge infer``: exit code 0, or 2 with one line naming what is wrong."""
    args = _infer_parser().parse_args(argv)
    torch.manual_seed(args.seed)
    names, low, high, units = zip(*args.prior)
    prior = BoxUniform(low, high, names=names, units=units)
    theta, x, mask, channels = _simulations(args.data, args.variables, names, args.skip)
    npe = NPE(prior, NPEConfig(estimator=args.estimator, components=args.components, max_epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed), mask=mask)
    npe.append_simulations(theta, x).train(progress=not args.no_progress)
    box = BoxPartition.whole(x.shape[-1], x.shape[-2])
    observed, truth = read_observation(args.observation, channels, args.record, box, names)
    stats = posterior_products(npe, observed, truth, args.samples, args.quantiles, args.out,
                               Path(args.plot) if args.plot else None,
                               {"observation": str(args.observation), "observation_record": args.record,
                                "data": " ".join(map(str, args.data))})
    for name, st in stats.items():
        print(f"{name}: posterior mean {st['mean']:.6g}, std {st['std']:.6g}"
              + ("" if st["truth"] is None else f", truth {st['truth']:.6g}"))
    print(f"{npe.num_simulations} simulations ({npe.rejected} rejected, NaN/inf), {npe.step} steps -> {args.out}")
    return 0
