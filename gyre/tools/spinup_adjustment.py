"""How slowly does a gyre configuration equilibrate: a spin-up from rest and each metric's adjustment time.

usage: python gyre/tools/spinup_adjustment.py --years 120 [--cfg gyre/cfg/namelist_spinup_cfg] --out DIR
       [--set namphys.rn_trelax=7300.0 ...] [--json PATH] [--no-run] [--timeout S]

1. run: gyre from rest for `--years` model years (365-day years) on 1 rank, in DIR/run, with `--cfg` as its
   namelist_cfg (nn_itend replaced, `--set` values put in); a progress bar follows the fields file;
2. metrics: every metric of models/ocean_metrics.METRICS for every fields record, written to
   DIR/spinup_metrics.nc (CF-1.8 time series, ``write_run_metrics``'s layout);
3. adjustment: for each metric, the series "rest state at t = 0, then the annual means at mid-year" (a
   metric undefined at rest, the jet's latitude, starts at its first finite record), and
   - `adjust_years`: its e-folding time, models/equilibrium.adjustment_time, method "crossing" (the first
     time it has covered 1 - 1/e of the way from its start to the mean of its last 10 years);
   - `fit_years`: the same by the least-squares fit a + b exp(-t/tau), as a cross-check;
   - `equilibrated_year`: the detector's first equilibrated year (models/equilibrium.first_equilibrated on
     the annual means: the end of the first 10-year window whose trend is within 2 interannual std per 10 years);
   printed as a table, with the cost: gyre's own time-loop timer and the wall time of the launch, each per
   model year. `--json` writes the same figures. `--no-run` analyses the run already in DIR/run.
Namelist values given with --set are parsed as Python literals (numbers, True/False, quoted strings).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

import gyrerun
from twin import parse_sets, timing

sys.path.insert(0, str(gyrerun.REPO))
from models import equilibrium as eq  # noqa: E402
from models import ocean_metrics as om  # noqa: E402

log = logging.getLogger("gyre.spinup")
DEFAULT_CFG = gyrerun.GYRE_DIR / "cfg" / "namelist_spinup_cfg"
CONSTANT = 1e-9  # relative range below which a metric's series is constant (round-off)
STDOUT = "gyre.out"  # gyre's standard output, kept in the run directory (the timings of --no-run come from it)
WALL = "launch_wall_s"  # the launch's wall time (s), kept beside it for --no-run


# ----------------------------------------------------------------------------- the namelist


def set_value(text: str, block: str, var: str, value: str, source: str = "namelist_cfg") -> str:
    """namelist text with ``var = value`` in ``&block``: the variable's line replaced, else added, else the block."""
    sect = re.search(rf"^\s*&{block}\b.*?^\s*/", text, re.S | re.M | re.I)
    if not sect:
        return text.rstrip("\n") + f"\n&{block}\n   {var} = {value}\n/\n"
    body = sect.group(0)
    line = re.compile(rf"^(\s*){re.escape(var)}\s*=[^!\n]*", re.M | re.I)
    if line.search(body):
        new = line.sub(lambda m: f"{m.group(1)}{var} = {value} ", body, count=1)
    else:
        new = re.sub(r"^(\s*/)", rf"   {var} = {value}\n\1", body, count=1, flags=re.M)
    if new == body:
        raise ValueError(f"{source}: could not set &{block} {var}")
    return text[:sect.start()] + new + text[sect.end():]


def get_value(text: str, block: str, var: str) -> str | None:
    """The raw value of ``var`` in ``&block`` of a namelist text, or None."""
    sect = re.search(rf"^\s*&{block}\b(.*?)^\s*/", text, re.S | re.M | re.I)
    m = sect and re.search(rf"^\s*{re.escape(var)}\s*=\s*([^!\n]*)", sect.group(1), re.M | re.I)
    return m.group(1).strip().rstrip(",").strip() if m else None


def steps_per_year(cfg_text: str, cfg_name: str) -> int:
    """Time steps per 365-day year; rn_dt from the cfg, else namelist_ref. A dt that does not divide it raises."""
    raw = get_value(cfg_text, "namrun", "rn_dt") or get_value(gyrerun.NAMELIST_REF.read_text(), "namrun", "rn_dt")
    try:
        dt = float(raw.lower().replace("d", "e"))
    except (AttributeError, ValueError):
        raise ValueError(f"{cfg_name}: &namrun rn_dt = {raw!r} is not a number") from None
    steps = eq.YEAR / dt
    if not (dt > 0 and abs(steps - round(steps)) < 1e-9):
        raise ValueError(f"{cfg_name}: &namrun rn_dt = {dt} s does not divide a 365-day year: the annual means "
                         f"need whole years")
    return int(round(steps))


