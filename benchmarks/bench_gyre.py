"""Benchmark of the embedded ocean (gyre): speed and coupling overhead.

1. steps per second of the time loop at 128x128 and 256x256 on 1 and 2 ranks, coupling off;
2. coupling overhead: steps/s with every field (ssh, u, v, temp) sent every nn_obr_freq steps (1, and the
   realistic 6 and 12) to a Python receiver, against coupling off, measured in the same benchmark run by alternating the two
   (off, on, off, on, ...). Each repetition gives one paired ratio on/off; the table prints their median and range, and
   the ratio of the best runs beside it. The verdict uses the median paired wall-clock ratio (target: coupled/uncoupled
   >= 0.95, i.e. <= 5% overhead); the processor-time ratio is printed, not used for it.

usage: python benchmarks/bench_gyre.py [--repeats 3] [--quick] [--json PATH] [--coupled-ranks 1] [--freqs 1 6 12]
       [--coupling-only] [--wait auto|spin|yield]
The figures are gyre's own timing of its time loop (MPI_Wtime, initialisation and finalisation excluded).
Needs `make fortran` (build/bin/gyre.exe linked with the bridge). Timings are never asserted anywhere.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "gyre" / "tools"))

import gyrerun  # noqa: E402

FIELDS = ["ssh", "u", "v", "temp"]


def receiver_main(argv: list[str]) -> int:
    """The Python side of the coupled runs: get every field at every send step, keep nothing; print the
    processor time it used per get (its own cost, whatever the load of the machine)."""
    nx, ny, it000, itend, freq = map(int, argv)
    from bridge import BoxPartition, Component
    comp = Component("worker", timeout=120.0)
    comp.def_partition(BoxPartition.whole(nx, ny))
    fields = [comp.def_field(n, "in", nlev=1, peer="gyre") for n in FIELDS]
    comp.enddef()
    bufs = [f.get(it000 - 1) for f in fields]
    ngets, cpu0 = 0, time.process_time()
    for kt in range(it000, itend + 1):
        if kt % freq:
            continue
        for f, b in zip(fields, bufs):
            f.get(kt, b)
            ngets += 1
    cpu = time.process_time() - cpu0
    comp.finalize()
    print(f"receiver: {ngets} gets, processor time {cpu:.3f} s = {1e6 * cpu / max(ngets, 1):.1f} us per get", flush=True)
    return 0


def config(n: int, nsteps: int, ranks: int, coupled: bool, freq: int = 1) -> dict:
    """A benchmark configuration: n x n, no output except the final timing line."""
    cfg = {
        "namrun": {"nn_itend": nsteps, "rn_dt": 1200.0 * 128 / n, "nn_write": 0, "nn_diag": 0, "ln_rst_end": False},
        "namdom": {"nn_nx": n, "nn_ny": n, "rn_dx": 15.0e3 * 128 / n, "rn_dy": 15.0e3 * 128 / n,
                   "jpni": ranks, "jpnj": 1},
    }
    if coupled:
        cfg["namobridge"] = {"ln_obridge": True, "nn_obr_freq": freq, "cn_obr_send": FIELDS, "rn_obr_timeout": 120.0}
    return cfg


def run_once(workdir: Path, n: int, nsteps: int, ranks: int, coupled: bool, freq: int = 1) -> tuple[float, float, float, float]:
    """steps/s of one run (wall clock), the share of the time loop spent in the coupling calls (gyre's own
    timer), the processor seconds per step of gyre's rank 0 (insensitive to other processes on the cores) and
    the receiver's processor seconds per gyre step (0 uncoupled)."""
    rd = gyrerun.make_rundir(workdir / f"n{n}_r{ranks}_{f'cpl{freq}' if coupled else 'off'}",
                             config(n, nsteps, ranks, coupled, freq))
    worker = [sys.executable, str(Path(__file__).resolve()), "--receiver", str(n), str(n), "1", str(nsteps), str(freq)] \
        if coupled else None
    res = gyrerun.run_gyre(rd, ranks, worker=worker, timeout=600)
    m = re.search(r"time loop of (\d+) steps in ([0-9.]+) s = ([0-9.]+) steps/s", res.stdout)
    if res.returncode != 0 or not m:
        raise RuntimeError(f"gyre run failed in {rd}:\n{res.output}")
    c = re.search(r"coupling calls in the time loop: [0-9.]+ s on rank 0 \(([0-9.]+)% of the loop\)", res.stdout)
    p = re.search(r"processor time of rank 0 in the time loop: ([0-9.]+) s", res.stdout)
    w = re.search(r"receiver: \d+ gets, processor time ([0-9.]+) s", res.stdout)
    return (float(m.group(3)), float(c.group(1)) / 100 if c else 0.0, float(p.group(1)) / nsteps,
            float(w.group(1)) / nsteps if w else 0.0)


def coupling_runs(work: Path, n: int, nsteps: int, ranks: int, freqs: list[int], repeats: int) -> list[dict]:
    """One dict per repetition: the uncoupled run (key 'off') then one coupled run per frequency, run back to
    back so that each on/off pair sees the same machine load."""
    runs = []
    for _ in range(repeats):
        rep = {"off": run_once(work, n, nsteps, ranks, False)}
        for f in freqs:
            rep[f] = run_once(work, n, nsteps, ranks, True, f)
        runs.append(rep)
    return runs


