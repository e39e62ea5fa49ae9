"""``oceanbridge spinup-start CONFIG``: start gyre members from states generated for their θ, run them, judge them.

CONFIG is a deploy config whose ``[worker] modes`` include ``spinup``, whose ``[worker.spinup] checkpoint`` is a
``generator.pt`` (the ``generate`` mode's, or ``oceanbridge train --task generate``'s) and whose members' θ are
the new θ* (``[[parameters]] values``, or the ``[ensemble]`` design's draw). The command checks all of it before
anything starts, then runs preprod and the MPMD job as ``oceanbridge launch`` does (one run-folder lock over
both), with a progress bar over the members' model years: the worker sends each member the state generated for
its θ (``<name>_init``, ``ln_obr_spinup``; written to ``[worker.spinup] output``, ``initial.nc``) and the
members run from it. Then, in the run folder:

- ``metrics_<member>.nc``: every metric's time series of the member's fields output (CF, models/ocean_metrics);
- ``spinup_states.png``: the state each member started from (the generated one) beside the control's last state
  (``--control``), else beside each member's state at the end of the run;
- ``spinup_metrics.png``: every metric after the start, every member, the control's mean ± 2 std band;
- ``spinup_start.json``: θ*, the files, the annual means and (``--control``) each metric's offset from the
  control in control interannual standard deviations, also printed as a table.

``--years N`` and ``--samples K`` override ``[run] steps`` and ``[ocean] members``: the job then runs from
``<run_dir>/spinup_start.toml``, the config with those values (the worker reads its config from a file).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np

log = logging.getLogger("deploy.spinup_start")
VERB = "spinup-start"


class StartError(ValueError):
    """The config cannot start members from a generated state; the message names the key or file."""


# ----------------------------------------------------------------------------- the config
def derived_config(source: Path, run_dir: Path, years: float | None, samples: int | None, dt: float) -> Path:
    """The config with ``[run] steps`` for ``years`` model years and ``[ocean] members`` = ``samples``, written to
    ``run_dir/spinup_start.toml`` with its paths made absolute."""
    from bridge.config.tomlio import absolute_paths, dump_toml
    from models.ncio import atomic_write
    from models.ocean_metrics import YEAR
    with open(source, "rb") as fh:
        raw = absolute_paths(tomllib.load(fh), source.parent)
    raw.setdefault("run", {})["run_dir"] = str(run_dir)
    if years is not None:
        raw["run"]["steps"] = max(1, round(years * YEAR / dt))
    if samples is not None:
        raw.setdefault("ocean", {})["members"] = samples
    text = f"# {source} with the overrides of 'oceanbridge {VERB}'\n" + dump_toml(raw)
    return atomic_write(run_dir / "spinup_start.toml", lambda tmp: Path(tmp).write_text(text))


def namrun_value(cfg, var: str, default):
    """A &namrun value of the members: the namelist template's, else the reference namelist's, else ``default``."""
    from bridge.config.namelist import read_value
    for path in (cfg.namelist_template, cfg.ocean.namelist_ref):
        if path is not None and Path(path).is_file():
            value = read_value(Path(path), "namrun", var)
            if value is not None:
                return value
    return default


def check_start(cfg, settings) -> None:
    """Everything a start from a generated state needs, before preprod and the launch."""
    from bridge.worker.tunnel import channel_names
    from models.train import Trainer
    src = cfg.source
    if "spinup" not in cfg.worker.modes:
        raise StartError(f"{src}: [worker] modes {list(cfg.worker.modes)} lacks 'spinup': members start from a "
                         "generated state only in the spinup mode (add \"spinup\" and a '<name>_init' "
                         "worker_to_ocean field for every state field)")
    if cfg.ocean.model != "gyre":
        raise StartError(f"{src}: [ocean] model is '{cfg.ocean.model}'; {VERB} judges gyre members (their "
                         "fields output); for another model use 'oceanbridge launch'")
    path = settings.spinup.checkpoint
    if not path.is_file():
        raise StartError(f"{src}: [worker.spinup] checkpoint {path}: file not found (a generator.pt written by the "
                         "worker's generate mode, or by 'oceanbridge train --task generate')")
    try:
        generator = Trainer.load(path, device="cpu")
    except Exception as err:  # noqa: BLE001 -- any unreadable file: name it
        raise StartError(f"{src}: [worker.spinup] checkpoint {path} cannot be loaded: {err}") from None
    spec, config = generator.spec, generator.model.config
    if config.task != "generate" or config.cond_on_initial:
        raise StartError(f"{src}: [worker.spinup] checkpoint {path} holds a '{config.task}' surrogate; it must be a "
                         "'generate' one (p(state | θ))")
    names = tuple(p.name for p in cfg.parameters)
    wanted = {"parameters": (spec.params, names), "channels": (spec.channels, channel_names(cfg)),
              "grid (ny, nx)": ((spec.ny, spec.nx), (cfg.ocean.ny, cfg.ocean.nx))}
    for what, (theirs, ours) in wanted.items():
        if tuple(theirs) != tuple(ours):
            raise StartError(f"{src}: [worker.spinup] checkpoint {path} was trained with {what} {tuple(theirs)}, "
                             f"the config has {tuple(ours)}")
    if int(namrun_value(cfg, "nn_write", 0)) <= 0:
        raise StartError(f"{src}: the members write no fields output (&namrun nn_write = 0 in "
                         f"{cfg.namelist_template}): set it, {VERB} judges the members from it")


def read_control(path: Path, cfg, years: int) -> tuple[dict, np.ndarray]:
    """The control's annual means over its last ``years`` complete years, and its last state."""
    from bridge.worker.spinup_report import METRICS, annual_of, read_state
    from models.ocean_metrics import evaluate_file
    if not path.is_file():
        raise StartError(f"--control {path}: file not found (a gyre fields file of a physical spin-up at θ*)")
    try:
        series = annual_of(evaluate_file(path, METRICS))
        state = read_state(path, -1)
    except (OSError, ValueError, KeyError, IndexError) as err:
        raise StartError(f"--control {path}: not a gyre fields file ({err})") from None
    if state.shape[1:] != (cfg.ocean.ny, cfg.ocean.nx):
        raise StartError(f"--control {path}: grid {state.shape[1:]}, the config's is {(cfg.ocean.ny, cfg.ocean.nx)}")
    have = len(series[METRICS[0]])
    if have < 2:
        raise StartError(f"--control {path}: {have} complete model year(s); its interannual standard deviation "
                         "needs at least 2")
    if have < years:
        log.warning("--control %s holds %d complete model years, fewer than --control-years %d: using them all",
                    path, have, years)
    return {m: v[-years:] for m, v in series.items()}, state


