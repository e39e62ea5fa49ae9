"""Choose the equilibrium detector's rule on the training members of a spin-up study (validation, not test θ*).

    python gyre/tools/detector_choice.py out/bench_spinup/train/equilibrium.nc [--json PATH]

Input: the ``equilibrium.nc`` a generate-mode launch writes (every member's annual means of the watched
metrics). Each member's reference year is when its slowest metric (``--slow``, default heat) has settled: the
first year after which every annual mean stays within ``--within`` standard deviations of its final level,
final level and std from its last ``--final-years`` (which no candidate rule sees). For every candidate
rule (window, horizon, windows in a row) the table gives how many members it admits before their reference
year (early: the defect to avoid), how many it never admits before the final years (a member lost to the
training set), and how many years late or early it is. The chosen rule has the fewest failures (early plus
never), then the smallest mean |lateness|.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import netCDF4
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from models.equilibrium import EquilibriumConfig, first_equilibrated  # noqa: E402

WINDOWS, HORIZONS, IN_A_ROW = (10, 15, 20, 30), (10.0, 20.0, 30.0), (1, 3, 5)


def settled_year(series: np.ndarray, final_years: int, within: float) -> int:
    """First year after which every annual mean stays within ``within`` std of the last ``final_years``' mean."""
    final = series[-final_years:]
    outside = np.flatnonzero(np.abs(series - final.mean()) > within * final.std(ddof=1))
    return 0 if len(outside) == 0 else int(outside[-1]) + 1


def score(rows: list[np.ndarray], reference: list[int], config: EquilibriumConfig, seen: int) -> dict:
    """One rule on every member: early / never counts and the lateness (admitted year - reference year)."""
    admitted = [first_equilibrated(r[:, :seen], config) for r in rows]
    lateness = [a - ref for a, ref in zip(admitted, reference) if a is not None]
    return {"window_years": config.window_years, "horizon_years": config.horizon_years,
            "persist_years": config.persist_years, "admitted": admitted,
            "early": sum(1 for a, ref in zip(admitted, reference) if a is not None and a < ref),
            "never": sum(a is None for a in admitted), "lateness": lateness,
            "mean_abs_lateness": float(np.mean(np.abs(lateness))) if lateness else float("inf")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("equilibrium", type=Path, help="a generate-mode launch's equilibrium.nc")
    p.add_argument("--slow", default="heat", help="the slow metric that defines each member's settled year")
    p.add_argument("--final-years", type=int, default=20, help="years at the end that define the final level")
    p.add_argument("--within", type=float, default=3.0, help="settled: within this many std of the final level")
    p.add_argument("--json", type=Path, help="write the table here")
    args = p.parse_args(argv)
    with netCDF4.Dataset(args.equilibrium) as ds:
        names = [v for v in ds.variables if ds[v].dimensions == ("member", "time")]
        if args.slow not in names:
            raise SystemExit(f"detector_choice: --slow {args.slow!r} is not in {args.equilibrium} (has {names})")
        rows = [np.array([np.asarray(ds[n][m]) for n in names]) for m in range(ds.dimensions["member"].size)]
    seen = rows[0].shape[1] - args.final_years
    reference = [settled_year(r[names.index(args.slow)], args.final_years, args.within) for r in rows]
    table = [score(rows, reference, EquilibriumConfig(w, h, 2.0, k), seen)
             for w, h, k in itertools.product(WINDOWS, HORIZONS, IN_A_ROW)]
    best = min(table, key=lambda r: (r["early"] + r["never"], r["mean_abs_lateness"]))
    print(f"members' settled year ({args.slow}, within {args.within:g} std of the last {args.final_years} "
          f"years): {reference}; rules see the first {seen} years")
    print(f"{'window':>6} {'horizon':>7} {'in a row':>8} {'early':>5} {'never':>5} {'mean |late|':>11}  admitted")
    for r in table:
        mark = "  <- chosen" if r is best else ""
        print(f"{r['window_years']:>6} {r['horizon_years']:>7g} {r['persist_years']:>8} {r['early']:>5} "
              f"{r['never']:>5} {r['mean_abs_lateness']:>11.1f}  {r['admitted']}{mark}")
    if args.json:
        args.json.write_text(json.dumps({"reference": reference, "table": table, "chosen": best}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
