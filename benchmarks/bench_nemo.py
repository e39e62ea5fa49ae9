#!/usr/bin/env python3
"""NEMO GYRE_OCE time per step with the bridge on against off, side by side in one run.

Needs ``NEMO_DIR``: a NEMO 5.0 tree whose GYRE_OCE was built after
``oceanbridge install nemo`` (deploy/nemo/README.md). Every repetition runs, one
after the other on the same machine:

- ``off``: ``ln_obridge = .false.``, NEMO alone;
- ``receiver``: ``ln_obridge``, SST/SSS/SSH sent every step to a Python rank that only receives;
- ``train``: the same stream into ``oceanbridge worker`` in train mode (skipped with ``--no-train``).

The time per step is the one NEMO's adapter prints (``obn_finalize`` in
``ocean.output``: wall time from the first to the last step hook), so start-up
and the worker's own start are not counted. Ratios are taken per repetition.
The share of the loop spent inside bridge calls (also from ``obn_finalize``)
is the coupling cost measured within one run, less exposed to machine noise.

    python benchmarks/bench_nemo.py [--json PATH] [--reps 2] [--steps 200] [--ranks 1] [--no-train]

Target (README.md, Performance): on / off <= 1.05 with training on. On a machine
where the ocean and the worker share cores, training competes for them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "nemo"))

import nemo_run as nr  # noqa: E402  (tests/nemo helpers: run folders, launch, ocean.output parsing)

SEND = ["sst", "sss", "ssh"]
TRAIN_TOML = """[run]
backend = "mpi"
run_dir = "."
dt = 14400.0
nit000 = 1
steps = {steps}
timeout = 300.0

[ocean]
model = "nemo"
executable = "./nemo"
ranks = {ranks}
nx = 32
ny = 22

[worker]
ranks = 1
modes = ["train"]
device = "{device}"
"""


def run_case(case: str, folder: Path, steps: int, ranks: int, device: str) -> tuple[float, float]:
    """One run of ``case``: NEMO's wall time per step (s) and the share of it spent in bridge calls."""
    on = case != "off"
    obr = dict(ln_obridge=on, cn_obr_send=SEND, nn_obr_freq=1, rn_obr_timeout=300.0)
    nr.prepare(os.environ["NEMO_DIR"], folder, itend=steps, obridge=obr)
    if case == "off":
        res = nr.run_alone(folder, ranks, timeout=1200)
    elif case == "receiver":
        res = nr.launch(nr.coupled_cmd(ranks, nr.receiver_argv("record")), folder, timeout=1200)
    else:
        fields = "".join(f'\n[[fields]]\nname = "{n}"\ndirection = "ocean_to_worker"\nfreq = 1\n' for n in SEND)
        (folder / "train.toml").write_text(TRAIN_TOML.format(steps=steps, ranks=ranks, device=device) + fields)
        cli = [sys.executable, "-m", "deploy.cli"]
        subprocess.run(cli + ["preprod", "train.toml"], cwd=folder, check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        res = nr.launch(cli + ["launch", "train.toml"], folder, timeout=1200)
    if res.returncode != 0:
        raise RuntimeError(f"{case} run failed in {folder}:\n{res.stdout[-3000:]}")
    return nr.loop_timing(folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of the case cycle (default 2)")
    ap.add_argument("--steps", type=int, default=200, help="NEMO steps per run (default 200)")
    ap.add_argument("--ranks", type=int, default=1, help="NEMO ranks (default 1)")
    ap.add_argument("--no-train", action="store_true", help="skip the oceanbridge worker (train) case")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="worker device (train case)")
    args = ap.parse_args(argv)
    why = nr.built(os.environ.get("NEMO_DIR"))
    if why:
        print(f"bench_nemo: skipped: {why}")
        return 0
    cases = ["off", "receiver"] + ([] if args.no_train else ["train"])
    times: dict[str, list[float]] = {c: [] for c in cases}
    shares: dict[str, list[float]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory(prefix="bench_nemo_") as tmp:
        for rep in range(args.reps):
            for case in cases:
                t, share = run_case(case, Path(tmp) / f"{case}_{rep}", args.steps, args.ranks, args.device)
                times[case].append(t)
                shares[case].append(share)
                print(f"rep {rep}: {case:<8} {1e3 * t:8.2f} ms/step, {100 * share:5.2f}% in bridge calls", flush=True)
    off = np.array(times["off"])
    rows = {c: {"ms_per_step": [1e3 * t for t in times[c]], "ratio_to_off": list(np.array(times[c]) / off),
                "bridge_share": shares[c]} for c in cases}
    print(f"\nNEMO GYRE_OCE, {args.ranks} rank(s), {args.steps} steps, SST/SSS/SSH every step")
    print(f"{'case':<9} {'ms/step (median)':>17} {'on/off (median)':>16} {'in bridge calls':>16}")
    for c in cases:
        print(f"{c:<9} {np.median(rows[c]['ms_per_step']):17.2f} {np.median(rows[c]['ratio_to_off']):16.3f} "
              f"{100 * np.median(shares[c]):15.2f}%")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "nemo_step_time", "ranks": args.ranks, "steps": args.steps,
                                         "fields": SEND, "cases": rows, "target_ratio": 1.05}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
