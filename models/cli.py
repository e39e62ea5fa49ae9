"""``oceanbridge train | sample | evaluate``: offline use of the surrogate on netCDF files.

deploy/cli.py dispatches the verbs here by name; each returns an exit code
(0 ok, 2 bad input: the message names what did not match).
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import OBJECTIVES, ModelConfig, TrainConfig, level_multipliers
from .data import (
    Batch,
    DataSpec,
    MissingVariableError,
    PairDataset,
    base_variables,
    describe_file,
    grid_position,
    read_member,
)
from .evaluate import CHANNEL_ATTR, evaluate, read_samples, write_evaluation
from .ncio import cf_attrs, write_ensemble
from .sampling import SamplerConfig
from .surrogate import Surrogate, SurrogateConfig
from .train import Trainer

__all__ = ["cli_verb", "train_main", "sample_main", "evaluate_main"]

log = logging.getLogger("oceanbridge")


def cli_verb(func):
    """A verb's entry point ``<verb>_main(argv)``: bad input (ValueError, FileNotFoundError, OSError) ends
    with one clear line on stderr and exit code 2, not a traceback."""
    @functools.wraps(func)
    def wrapper(argv=None) -> int:
        try:
            return func(sys.argv[1:] if argv is None else list(argv))
        except (ValueError, FileNotFoundError, OSError) as err:
            print(f"oceanbridge {func.__name__.split('_')[0]}: error: {err}", file=sys.stderr)
            return 2
    return wrapper


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=TrainConfig.device, help="auto (cuda if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _setup(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


# ----------------------------------------------------------------------------- train


DEFAULT_VARIABLES = ["ssh", "u", "v", "temp"]


def _with_spec(spec: DataSpec, ours: str, files, read):
    """``read()`` data that must match ``spec``; any mismatch names both sides."""
    try:
        data = read()
    except MissingVariableError:
        theirs = "; ".join(f"data file {f} has {describe_file(f)}" for f in ([files] if isinstance(files, str) else files))
        raise ValueError(f"{ours} expects {spec.describe()}, {theirs}") from None
    spec.check_matches(data.spec, ours, f"data file {getattr(data, 'path', files)}")
    return data


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oceanbridge train", description="Train a surrogate offline from netCDF files "
                                "(one file per ensemble member / parameter set).")
    p.add_argument("--data", nargs="+", required=True, help="netCDF files in the oceanbridge convention")
    p.add_argument("--variables", nargs="+", default=None,
                   help="fields to learn (default: ssh u v temp; on --resume: the checkpoint's)")
    p.add_argument("--out", required=True, help="checkpoint path (written atomically)")
    p.add_argument("--task", choices=["emulate", "generate"], default="emulate")
    p.add_argument("--objective", choices=OBJECTIVES, default=ModelConfig.objective)
    p.add_argument("--lag", type=int, default=1, help="records between x_t and x_{t+lag} (emulate)")
    p.add_argument("--skip", type=int, default=0, help="leading records not used as targets (spin-up)")
    p.add_argument("--cond-on-initial", action="store_true", help="generate: also condition on record 0")
    p.add_argument("--steps", type=int, default=1000, help="total optimizer steps (resume continues to it)")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--channels", type=int, default=ModelConfig.model_channels, help="U-Net base channels")
    p.add_argument("--channel-mult", type=_ints, default=level_multipliers(ModelConfig.levels),
                   help="per-level multipliers, e.g. 1,2,2")
    p.add_argument("--res-blocks", type=int, default=ModelConfig.num_res_blocks)
    p.add_argument("--whiten", type=float, default=ModelConfig.spectral_whitening, metavar="EXPONENT",
                   help="spectral whitening exponent in [0, 1] (models/whiten.py; 0: off)")
    p.add_argument("--tile", type=int, default=None, help="train on random tiles of this size (adds position)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    _common(p)
    return p


@cli_verb
def train_main(argv) -> int:
    args = _train_parser().parse_args(argv)
    _setup(args)
    out = Path(args.out)
    trainer = Trainer.load(out, device=args.device) if args.resume and out.exists() else None
    if trainer is None:
        dataset = PairDataset(args.data, args.variables or DEFAULT_VARIABLES, lag=args.lag, task=args.task,
                              cond_on_initial=args.cond_on_initial, skip=args.skip)
        config = SurrogateConfig(dataset.spec, task=args.task, objective=args.objective,
                                 cond_on_initial=args.cond_on_initial, use_position=args.tile is not None,
                                 lag=args.lag, model_channels=args.channels, channel_mult=args.channel_mult,
                                 num_res_blocks=args.res_blocks, spectral_whitening=args.whiten)
        trainer = Trainer(Surrogate(config), TrainConfig(batch_size=args.batch_size, lr=args.lr, tile=args.tile,
                                                         seed=args.seed, device=args.device))
    else:
        cfg = trainer.model.config
        variables = args.variables or base_variables(cfg.spec.channels)
        dataset = _with_spec(cfg.spec, f"checkpoint {out}", args.data, lambda: PairDataset(
            args.data, variables, lag=cfg.lag, task=cfg.task, cond_on_initial=cfg.cond_on_initial, skip=args.skip))
        log.info("resuming %s at step %d", out, trainer.step)
    log.info("%d samples from %d file(s), %d rejected (NaN/inf); %s", len(dataset), len(args.data),
             dataset.rejected, dataset.spec.describe())
    history = trainer.fit(dataset, args.steps, checkpoint=out, checkpoint_every=args.checkpoint_every,
                          progress=not args.no_progress)
    trainer.save(out)
    last = np.mean([h["loss"] for h in history[-20:]]) if history else float("nan")
    print(f"trained {trainer.model.config.objective} surrogate to step {trainer.step}: loss {last:.4f}, "
          f"{trainer.throughput:.1f} samples/s, {len(dataset)} samples, {dataset.rejected + trainer.rejected} "
          f"rejected (NaN/inf) -> {out}")
    return 0


# ----------------------------------------------------------------------------- sample


def _sample_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oceanbridge sample", description="Sample a trained surrogate to netCDF: "
                                "one-step emulation from records of a data file, autoregressive rollouts, "
                                "or generated states for given parameters.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="file giving initial states, θ, mask and grid")
    p.add_argument("--out", required=True, help="netCDF output (member, time, y, x)")
    p.add_argument("--records", default="all", help="source records: 'all', 'a:b' or 'i,j,k' (emulate)")
    p.add_argument("--rollout", type=int, default=1, help="autoregressive steps from the first record")
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--num-steps", type=int, default=SamplerConfig.num_steps, help="Heun steps (NFE = 2N - 1)")
    p.add_argument("--churn", type=float, default=0.0, help="S_churn (0: deterministic Alg. 1)")
    p.add_argument("--theta", nargs="*", default=[], help="override parameters, e.g. tau0=0.12")
    p.add_argument("--chunk", type=int, default=64, help="samples per network call")
    p.add_argument("--raw-weights", action="store_true", help="use raw instead of EMA weights")
    _common(p)
    return p


def _records(text: str, n_sources: int) -> list[int]:
    if text == "all":
        return list(range(n_sources))
    if ":" in text:
        return list(range(n_sources))[slice(*(int(v) if v else None for v in text.split(":")))]
    return [int(v) for v in text.split(",")]


def _theta(member, overrides: list[str]) -> torch.Tensor:
    theta = dict(zip(member.params, member.theta.tolist()))
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in theta:
            raise ValueError(f"--theta {name}: the data file's parameters are {list(member.params)}")
        theta[name] = float(value)
    return torch.tensor([list(theta.values())], dtype=torch.float32)


@cli_verb
def sample_main(argv) -> int:
    args = _sample_parser().parse_args(argv)
    _setup(args)
    trainer = Trainer.load(args.checkpoint, device=args.device)
    model, cfg = (trainer.model if args.raw_weights else trainer.ema), trainer.model.config
    member = _with_spec(cfg.spec, f"checkpoint {args.checkpoint}", args.data,
                        lambda: read_member(args.data, base_variables(cfg.spec.channels)))
    sampler = SamplerConfig(num_steps=args.num_steps, S_churn=args.churn)
    gen = torch.Generator(trainer.device).manual_seed(args.seed)
    dev = trainer.device
    theta = _theta(member, args.theta).to(dev) if cfg.spec.params else None
    mask = torch.from_numpy(member.mask)[None, None].to(dev)
    pos = grid_position(0, 0, cfg.spec.nx, cfg.spec.ny, cfg.spec.nx, cfg.spec.ny)[None].to(dev) \
        if cfg.use_position else None
    fields = torch.from_numpy(member.fields).to(dev)

    def draw(state: torch.Tensor | None, n: int) -> torch.Tensor:
        b = 1 if state is None else len(state)
        cond = Batch(None, state, None if theta is None else theta.expand(b, -1), mask, pos)
        return model.sample(cond, n, sampler, gen, tile=trainer.config.tile)

    t0 = time.perf_counter()
    if cfg.task == "generate":
        out, targets = draw(fields[:1] if cfg.has_state else None, args.members), np.array([-1])
    elif args.rollout > 1:
        first = _records(args.records, len(fields))[0]
        out, targets = _rollout(draw, fields[first], args, len(fields), first, cfg.lag)
    else:
        recs = [r for r in _records(args.records, len(fields) - cfg.lag) if np.isfinite(member.fields[r]).all()]
        per = max(1, args.chunk // args.members)
        chunks = [recs[i:i + per] for i in range(0, len(recs), per)]
        out = torch.cat([draw(fields[c], args.members)
                         for c in tqdm(chunks, desc="sample", disable=args.no_progress, unit="chunk")])
        targets = np.array(recs) + cfg.lag
    elapsed = time.perf_counter() - t0
    n_samples = out.shape[0] * out.shape[1]
    members = out.permute(1, 0, 2, 3, 4).cpu().numpy()  # (n, T, C, ny, nx)
    _write_samples(args, member, cfg, members, targets, model.nfe(sampler), elapsed / n_samples)
    print(f"{n_samples} samples ({model.nfe(sampler)} NFE each) in {elapsed:.1f} s = "
          f"{1000 * elapsed / n_samples:.1f} ms/sample on {dev} -> {args.out}")
    return 0


def _rollout(draw, start, args, n_records, first, lag):
    """Autoregressive trajectories, one per member: each step conditions on the member's own previous state."""
    state = start.unsqueeze(0).expand(args.members, -1, -1, -1)
    steps = []
    for _ in tqdm(range(args.rollout), desc="rollout", disable=args.no_progress, unit="step"):
        state = draw(state, 1)[:, 0]
        steps.append(state)
    out = torch.stack(steps, dim=1).permute(1, 0, 2, 3, 4)  # (T, n, ...)
    targets = np.array([first + (k + 1) * lag for k in range(args.rollout)])
    return out, np.where(targets < n_records, targets, -1)


