"""Benchmark of CROCO BASIN with the cpp key OBRIDGE: time per step with the bridge on against off.

Three runs of the same build, alternated (off, on-recv, on-train, off, ...) in one benchmark run, the
best of each kept, printed as ratios to 'off' (target: on-train / off <= 1.05, i.e. <= 5% slow-down):
  off       ln_obridge = .false. (the key compiled in, the bridge never called);
  on-recv   SST, SSH and 3-D temperature sent every --freq steps to a receiver that only gets them;
  on-train  the same fields to `oceanbridge worker` in train mode (online training in the worker).
The figures are CROCO's own timing of its time loop ('OBRIDGE timing:' line of obr_croco_cpl.F90: wall
time from the end of the first step to the end of the last, so start-up and finalisation are excluded).

usage: python benchmarks/bench_croco.py [--croco-dir DIR] [--steps 300] [--freq 9] [--repeats 3] [--json PATH]
DIR (or $CROCO_DIR) is a BASIN run folder built with `oceanbridge install croco` + `jobcomp`; without it
the benchmark says so and exits 0. Timings are never asserted anywhere. On a machine with fewer cores than
CROCO ranks + worker, the on-train figure measures the competition for cores as much as the bridge.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "croco"))

from croco_testlib import FIELDS, NX, NY, croco_ranks, deploy_config, run_folder  # noqa: E402

TIMING = re.compile(r"OBRIDGE timing: (\d+) steps,\s+([0-9.Ee+-]+) s per step; bridge exchanges\s+([0-9.Ee+-]+)")
MODES = ("off", "on-recv", "on-train")


def receiver_main(argv: list[str]) -> int:
    """The Python side of 'on-recv': get every field at every send step, keep nothing."""
    steps, freq = map(int, argv)
    from bridge import BoxPartition, Component
    comp = Component("worker", timeout=300.0)
    comp.def_partition(BoxPartition.whole(NX, NY))
    fields = [comp.def_field(n, "in", nlev=k, peer="croco") for n, k in FIELDS]
    comp.enddef()
    bufs = [f.get(0) for f in fields]
    for kt in range(freq, steps + 1, freq):
        for f, b in zip(fields, bufs):
            f.get(kt, b)
    comp.finalize()
    return 0


def one_run(src: Path, run: Path, mode: str, steps: int, freq: int) -> dict:
    """Run CROCO once in ``mode``; its timing line as a dict."""
    from bridge.mpirun import mpirun_prefix
    switches = {"ln_obridge": ".false."} if mode == "off" else {
        "ln_obridge": ".true.", "nn_obr_freq": str(freq), "cn_obr_send": ", ".join(f"'{n}'" for n, _ in FIELDS),
        "rn_obr_timeout": "300."}
    run_folder(src, run, steps, 10 * steps, switches)
    ranks = croco_ranks(src)
    apps = [(ranks, ["./croco", "croco.in"])]
    if mode == "on-recv":
        apps.append((1, [sys.executable, __file__, "--receiver", str(steps), str(freq)]))
    elif mode == "on-train":
        cfg = deploy_config(run, steps, freq, ranks)
        apps.append((1, [sys.executable, "-m", "deploy.cli", "worker", "--config", str(cfg), "--no-progress"]))
    cmd = mpirun_prefix(sum(n for n, _ in apps))
    for k, (n, argv) in enumerate(apps):
        cmd += ([":"] if k else []) + ["-np", str(n)] + argv
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(cmd, cwd=run, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=1800)
    m = TIMING.search(res.stdout)
    if res.returncode != 0 or not m:
        raise SystemExit(f"bench_croco: {mode} run failed (rc {res.returncode}):\n{res.stdout[-3000:]}")
    return {"steps": int(m.group(1)), "s_per_step": float(m.group(2)), "bridge_s_per_step": float(m.group(3))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--croco-dir", type=Path, default=os.environ.get("CROCO_DIR"), help="built BASIN run folder")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--freq", type=int, default=9, help="send every N steps (9 = once a day)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures there")
    a = ap.parse_args(argv)
    if a.croco_dir is None or not (Path(a.croco_dir) / "croco").is_file():
        print("bench_croco: skipped: no CROCO build (set CROCO_DIR or --croco-dir to a BASIN run folder built "
              "with the cpp key OBRIDGE, see deploy/croco/README.md)")
        return 0
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_croco_") as tmp:
        for rep in range(a.repeats):
            for mode in MODES:
                r = one_run(Path(a.croco_dir), Path(tmp) / f"{mode}_{rep}", mode, a.steps, a.freq)
                print(f"  repeat {rep + 1} {mode:<9} {1e3 * r['s_per_step']:8.3f} ms/step "
                      f"(bridge {1e3 * r['bridge_s_per_step']:.3f} ms/step)", flush=True)
                if mode not in best or r["s_per_step"] < best[mode]["s_per_step"]:
                    best[mode] = r
    off = best["off"]["s_per_step"]
    out = {"machine": platform.node(), "cpus": os.cpu_count(), "croco_ranks": croco_ranks(Path(a.croco_dir)),
           "steps": a.steps, "freq": a.freq, "repeats": a.repeats, "best": best,
           "ratio_on_recv_to_off": best["on-recv"]["s_per_step"] / off,
           "ratio_on_train_to_off": best["on-train"]["s_per_step"] / off}
    print(f"BASIN {NX}x{NY}x10, {out['croco_ranks']} CROCO rank(s), {a.steps} steps, fields every {a.freq} steps "
          f"(best of {a.repeats}):")
    for mode in MODES:
        print(f"  {mode:<9} {1e3 * best[mode]['s_per_step']:8.3f} ms/step  ratio to off "
              f"{best[mode]['s_per_step'] / off:6.3f}")
    print(f"target: on-train / off <= 1.05 -> {out['ratio_on_train_to_off']:.3f}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--receiver":
        sys.exit(receiver_main(sys.argv[2:]))
    sys.exit(main())
