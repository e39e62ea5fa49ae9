"""Benchmark of online training: what it costs the ocean, and how busy it keeps the worker.

1. ocean slow-down: gyre's own time-loop timing with the worker training online (mode
   'train', states every `--freq` steps) against the same run with coupling off, alternated
   in one benchmark run (A B A B ...), best of each kept, the ratio of the medians shown beside it;
   target: slow-down <= 5%;
2. the fraction of the worker's wall time spent in optimizer steps while coupled
   (target >= 90%), and its optimizer steps per second.

usage: python benchmarks/bench_online.py [--repeats 3] [--n 64] [--steps 52560] [--freq 36] [--json PATH]
Timings are never asserted anywhere. On a 2-core machine the worker's training thread and
the ocean share the cores, which is what the slow-down shows.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "worker"))  # the small deploy configs of the worker tests
sys.path.insert(0, str(REPO))

from worker_fixtures import launch, write_config  # noqa: E402

from bridge.config.config import load_config  # noqa: E402
from bridge.config.namelist import patch_namelist  # noqa: E402
from bridge.mpirun import mpirun_prefix  # noqa: E402
from deploy.preprod import preprod  # noqa: E402

LOOP = re.compile(r"time loop of (\d+) steps in ([0-9.]+) s")
COUPLING = re.compile(r"coupling calls in the time loop: ([0-9.]+) s")


def loop_seconds(output: str) -> float:
    m = LOOP.search(output)
    if not m:
        raise RuntimeError("gyre printed no time-loop timing:\n" + output[-3000:])
    return float(m.group(2))


def one_run(folder: Path, args, coupled: bool) -> dict:
    config = write_config(folder, steps=args.steps, freq=args.freq, n=args.n, timeout=300.0)
    text = config.read_text().replace("batch_size = 4", f"batch_size = {args.batch}")
    text = text.replace("model_channels = 8", f"model_channels = {args.channels}")
    config.write_text(text.replace("watermark = 4", "watermark = 8"))
    if not coupled:  # the same namelist with the bridge switched off, the ocean alone
        cfg = load_config(config)
        preprod(cfg)
        patch_namelist(cfg.member_namelist(1), {"namobridge": {"ln_obridge": False}})
        res = subprocess.run(mpirun_prefix(1) + ["-np", "1", str(cfg.ocean.executable)], cwd=cfg.member_dir(1),
                             capture_output=True, text=True, timeout=600)
        return {"loop_s": loop_seconds(res.stdout)}
    res = launch(config, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(res.stdout[-3000:])
    summary = json.loads((folder / "worker_summary.json").read_text())
    coupled_wall = summary["coupled"]["learner_wall_s"]
    waits = COUPLING.search(res.stdout)
    return {"loop_s": loop_seconds(res.stdout), "coupling_calls_s": float(waits.group(1)) if waits else float("nan"),
            "train_fraction": summary["coupled"]["train_fraction"],
            "train_steps": summary["train_steps"], "learner_wall_s": coupled_wall,
            "steps_per_s": summary["train_steps"] / max(summary["learner_wall_s"], 1e-9)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n", type=int, default=64, help="grid points per side")
    p.add_argument("--steps", type=int, default=52560,
                   help="ocean steps per run (3 model years: the worker's start-up is then a small part of it)")
    p.add_argument("--freq", type=int, default=36, help="coupling period (ocean steps)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--channels", type=int, default=16, help="U-Net base width")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    runs = {"off": [], "train": []}
    with tempfile.TemporaryDirectory(prefix="bench_online_") as tmp:
        for r in range(args.repeats):
            for mode in ("off", "train"):
                t = time.perf_counter()
                runs[mode].append(one_run(Path(tmp) / f"{mode}{r}", args, coupled=mode == "train"))
                print(f"repeat {r} {mode:>5}: loop {runs[mode][-1]['loop_s']:.2f} s "
                      f"(run {time.perf_counter() - t:.1f} s)", flush=True)
    best_off = min(x["loop_s"] for x in runs["off"])
    best = min(runs["train"], key=lambda x: x["loop_s"])
    best_on = best["loop_s"]
    fractions = [x["train_fraction"] for x in runs["train"]]
    result = {
        "grid": f"{args.n}x{args.n}", "ocean_steps": args.steps, "coupling_period": args.freq,
        "ocean_loop_s_off": best_off, "ocean_loop_s_train": best_on,
        "ocean_slowdown": best_on / best_off - 1.0,
        "ocean_slowdown_medians": float(np.median([x["loop_s"] for x in runs["train"]])
                                        / np.median([x["loop_s"] for x in runs["off"]]) - 1.0),
        "ocean_share_in_coupling_calls": best["coupling_calls_s"] / best_on,
        "worker_train_fraction_coupled": float(np.median(fractions)),
        "worker_train_steps_per_s": max(x["steps_per_s"] for x in runs["train"]),
        "runs": runs, "machine": platform.processor() or platform.machine(),
    }
    print("\n| quantity | value | target |\n|---|---|---|")
    print(f"| ocean time loop, coupling off (best of {args.repeats}) | {best_off:.2f} s | |")
    print(f"| ocean time loop, online training on | {best_on:.2f} s | |")
    print(f"| ocean slow-down (on/off - 1), best of each | {100 * result['ocean_slowdown']:.1f}% | <= 5% |")
    print(f"| ocean slow-down, ratio of the medians | {100 * result['ocean_slowdown_medians']:.1f}% | |")
    print(f"| share of that loop spent in the ocean's coupling calls | "
          f"{100 * result['ocean_share_in_coupling_calls']:.1f}% | |")
    print(f"| worker time training while coupled (median) | {100 * result['worker_train_fraction_coupled']:.1f}% "
          f"| >= 90% |")
    print(f"| worker optimizer steps per second | {result['worker_train_steps_per_s']:.2f} | |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
