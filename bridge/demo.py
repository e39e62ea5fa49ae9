"""``oceanbridge demo``: the main job.

For now (the bridge issue) it shows the bridge itself: a Fortran ocean
component on 2 ranks and a Python worker on 2 ranks, with different
decompositions, exchange 2-D and 3-D analytic fields both ways for several
steps and check every value bit for bit. Later issues grow it into the full
in-situ training demo.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from .mpirun import mpirun_prefix

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oceanbridge demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nx", type=int, default=96)
    parser.add_argument("--ny", type=int, default=64)
    parser.add_argument("--nlev", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--build", type=Path, default=REPO / "build")
    args = parser.parse_args(argv)
    ocean_exe = args.build / "bin" / "obr_exchange_ocean"
    if not ocean_exe.exists():
        raise SystemExit(f"oceanbridge demo: {ocean_exe} is missing; run 'make fortran' (or 'make demo') first")
    ocean = [str(ocean_exe), *map(str, (args.nx, args.ny, args.nlev, 2, 1, args.steps))]
    worker = [sys.executable, "-m", "bridge.examples.exchange_worker",
              *map(str, (args.nx, args.ny, args.nlev, args.steps, 1, 2))]
    cmd = mpirun_prefix(4) + ["-np", "2", *ocean, ":", "-np", "2", *worker]
    log.info("launching: %s", " ".join(cmd))
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    print(run.stdout, end="")
    if run.returncode != 0:
        log.error("the coupled job failed (exit %d)", run.returncode)
        return run.returncode
    values = args.steps * args.nx * args.ny * (1 + args.nlev)
    print(f"\noceanbridge demo: 2 Fortran ranks (2x1) <-> 2 Python ranks (1x2), {args.nx}x{args.ny} grid, "
          f"{args.nlev} levels, {args.steps} steps: {values} values each way, all bit-exact, "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