def _write_samples(args, member, cfg: SurrogateConfig, members: np.ndarray, targets: np.ndarray, nfe: int,
                   sec_per_sample: float) -> None:
    dt = float(member.time[1] - member.time[0]) if len(member.time) > 1 else 0.0
    time_ = np.array([member.time[t] if t >= 0 else member.time[-1] + dt for t in targets])
    data = {c: members[:, :, i] for i, c in enumerate(cfg.spec.channels)}
    var_attrs = {c: {**cf_attrs(c, member.var_attrs.get(c.split("@")[0])), CHANNEL_ATTR: c} for c in data}
    extra = {"target_record": (("time",), targets.astype("i4"),
                               {"long_name": "index of the true record in the data file (-1: none)", "units": "1"})}
    attrs = {"title": f"oceanbridge {cfg.objective} surrogate samples ({cfg.task})",
             "source": f"checkpoint {args.checkpoint}", "data_file": str(args.data),
             "objective": cfg.objective, "task": cfg.task, "sampler_num_steps": args.num_steps,
             "sampler_S_churn": args.churn, "nfe_per_sample": nfe, "seconds_per_sample": sec_per_sample,
             "parameters_used": json.dumps(dict(zip(member.params, _theta(member, args.theta)[0].tolist())))}
    write_ensemble(args.out, {c.replace("@", "_z"): v for c, v in data.items()}, member.mask, member.x, member.y,
                   time_, extra, attrs, {c.replace("@", "_z"): a for c, a in var_attrs.items()},
                   time_units=member.time_units, calendar=member.calendar)


