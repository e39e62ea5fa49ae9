#!/usr/bin/env python3
"""The bridge's OASIS3-MCT backend against its MPI backend: same fields, same run, ratios.

One Fortran program written only against the obridge API
(tests/oasis/bench_pair.F90) is linked twice, with the MPI backend and with
the OASIS backend.  N ocean ranks (j-split) put a field, M worker ranks
(i-split) get it; each repetition times ITERS exchanges between barriers, on
the worker.  The worker is the same program ('Fortran' rows) or, where the
OASIS build can go into a shared library (-fPIC), a Python worker on
bridge.Component (tests/oasis/bench_py_worker.py; 'Python' rows: the MPI
backend against the OASIS backend through the pyoasis stand-in of tests/oasis).  Every round runs one OASIS job and one MPI job back to back (the
order alternates), so both see the same machine load; the ratio
OASIS bandwidth / MPI bandwidth is taken per round from the medians of the
repetitions.  The last field received is checked value for value.

    OASIS_DIR=/path/to/oasis/build python benchmarks/bench_oasis.py [--json PATH] [--rounds 3]

Without OASIS_DIR it prints why it skips and exits 0.  pyoasis is not needed
(both sides are Fortran).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "oasis")]

CASES = [("2-D 1024x1024", 1024, 1024, 1), ("3-D 75x256x256", 256, 256, 75)]  # (label, nx, ny, nlev)
SETUPS = [(1, 1), (2, 1), (2, 2)]  # (ocean ranks N, worker ranks M)


def build(oasis) -> dict[str, Path]:
    """bench_pair linked with each backend, built under build/bench_oasis (apart from the main build),
    and the pyoasis stand-in's library for the Python rows (None when OASIS is not built with -fPIC)."""
    from oasis_jobs import build_pyoasis_standin, compile_program, make_bridge
    where = REPO / "build" / "bench_oasis"
    make_bridge(where, None)
    make_bridge(where, oasis)
    progs = {b: compile_program("bench_pair", oasis, where, where / "prog", backend=b) for b in ("mpi", "oasis")}
    try:
        progs["standin"] = build_pyoasis_standin(oasis, where / "standin")
    except ValueError as err:
        print(f"bench_oasis: no Python rows: {err}")
    return progs


def pair(progs: dict, side: str, backend: str, args: list[str]) -> tuple[list[str], list[str], tuple | None]:
    """(ocean argv, worker argv, namcouple pair or None) of one job."""
    from bridge.transport.naming import oasis_name
    ocean = [str(progs[backend]), "ocean", *args]
    if side == "Fortran":
        worker = [str(progs[backend]), "worker", *args]
        names = (oasis_name("ocean", "f"), oasis_name("worker", "f"))
    else:
        lib = "mpi" if backend == "mpi" else str(progs["standin"])
        worker = [sys.executable, str(REPO / "tests" / "oasis" / "bench_py_worker.py"), lib, *args]
        names = (oasis_name("ocean", "f"), oasis_name("worker", "f", peer="ocean"))
    return ocean, worker, names if backend == "oasis" else None


def run_job(progs, side, backend, n, m, nx, ny, nlev, iters, reps) -> list[float]:
    """Seconds of each repetition (worker rank 0) of one job."""
    from oasis_jobs import namcouple_text

    from bridge.mpirun import mpirun_prefix

    ocean, worker, names = pair(progs, side, backend, [str(nx), str(ny), str(nlev), str(iters), str(reps)])
    cmd = mpirun_prefix(n + m) + ["-np", str(n), *ocean, ":", "-np", str(m), *worker]
    with tempfile.TemporaryDirectory(prefix="bench_oasis_") as tmp:
        if names:
            (Path(tmp) / "namcouple").write_text(namcouple_text([(*names, "f")], nx, ny, runtime=iters * reps))
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        raise SystemExit(f"bench_oasis: {backend} job failed ({' '.join(cmd)}):\n{proc.stdout}\n{proc.stderr}")
    return [float(line.split()[2]) for line in proc.stdout.splitlines() if line.startswith("BENCH ")]


def measure(progs, side, label, nx, ny, nlev, n, m, rounds, iters, reps) -> dict:
    mbytes = nx * ny * nlev * 8 / 1e6
    ratios, bw = [], {"mpi": [], "oasis": []}
    for r in range(rounds):
        order = ("oasis", "mpi") if r % 2 == 0 else ("mpi", "oasis")
        med = {b: statistics.median(run_job(progs, side, b, n, m, nx, ny, nlev, iters, reps)) for b in order}
        for b in bw:
            bw[b].append(mbytes * iters / med[b])
        ratios.append(med["mpi"] / med["oasis"])
    return {"worker": side, "case": label, "N": n, "M": m, "MB_per_exchange": round(mbytes, 2),
            "mpi_MBps": round(statistics.median(bw["mpi"])), "oasis_MBps": round(statistics.median(bw["oasis"])),
            "oasis_over_mpi": round(statistics.median(ratios), 3),
            "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--rounds", type=int, default=3, help="OASIS/MPI job pairs per case (default 3)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per job (default 5)")
    parser.add_argument("--iters", type=int, default=5, help="exchanges per repetition (default 5)")
    parser.add_argument("--quick", action="store_true", help="small grids, one round (a smoke test)")
    args = parser.parse_args(argv)
    from deploy.oasis_fortran import find_oasis_fortran
    try:
        oasis = find_oasis_fortran()
    except ValueError as err:
        print(f"bench_oasis: skipped: {err}")
        if args.json:
            args.json.write_text(json.dumps({"skipped": str(err)}, indent=2) + "\n")
        return 0
    cases = [("2-D 64x48", 64, 48, 1), ("3-D 5x32x24", 32, 24, 5)] if args.quick else CASES
    rounds = 1 if args.quick else args.rounds
    progs = build(oasis)
    sides = ["Fortran", "Python"] if "standin" in progs else ["Fortran"]
    print(f"{'worker':8} {'case':16} {'N':>2} {'M':>2} {'MB/exch':>8} {'MPI MB/s':>9} {'OASIS MB/s':>10}  "
          "OASIS/MPI [min, max]")
    results = []
    for side in sides:
        for label, nx, ny, nlev in cases:
            for n, m in SETUPS:
                row = measure(progs, side, label, nx, ny, nlev, n, m, rounds, args.iters, args.reps)
                results.append(row)
                print(f"{side:8} {label:16} {n:>2} {m:>2} {row['MB_per_exchange']:8.1f} {row['mpi_MBps']:9d} "
                      f"{row['oasis_MBps']:10d}  {row['oasis_over_mpi']:.2f} [{row['min']:.2f}, {row['max']:.2f}]",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps({"oasis_dir": str(oasis.root), "rounds": rounds, "reps": args.reps,
                                         "iters": args.iters, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
