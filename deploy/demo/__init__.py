"""``oceanbridge demo``: the main job, driven by ``deploy/demo/demo.toml``.

1. spin-up: the embedded gyre runs uncoupled from rest (a physical spin-up) and
   writes a restart;
2. online training: K members, each with its own θ, restart from it and stream
   their state to one worker that trains a diffusion surrogate while they run
   (the worker also writes ensemble statistics);
3. MSE baseline: the same network trained with an MSE loss on the members'
   output files, for the same number of optimizer steps;
4. emulation: the members continue with the emulator on: every coupling period
   their state is replaced by a diffusion sample, and the ocean's own step from
   the same start is kept as the truth;
5. report: netCDF, PNG figures and a summary table in the output folder.

``oceanbridge demo --bridge-only`` runs the bridge exchange example instead
(2 Fortran <-> 2 Python ranks, bit-exact both ways).
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from bridge.mpirun import mpirun_prefix

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "deploy" / "demo" / "demo.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oceanbridge demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="demo deploy config")
    parser.add_argument("--bridge-only", action="store_true", help="run the bridge exchange example only")
    parser.add_argument("--nx", type=int, default=96, help="--bridge-only: grid points in x")
    parser.add_argument("--ny", type=int, default=64, help="--bridge-only: grid points in y")
    parser.add_argument("--nlev", type=int, default=10, help="--bridge-only: levels of the 3-D field")
    parser.add_argument("--steps", type=int, default=20, help="--bridge-only: exchanges")
    parser.add_argument("--build", type=Path, default=REPO / "build")
    args = parser.parse_args(argv)
    if args.bridge_only:
        return bridge_only(args)
    from deploy.demo.phases import run_demo
    return run_demo(args.config)


def bridge_only(args) -> int:
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