# ----------------------------------------------------------------------------- evaluate


def _evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oceanbridge evaluate", description="Score samples against the truth: RMSE, "
                                "fair CRPS, spread/skill, rank histograms, spectra, physical diagnostics.")
    p.add_argument("--data", required=True, help="the data file the samples were drawn from")
    p.add_argument("--samples", required=True, help="output of 'oceanbridge sample'")
    p.add_argument("--out", required=True, help="folder for evaluation.nc, evaluation.json and PNGs")
    p.add_argument("--json", default=None, help="also copy the scores to this JSON path")
    return p


@cli_verb
def evaluate_main(argv) -> int:
    args = _evaluate_parser().parse_args(argv)
    samples = read_samples(args.samples)
    results = evaluate(args.data, samples)
    write_evaluation(results, samples, args.out, {"data_file": args.data, "samples_file": args.samples})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(_table(results))
    return 0


def _table(results: dict) -> str:
    keys = ["rmse", "crps", "spread_skill", "high_k_ratio"] if results["paired"] else \
        ["mean_bias", "std_ratio", "high_k_ratio"]
    lines = [f"{'channel':<10}" + "".join(f"{k:>14}" for k in keys)]
    for c, s in results["channels"].items():
        lines.append(f"{c:<10}" + "".join(f"{s.get(k, float('nan')):>14.4g}" for k in keys))
    lines += [f"{k}: {v:.4g}" for k, v in results["physics"].items()]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- oceanbridge infer


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
    from .posterior_products import posterior_products, read_observation  # sbi: only this verb pays its import
    from .sbi import NPE, BoxUniform, NPEConfig
    torch.manual_seed(args.seed)
    names, low, high, units = zip(*args.prior)
    prior = BoxUniform(low, high, names=names, units=units)
    theta, x, mask, channels = _simulations(args.data, args.variables, names, args.skip)
    npe = NPE(prior, NPEConfig(estimator=args.estimator, components=args.components, max_epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed), mask=mask)
    npe.append_simulations(theta, x).train(progress=not args.no_progress)
    observed, truth = read_observation(args.observation, channels, args.record, names, x.shape[-2:])
    stats = posterior_products(npe, observed, truth, args.samples, args.quantiles, args.out,
                               Path(args.plot) if args.plot else None,
                               {"observation": str(args.observation), "observation_record": args.record,
                                "data": " ".join(map(str, args.data))})
    for name, st in stats.items():
        print(f"{name}: posterior mean {st['mean']:.6g}, std {st['std']:.6g}"
              + ("" if st["truth"] is None else f", truth {st['truth']:.6g}"))
    print(f"{npe.num_simulations} simulations ({npe.rejected} rejected, NaN/inf), {npe.step} steps -> {args.out}")
    return 0