def coupling_row(runs: list[dict], f: int) -> dict:
    """The figures of one frequency: paired wall ratios (median is the verdict), best-of ratio, processor-time
    ratio, the share of the loop in puts and the receiver's processor time relative to gyre's."""
    off = [rep["off"][0] for rep in runs]
    on = [rep[f][0] for rep in runs]
    paired = [a / b for a, b in zip(on, off)]
    cpu_off = [rep["off"][2] for rep in runs]
    cpu_on = [rep[f][2] for rep in runs]
    recv = [rep[f][3] for rep in runs]
    return {"off_steps_per_s": statistics.median(off), "on_steps_per_s": statistics.median(on),
            "ratio": statistics.median(paired), "paired_ratios": paired, "best_ratio": max(on) / max(off),
            "overhead": 1 - statistics.median(paired),
            "put_share_of_loop": statistics.median(rep[f][1] for rep in runs),
            "cpu_ratio": min(cpu_off) / min(cpu_on),          # steps per processor second, on / off
            "all_off": off, "all_on": on, "cpu_s_per_step_off": cpu_off, "cpu_s_per_step_on": cpu_on,
            "receiver_cpu_s_per_step": recv, "receiver_over_gyre_cpu": min(recv) / min(cpu_on),
            "target_ratio": 0.95}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="runs of each case (alternated off/on)")
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--coupled-ranks", type=int, default=1, help="gyre ranks in the coupling-overhead runs")
    ap.add_argument("--freqs", type=int, nargs="+", default=[1, 6, 12],
                    help="nn_obr_freq values of the coupled runs (1: every step; >= 6 is the realistic setting, "
                         "deploy/gyre/mpi.toml sends every 12)")
    ap.add_argument("--coupling-only", action="store_true", help="skip the speed table (part 1)")
    ap.add_argument("--wait", choices=("auto", "spin", "yield"),
                    help="$OBRIDGE_WAIT of the coupled runs (default: as set, else the bridge's auto, which spins "
                         "when gyre and the receiver fit the cores: on a machine shared with other jobs the "
                         "spinning receiver then takes processor time from gyre)")
    ap.add_argument("--receiver", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.receiver:
        return receiver_main(args.receiver)
    exe = gyrerun.default_exe()
    if not exe.exists():
        print(f"{exe} is missing: run `make fortran` first", file=sys.stderr)
        return 1
    steps = {128: 2000, 256: 500} if not args.quick else {128: 200, 256: 50}
    # the coupled comparisons run ~9 s per case: at 3 s, start-up jitter of the receiver was a visible share
    coupled_steps = {n: k * (1 if args.quick else 3) for n, k in steps.items()}
    if args.wait:
        os.environ["OBRIDGE_WAIT"] = args.wait        # read by both sides of every coupled run
    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                 "obridge_wait": os.environ.get("OBRIDGE_WAIT", "auto")},
                     "speed": [], "coupling": []}
    with tempfile.TemporaryDirectory(prefix="bench_gyre_") as tmp:
        work = Path(tmp)
        if not args.coupling_only:
            print(f"gyre speed, coupling off (best of {args.repeats}; {os.cpu_count()} cores)")
            print(f"{'grid':>9} {'ranks':>5} {'steps':>6} {'steps/s':>9} {'ms/step':>8} {'Mpts*steps/s':>13}")
        for n in ((128, 256) if not args.coupling_only else ()):
            for ranks in (1, 2):
                best = max(run_once(work, n, steps[n], ranks, False)[0] for _ in range(args.repeats))
                results["speed"].append({"n": n, "ranks": ranks, "steps": steps[n], "steps_per_s": best})
                print(f"{n:>4}x{n:<4} {ranks:>5} {steps[n]:>6} {best:>9.1f} {1e3 / best:>8.3f} {best * n * n / 1e6:>13.2f}")
        r = args.coupled_ranks
        print(f"\ncoupling overhead: all of {', '.join(FIELDS)} sent every nn_obr_freq step(s) to a Python receiver, "
              f"{r} gyre rank(s) + 1 receiver; runs alternate off/on, {args.repeats} repetitions; "
              f"OBRIDGE_WAIT={os.environ.get('OBRIDGE_WAIT', 'auto')}")
        print(f"{'grid':>9} {'freq':>4} {'steps':>6} {'off steps/s':>12} {'on steps/s':>11} {'on/off median':>14} "
              f"{'[min, max]':>14} {'best/best':>10} {'in puts':>8} {'cpu on/off':>11} {'recv/gyre cpu':>14} {'target':>7}")
        for n in (128, 256):
            runs = coupling_runs(work, n, coupled_steps[n], r, args.freqs, args.repeats)
            for f in args.freqs:
                row = coupling_row(runs, f)
                row.update({"n": n, "ranks": r, "steps": coupled_steps[n], "nn_obr_freq": f})
                results["coupling"].append(row)
                print(f"{n:>4}x{n:<4} {f:>4} {coupled_steps[n]:>6} {row['off_steps_per_s']:>12.1f} "
                      f"{row['on_steps_per_s']:>11.1f} {row['ratio']:>14.3f} "
                      f"{'[%.3f, %.3f]' % (min(row['paired_ratios']), max(row['paired_ratios'])):>14} "
                      f"{row['best_ratio']:>10.3f} {100 * row['put_share_of_loop']:>7.1f}% {row['cpu_ratio']:>11.3f} "
                      f"{row['receiver_over_gyre_cpu']:>14.3f} {'ok' if row['ratio'] >= 0.95 else 'MISSED':>7}")
        print("on/off: wall-clock steps/s ratio (the receiver shares the cores with gyre); in puts: share of the "
              "coupled loop spent inside obr_put (gyre's timer, waits included); cpu on/off: ratio of gyre's steps per "
              "processor second, i.e. the slow-down on a core of its own; recv/gyre cpu: the receiver's processor time "
              "per gyre step over gyre's (above 1 the receiver is slower than the ocean and gyre waits for ring slots). "
              "on/off median: median over repetitions of on/off within one repetition; target: >= 0.95.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