# ----------------------------------------------------------------------------- the run
def fields_files(cfg) -> dict[str, Path]:
    """Every member's fields output: <member folder>/<cn_exp>_fields.nc."""
    exp = str(namrun_value(cfg, "cn_exp", "gyre")).strip()
    return {comp: cfg.member_dir(k) / f"{exp}_fields.nc" for k, comp in enumerate(cfg.components, start=1)}


def model_years(path: Path, origin: float, since: float) -> float:
    """Model years a fields file being written has reached (0 while it cannot be read, or is older than ``since``)."""
    import netCDF4

    from models.ocean_metrics import YEAR, seconds_per_unit
    try:
        if path.stat().st_mtime < since:
            return 0.0
        with netCDF4.Dataset(path) as ds:
            t = ds["time"]
            if len(t) == 0:
                return 0.0
            return (float(t[-1]) * seconds_per_unit(t.units) - origin) / YEAR
    except (OSError, KeyError, IndexError, ValueError, RuntimeError):
        return 0.0


def launch_with_progress(cfg, launcher: str, command: str, years: float, progress: bool) -> int:
    """preprod and the job (deploy.commands.launch_job), a progress bar over the slowest member's model years."""
    from tqdm.auto import tqdm

    from deploy.commands import launch_job
    files, origin, since = fields_files(cfg), (cfg.run.nit000 - 1) * cfg.run.dt, time.time()
    done = threading.Event()
    bar = tqdm(total=round(years, 3), desc=f"{cfg.ocean.members} member(s)", unit="model yr", file=sys.stderr,
               disable=not progress, bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} model yr [{elapsed}<{remaining}]")

    def follow() -> None:
        while not done.wait(1.0):
            bar.n = round(min(min(model_years(p, origin, since) for p in files.values()), years), 3)
            bar.refresh()

    watcher = threading.Thread(target=follow, name="spinup-start progress", daemon=True)
    watcher.start()
    status = None
    try:
        status = launch_job(cfg, launcher, command, prepare=True)
        return status
    finally:
        done.set()
        watcher.join()
        # the last fields record may fall short of the run's end (nn_write does not divide it)
        bar.n = round(years, 3) if status == 0 else bar.n
        bar.close()