def run_cfg(cfg_path: Path, years: int, sets: dict[str, dict]) -> tuple[str, int]:
    """The run's namelist_cfg text (nn_itend for ``years``, the --set values) and its steps per year."""
    if not cfg_path.is_file():
        raise FileNotFoundError(f"--cfg {cfg_path}: no such file")
    text = cfg_path.read_text()
    for block, values in sets.items():
        for var, value in values.items():
            text = set_value(text, block, var, gyrerun._fmt(value), str(cfg_path))
    per_year = steps_per_year(text, str(cfg_path))
    if not (isinstance(years, int) and years >= 1):
        raise ValueError(f"--years must be a whole number of model years >= 1, got {years!r}")
    return set_value(text, "namrun", "nn_itend", str(years * per_year), str(cfg_path)), per_year


# ----------------------------------------------------------------------------- the run


def fields_file(rundir: Path) -> Path | None:
    """The run's <cn_exp>_fields.nc (None while absent); several raise naming them."""
    found = sorted(rundir.glob("*_fields.nc"))
    if len(found) > 1:
        raise RuntimeError(f"{rundir}: several fields files {[p.name for p in found]}; use an empty --out")
    return found[0] if found else None


def records(path: Path | None) -> int:
    """Records written so far in a fields file being written (0 when it cannot be read yet)."""
    if path is None:
        return 0
    try:
        import netCDF4
        with netCDF4.Dataset(path) as ds:
            return len(ds.dimensions["time"])
    except (OSError, KeyError, RuntimeError):
        return 0


def launch(rundir: Path, years: int, records_per_year: float, timeout: float) -> tuple[str, float]:
    """Run gyre (1 rank) with a progress bar over model years; its stdout and the launch's wall time (s)."""
    from tqdm.auto import tqdm
    result: dict = {}

    def target():
        try:
            result["res"] = gyrerun.run_gyre(rundir, 1, timeout=timeout)
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread, which raises it
            result["exc"] = exc

    start = time.perf_counter()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    with tqdm(total=years, desc=f"gyre {rundir.name}", unit="model yr") as bar:
        while worker.is_alive():
            worker.join(2.0)
            bar.n = min(years, int(records(fields_file(rundir)) / records_per_year))
            bar.refresh()
    wall = time.perf_counter() - start
    if "exc" in result:
        raise result["exc"]
    res = result["res"]
    (rundir / STDOUT).write_text(res.output)
    (rundir / WALL).write_text(f"{wall!r}\n")
    if res.returncode != 0 or "gyre: normal end" not in res.stdout:
        raise RuntimeError(f"gyre failed in {rundir} (rc={res.returncode}):\n{res.output[-3000:]}")
    return res.stdout, wall


# ----------------------------------------------------------------------------- the analysis


def adjustment_series(seconds: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, x) = the start (first finite record) then the annual means at mid-year, and the annual means alone."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.empty(0), np.empty(0), np.empty(0)
    first = int(np.argmax(finite))  # the jet's latitude is NaN at rest: it starts where the jet exists
    s, x = seconds[first:][finite[first:]], values[first:][finite[first:]]
    years, annual = eq.annual_means(s, x)
    # the start value keeps "from rest" in the series; the annual means after it filter the eddies
    t = np.concatenate([[s[0]], (years + 0.5) * eq.YEAR])
    return t, np.concatenate([[x[0]], annual]), annual


def adjust_metric(seconds: np.ndarray, values: np.ndarray, config: eq.EquilibriumConfig) -> dict:
    """One metric's final annual mean, adjustment time (crossing and fit, years) and first equilibrated year."""
    t, x, annual = adjustment_series(seconds, values)
    if len(annual) < 2 or np.ptp(x) <= CONSTANT * np.abs(x).max():
        # a metric that does not move (the mean thickness without the outcrop guard) has no adjustment: its
        # round-off would otherwise "cross" its level at once
        return {"final": float(annual[-1]) if len(annual) else math.nan, "adjust_years": math.nan,
                "fit_years": math.nan, "equilibrated_year": None, "constant": len(annual) >= 2,
                "annual_means": [float(a) for a in annual]}
    cross = eq.adjustment_time(t, x, "crossing", config) / eq.YEAR
    fit = eq.adjustment_time(t, x, "fit", config) / eq.YEAR if len(x) >= 4 else math.nan
    equilibrated = eq.first_equilibrated(annual, config) if len(annual) >= config.window_years else None
    return {"final": float(annual[-1]), "adjust_years": float(cross), "fit_years": float(fit),
            "equilibrated_year": equilibrated, "constant": False, "annual_means": [float(a) for a in annual]}


def adjustment_table(run: om.RunMetrics, config: eq.EquilibriumConfig = eq.EquilibriumConfig()) -> dict:
    """{metric: adjust_metric(...) plus units} for every series of a run."""
    seconds = np.asarray(run.time, dtype=float) * om.seconds_per_unit(run.time_units)
    return {name: {"units": om.metric(name).units, **adjust_metric(seconds, values, config)}
            for name, values in run.series.items()}


def slowest(table: dict) -> tuple[str, float]:
    """The metric with the longest (finite) crossing adjustment time."""
    finite = {k: v["adjust_years"] for k, v in table.items() if math.isfinite(v["adjust_years"])}
    if not finite:
        return "", math.nan
    name = max(finite, key=finite.get)
    return name, finite[name]


