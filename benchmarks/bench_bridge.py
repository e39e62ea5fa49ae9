#!/usr/bin/env python3
"""Bridge bandwidth against raw MPI send/recv of the same bytes, in one run.

Fortran ocean ranks (bridge/fortran/examples/bandwidth_ocean.F90) send a field
to Python worker ranks. Each repetition times, on the Python side and between
barriers, NITER raw MPI_Send/Recv of exactly the bytes each pair of ranks
shares, then NITER bridge put/get of the same field; the ratio of the two
bandwidths is taken per repetition, so both phases see the same machine load.

    python benchmarks/bench_bridge.py [--json PATH] [--reps 5] [--iters 10]

Target (DESIGN.md section 5): bridge / raw >= 0.9.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = [  # (label, nx, ny, nlev)
    ("2-D 1024x1024", 1024, 1024, 1),
    ("3-D 75x256x256", 256, 256, 75),
]
# (ocean ranks N, Python ranks M, Python layout). N + M = 2 fits this machine's
# cores, so the overlap the copy put mode relies on can happen; the others oversubscribe.
SETUPS = [(1, 1, "j-split"), (2, 1, "j-split"), (2, 2, "j-split"), (2, 2, "i-split")]


def worker(nx: int, ny: int, nlev: int, px: int, py: int, niter: int, nrep: int, n_ocean: int) -> None:
    """The Python side: receive raw, then through the bridge; rank 0 prints the timings as JSON."""
    from mpi4py import MPI

    from bridge import Component, decompose

    comp = Component("worker", timeout=120.0)
    local = comp.local_comm
    box = decompose(nx, ny, px, py)[local.Get_rank()]
    comp.def_partition(box)
    field = comp.def_field("f", "in", nlev, peer="ocean")
    comp.enddef()
    ocean_boxes = decompose(nx, ny, 1, n_ocean)
    raw = [(rank, np.empty(ov.size * nlev)) for rank, b in enumerate(ocean_boxes)
           if (ov := box.intersect(b)) is not None]
    out = np.empty(field.shape)
    world = MPI.COMM_WORLD
    times = []
    for rep in range(nrep):
        world.Barrier()
        t0 = time.perf_counter()
        for _ in range(niter):
            MPI.Request.Waitall([world.Irecv([buf, MPI.REAL8], source=src, tag=77) for src, buf in raw])
        world.Barrier()
        t_raw = time.perf_counter() - t0
        row = [t_raw]
        for mode in range(2):  # the ocean's copy, then direct, put mode
            world.Barrier()
            t0 = time.perf_counter()
            for it in range(niter):
                field.get(((rep * 2) + mode) * niter + it + 1, out=out)
            world.Barrier()
            row.append(time.perf_counter() - t0)
        times.append(row)
    comp.finalize()
    if local.Get_rank() == 0:
        print("BENCH " + json.dumps({"times": times}), flush=True)


def run_case(label, nx, ny, nlev, n_ocean, m, layout, iters, reps, build: Path) -> dict:
    from bridge.mpirun import mpirun_prefix

    px, py = (1, m) if layout == "j-split" else (m, 1)
    ocean = [str(build / "bin" / "obr_bandwidth_ocean"), *map(str, (nx, ny, nlev, px, py, iters, reps))]
    py_side = [sys.executable, __file__, "--role", "worker", *map(str, (nx, ny, nlev, px, py, iters, reps, n_ocean))]
    cmd = mpirun_prefix(n_ocean + m) + ["-np", str(n_ocean), *ocean, ":", "-np", str(m), *py_side]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark case {label} M={m} failed:\n{out.stdout}")
    times = np.array(json.loads(line[6:])["times"])
    nbytes = nx * ny * nlev * 8 * iters
    copy, direct = times[:, 0] / times[:, 1], times[:, 0] / times[:, 2]  # bandwidth ratio = t_raw / t_bridge
    return {"case": label, "n_ocean": n_ocean, "m_python": m, "worker_layout": layout, "mbytes_per_exchange": nx * ny * nlev * 8 / 1e6,
            "raw_mb_s": float(np.median(nbytes / times[:, 0]) / 1e6),
            "bridge_copy_mb_s": float(np.median(nbytes / times[:, 1]) / 1e6),
            "bridge_direct_mb_s": float(np.median(nbytes / times[:, 2]) / 1e6),
            "ratio_copy": float(np.median(copy)), "ratio_copy_min": float(copy.min()),
            "ratio_copy_max": float(copy.max()), "ratio_direct": float(np.median(direct)),
            "ratio_direct_min": float(direct.min()), "ratio_direct_max": float(direct.max()),
            "reps": reps, "iters": iters}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--reps", type=int, default=5, help="alternating raw/bridge repetitions (default 5)")
    parser.add_argument("--iters", type=int, default=10, help="exchanges per phase and repetition (default 10)")
    parser.add_argument("--build", type=Path, default=REPO / "build", help="build folder with bin/obr_bandwidth_ocean")
    parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.role == "worker":
        worker(*map(int, rest))
        return 0
    if not (args.build / "bin" / "obr_bandwidth_ocean").exists():
        subprocess.run(["make", "-s", "fortran", f"BUILD={args.build}"], cwd=REPO, check=True)
    # The ocean splits in j. "j-split" workers share its layout; "i-split" workers cut
    # across it, so every rank talks to every rank and pieces need restaging.
    rows = [run_case(*case, *setup, args.iters, args.reps, args.build) for case in CASES for setup in SETUPS]
    print(f"\nbridge bandwidth vs raw MPI (same bytes, same run; {os.cpu_count()} cores; target ratio >= 0.9)")
    print("ratio = bridge bandwidth / raw bandwidth, median over repetitions [min, max]; put modes: copy (default,"
          " the ocean never waits) and direct (no copy, the put waits for the worker)")
    print(f"{'case':<16} {'N':>2} {'M':>2} {'workers':>8} {'MB/exch':>8} {'raw MB/s':>9} "
          f"{'copy':>5} {'[min, max]':>12} {'direct':>6} {'[min, max]':>12}")
    for r in rows:
        print(f"{r['case']:<16} {r['n_ocean']:>2} {r['m_python']:>2} {r['worker_layout']:>8} "
              f"{r['mbytes_per_exchange']:>8.1f} {r['raw_mb_s']:>9.0f} "
              f"{r['ratio_copy']:>5.2f} [{r['ratio_copy_min']:.2f}, {r['ratio_copy_max']:.2f}] "
              f"{r['ratio_direct']:>6.2f} [{r['ratio_direct_min']:.2f}, {r['ratio_direct_max']:.2f}]")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "bridge_bandwidth", "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