# ----------------------------------------------------------------------------- the report
def report(cfg, control: tuple[dict, np.ndarray] | None = None, control_path: Path | None = None) -> dict:
    """Metrics files, figures and the summary of a finished run of ``cfg`` (the run folder's member outputs)."""
    from bridge.config.ensemble import draw_parameters
    from bridge.worker.spinup_report import METRICS, annual_of, judge, plot_metrics, plot_states, read_state
    from models.ncio import atomic_write
    from models.ocean_metrics import YEAR, evaluate_file, seconds_per_unit, write_metrics
    run_dir = cfg.run.run_dir
    theta, names = dict(zip(cfg.components, draw_parameters(cfg))), [p.name for p in cfg.parameters]
    members, series, times, starts, ends = {}, {}, {}, {}, {}
    for comp, fields in fields_files(cfg).items():
        if not fields.is_file():
            raise StartError(f"member '{comp}' wrote no fields output {fields}")
        run = evaluate_file(fields, METRICS)
        out = write_metrics(run_dir / f"metrics_{comp}.nc", run,
                            title=f"oceanbridge {VERB}: physical metrics of member {comp} started from a "
                                  "generated state")
        seconds = run.time * seconds_per_unit(run.time_units)
        series[comp], times[comp] = run.series, (seconds - seconds[0]) / YEAR
        starts[comp], ends[comp] = read_state(fields, 0), read_state(fields, -1)
        means = annual_of(run)
        members[comp] = {"theta": dict(zip(names, map(float, theta[comp]))), "fields": str(fields),
                         "metrics": str(out), "annual_means": {m: v.tolist() for m, v in means.items()},
                         "first": {m: float(v[0]) for m, v in run.series.items()},
                         "last": {m: float(v[-1]) for m, v in run.series.items()}}
        if control is not None:
            if not len(means[METRICS[0]]):
                raise StartError(f"member '{comp}' ran {times[comp][-1]:.2f} model years: the offsets from the "
                                 "control need at least one complete year ([run] steps or --years)")
            members[comp]["scores"] = judge(means, control[0])
    years = cfg.run.steps * cfg.run.dt / YEAR
    if control is not None:
        plot_states(run_dir / "spinup_states.png", control[1], {f"{c} generated": s for c, s in starts.items()},
                    reference="control (last state)")
    else:
        first = next(iter(ends))
        columns = {}
        for comp in starts:
            columns[f"{comp} generated"] = starts[comp]
            if comp != first:
                columns[f"{comp} after {years:.3g} yr"] = ends[comp]
        plot_states(run_dir / "spinup_states.png", ends[first], columns, reference=f"{first} after {years:.3g} yr")
    plot_metrics(run_dir / "spinup_metrics.png", None if control is None else control[0], series, times)
    summary = {"config": str(cfg.source), "years": years, "metrics": list(METRICS), "members": members,
               "generated": str(run_dir / _initial_name(cfg)),
               "figures": [str(run_dir / "spinup_states.png"), str(run_dir / "spinup_metrics.png")],
               "control": None if control is None else {"file": str(control_path),
                                                        "years": len(control[0][METRICS[0]])}}
    atomic_write(run_dir / "spinup_start.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    return summary


def _initial_name(cfg) -> str:
    from bridge.worker.settings import worker_settings
    return worker_settings(cfg).spinup.output


def table(summary: dict) -> str:
    """The printed summary: per metric and member, the offset from the control (or the start and end values)."""
    from bridge.worker.spinup_report import WITHIN
    members = summary["members"]
    lines = [f"{len(members)} member(s) started from generated states, {summary['years']:.2f} model years; "
             f"generated states: {summary['generated']}"]
    lines += [f"  {c}: θ* = {', '.join(f'{k} {v:.6g}' for k, v in m['theta'].items())}" for c, m in members.items()]
    if summary["control"] is None:
        lines.append(f"{'metric':<14}" + "".join(f"{c + ' start -> end':>30}" for c in members))
        for metric in summary["metrics"]:
            lines.append(f"{metric:<14}" + "".join(f"{m['first'][metric]:>14.4g} -> {m['last'][metric]:<12.4g}"
                                                     for m in members.values()))
    else:
        ctl = summary["control"]
        lines.append(f"offset from the control (mean of the years after the start / largest yearly offset, in "
                     f"control interannual std; control: last {ctl['years']} years of {ctl['file']})")
        lines.append(f"{'metric':<14}" + "".join(f"{c:>18}" for c in members))
        for metric in summary["metrics"]:
            lines.append(f"{metric:<14}" + "".join(
                f"{m['scores'][metric]['offset']:>10.2f}/{m['scores'][metric]['max_offset']:<7.2f}"
                for m in members.values()))
        verdict = {c: max(s["max_offset"] for s in m["scores"].values()) <= WITHIN for c, m in members.items()}
        lines.append(f"within {WITHIN:g} std in every metric and year: "
                     + ", ".join(f"{c} {'yes' if ok else 'no'}" for c, ok in verdict.items()))
    lines.append("wrote " + ", ".join([*(Path(m["metrics"]).name for m in members.values()),
                                       *(Path(f).name for f in summary["figures"]), "spinup_start.json"])
                 + f" in {Path(summary['figures'][0]).parent}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the verb
def main(argv: list[str] | None = None) -> int:
    from bridge.worker.settings import worker_settings
    from deploy.commands import INVALID, NOT_READY, load_checked
    from deploy.launch import LAUNCHERS, default_launcher
    p = argparse.ArgumentParser(prog=f"oceanbridge {VERB}", description=(__doc__ or "").split("\n\n")[0],
                                epilog="Example: deploy/gyre/spinup_start.toml")
    p.add_argument("config", type=Path, help="deploy config (TOML) with the spinup mode")
    p.add_argument("--years", type=float, help="model years to run from the generated state (default: [run] steps)")
    p.add_argument("--samples", type=int, help="members, each from its own generated sample (default: [ocean] "
                   "members); with one [[parameters]] value each, all at that θ*")
    p.add_argument("--control", type=Path, help="fields file of a physically spun-up control at θ*: the figures and "
                   "the offsets are against it")
    p.add_argument("--control-years", type=int, default=10, help="the control's last years that give its mean and "
                   "interannual std (default 10)")
    p.add_argument("--launcher", choices=("auto", *LAUNCHERS), default="auto",
                   help="auto: srun inside a SLURM allocation, else mpirun")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    launcher = default_launcher() if args.launcher == "auto" else args.launcher
    command = shlex.join(["oceanbridge", VERB, *(sys.argv[1:] if argv is None else argv)])
    try:
        cfg = load_checked(args.config)
        if args.years is not None or args.samples is not None:
            if args.years is not None and not args.years > 0:
                raise StartError(f"--years must be > 0, got {args.years}")
            cfg = load_checked(derived_config(cfg.source, cfg.run.run_dir, args.years, args.samples, cfg.run.dt))
            log.info("running %s (the config with --years/--samples)", cfg.source)
        settings = worker_settings(cfg)
        check_start(cfg, settings)
        control = None if args.control is None else read_control(args.control.resolve(), cfg, args.control_years)
    except (StartError, *INVALID) as err:
        print(f"oceanbridge {VERB}: error: {err}", file=sys.stderr)
        return 2
    from models.ocean_metrics import YEAR
    years = cfg.run.steps * cfg.run.dt / YEAR
    log.info("%d member(s) start from states generated by %s and run %.2f model years in %s", cfg.ocean.members,
             settings.spinup.checkpoint, years, cfg.run.run_dir)
    try:
        status = launch_with_progress(cfg, launcher, command, years, progress=not args.no_progress)
    except NOT_READY as err:
        print(f"oceanbridge {VERB}: error: {err}", file=sys.stderr)
        return 1
    except INVALID as err:
        print(f"oceanbridge {VERB}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"oceanbridge {VERB}: SIGINT received before the job started; nothing was launched", file=sys.stderr)
        return 130
    if status != 0:
        print(f"oceanbridge {VERB}: the job failed (exit status {status}); see the output above and "
              f"{cfg.run.run_dir}", file=sys.stderr)
        return status
    try:
        summary = report(cfg, control, None if args.control is None else args.control.resolve())
    except StartError as err:
        print(f"oceanbridge {VERB}: error: {err}", file=sys.stderr)
        return 1
    print(table(summary))
    return 0