def _fmt(x) -> str:
    if x is None:
        return "-"
    return "nan" if isinstance(x, float) and not math.isfinite(x) else f"{x:.4g}"


def format_table(table: dict) -> str:
    """The table a person reads: metric, units, final annual mean, adjustment times, first equilibrated year
    ("-": no 10-year window passed the detector, or fewer than 10 years)."""
    rows = [f"{'metric':<15} {'units':<6} {'final annual mean':>17} {'adjust (yr)':>11} {'fit (yr)':>9} "
            f"{'equilibrated (yr)':>17}"]
    for name, r in table.items():
        adjust = "constant" if r.get("constant") else _fmt(r["adjust_years"])
        rows.append(f"{name:<15} {r['units']:<6} {_fmt(r['final']):>17} {adjust:>11} "
                    f"{_fmt(r['fit_years']):>9} {_fmt(r['equilibrated_year']):>17}")
    return "\n".join(rows)


def cost(stdout: str, wall: float | None, years: int) -> dict:
    """gyre's time loop (its own timer) and the launch's wall time, in seconds per model year."""
    loop = re.search(r"time loop of (\d+) steps in ([\d.]+) s", stdout)
    if not loop:
        raise ValueError("gyre's output lacks its 'time loop of N steps in T s' line")
    steps_per_s, cfl = timing(stdout)
    return {"loop_s": float(loop.group(2)), "loop_s_per_year": float(loop.group(2)) / years,
            "wall_s": wall, "wall_s_per_year": None if wall is None else wall / years,
            "steps_per_s": steps_per_s, "cfl_max": cfl}


# ----------------------------------------------------------------------------- main


def measure(out: Path, cfg_path: Path, years: int, sets: dict[str, dict], timeout: float, do_run: bool) -> dict:
    """Run (unless do_run is False), write the metrics' CF time series, and return every figure."""
    cfg_text, per_year = run_cfg(cfg_path, years, sets)
    rundir = out / "run"
    wall = None
    if do_run:
        if fields_file(rundir) is not None:
            raise FileExistsError(f"{rundir} already holds a run: use an empty --out, or --no-run to analyse it")
        gyrerun.make_rundir(rundir, raw_cfg=cfg_text)
        write_every = float(get_value(cfg_text, "namrun", "nn_write") or 0)
        if write_every <= 0:
            raise ValueError(f"{cfg_path}: &namrun nn_write must be > 0: the metrics are computed from the fields")
        stdout, wall = launch(rundir, years, per_year / write_every, timeout)
    else:
        if not (rundir / STDOUT).is_file():
            raise FileNotFoundError(f"--no-run: {rundir / STDOUT} is missing (no finished run in {out})")
        stdout = (rundir / STDOUT).read_text()
        wall = float((rundir / WALL).read_text()) if (rundir / WALL).is_file() else None
    fields = fields_file(rundir)
    if fields is None:
        raise FileNotFoundError(f"{rundir}: the run wrote no *_fields.nc")
    run = om.evaluate_file(fields, progress=True)
    metrics_nc = om.write_metrics(out / "spinup_metrics.nc", run)
    table = adjustment_table(run)
    name, years_slowest = slowest(table)
    return {"cfg": str(cfg_path), "set": sets, "years": years, "fields": str(fields), "metrics_nc": str(metrics_nc),
            "method": "crossing", "cost": cost(stdout, wall, years), "slowest": {"metric": name,
            "adjust_years": years_slowest}, "metrics": table}


def report(fig: dict) -> str:
    c = fig["cost"]
    wall = "" if c["wall_s_per_year"] is None else f", launch wall time {c['wall_s_per_year']:.3g} s per model year"
    return (f"{format_table(fig['metrics'])}\n"
            f"slowest: {fig['slowest']['metric']} ({_fmt(fig['slowest']['adjust_years'])} years)\n"
            f"cost: {fig['years']} model years, time loop {c['loop_s']:.1f} s = {c['loop_s_per_year']:.3g} s per "
            f"model year ({c['steps_per_s']:.0f} steps/s){wall}; largest CFL number {c['cfl_max']:.3f}")


def _json_safe(x):
    """NaN (no adjustment, no jet) as null: strict JSON has no NaN."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--years", type=int, required=True, help="model years from rest")
    ap.add_argument("--cfg", type=Path, default=DEFAULT_CFG, help="namelist_cfg of the run (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (the run goes to OUT/run)")
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.VAR=VALUE")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-run", action="store_true", help="analyse the finished run in OUT/run")
    ap.add_argument("--timeout", type=float, help="seconds before the run is stopped (default: 60 per model year)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    timeout = args.timeout or 60.0 * args.years + 60.0
    fig = measure(args.out, args.cfg, args.years, parse_sets(args.set), timeout, not args.no_run)
    print(report(fig))
    if args.json:
        command = " ".join(["gyre/tools/spinup_adjustment.py"] + list(sys.argv[1:] if argv is None else argv))
        args.json.write_text(json.dumps(_json_safe({"command": command, **fig}), indent=1, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
