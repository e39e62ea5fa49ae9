#!/usr/bin/env python3
"""Bridge bandwidth against raw MPI send/recv of the same bytes, in one run.

Fortran ocean ranks (bridge/fortran/examples/bandwidth_ocean.F90) send a field
to Python worker ranks. Each repetition runs six phases of ITERS exchanges,
timed on the Python side between barriers, in an order that rotates with the
repetition:

- three raw MPI patterns for exactly the bytes each pair of ranks shares:
  ``send`` (blocking Send/Recv, one message per pair), ``isend``
  (Isend/Irecv + Waitall, one message per pair) and ``chunked`` (Isend/Irecv
  + Waitall, the bridge's chunks of each route, routes taking turns, as the
  bridge sends them: handshake.chunks);
- the bridge's put/get in the ``copy`` put mode (the default) and the
  ``direct`` put mode;
- ``buffered``, the copy put mode's semantics written by hand in raw MPI: the
  ocean copies its overlap of the field into one of 4 buffers per pair and
  Isends it, waiting for a buffer only when its turn comes again, so it never
  waits for a busy receiver. It is the reference for the copy mode's cost: a
  raw send moves the bytes once, a sender that must not wait copies them first.

The raw baseline of a row is the send/isend/chunked pattern with the best
median time (named in the table); each ratio is taken per repetition against
that pattern's time in the same repetition, so both see the same machine load.
``copy/buf`` is the copy mode against the buffered pattern, the same way. A
first warm-up repetition is dropped. Each row pools the repetitions of
``--launches`` mpirun launches: process placement differs between launches
and moves the figures more than anything within one.

    python benchmarks/bench_bridge.py [--json PATH] [--reps 5] [--launches 3] [--iters 10]
        [--direction to-worker,to-ocean] [--wait auto,spin,yield] [--ring 4,1]
        [--setups 1:1:j-split,2:2:i-split] [--nan-policy error|off]

``--direction to-ocean`` sends the field the other way: the Python worker
puts (copy, direct) or sends (the raw patterns and its own buffered ring), the
Fortran ocean gets or receives.

``--ring`` runs every row once per put ring depth ($OBRIDGE_RING, default 4):
the exchanges here are back to back, so a copy-mode ocean fills its ring and
the worker reads slots written ring-1 puts earlier, out of cache once the
ring outgrows the L3 cache (4 x 8 MB for the 2-D field).

Target (README.md, Performance): bridge / raw >= 0.9.
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
# cores; the others oversubscribe them.
SETUPS = [(1, 1, "j-split"), (2, 1, "j-split"), (2, 2, "j-split"), (2, 2, "i-split")]
PHASES = ("send", "isend", "chunked", "copy", "direct", "buffered")  # the ocean's phase_order numbers them 1..6
RAW = PHASES[:3]
BRIDGE = PHASES[3:5]
DIRECTIONS = ("to-worker", "to-ocean")  # the ocean puts, or the worker puts


def phase_order(rep: int) -> list[str]:
    """The phases of repetition ``rep``, rotated as bandwidth_ocean.F90's phase_order."""
    return [PHASES[(rep + j) % len(PHASES)] for j in range(len(PHASES))]


def raw_exchange(pattern: str, raw: list, nlev: int, send: bool = False) -> None:
    """One exchange's raw messages with ``pattern``: received as the ocean sends them, or (``send``,
    the worker -> ocean direction) sent as the ocean receives them."""
    from mpi4py import MPI

    from bridge import handshake

    world = MPI.COMM_WORLD
    if pattern == "send":
        for peer, _box, buf in raw:
            world.Send([buf, MPI.REAL8], dest=peer, tag=77) if send else world.Recv([buf, MPI.REAL8], source=peer, tag=77)
        return
    pieces = [(peer, buf) for peer, _box, buf in raw]
    if pattern == "chunked":
        pieces = [(peer, buf[c.offset:c.offset + c.nrows * box.ni]) for peer, box, buf in raw
                  for c in handshake.chunks(box, nlev)]
    post = world.Isend if send else world.Irecv
    MPI.Request.Waitall([post([piece, MPI.REAL8], peer, 77) for peer, piece in pieces])


class BufferedSender:
    """The raw buffered pattern, worker -> ocean: the overlap of the field copied into one of 4
    buffers per ocean rank, then Isend; a buffer is waited for only when its turn comes again."""

    def __init__(self, raw: list, field_box, nlev: int):
        self.raw, self.box, self.nlev, self.next = raw, field_box, nlev, 0
        self.ring = [[(np.ones(buf.size), None) for _ in range(4)] for _peer, _ov, buf in raw]  # pages touched

    def send(self, data: np.ndarray) -> None:
        from mpi4py import MPI

        for k, (peer, ov, _buf) in enumerate(self.raw):
            buf, req = self.ring[k][self.next]
            if req is not None:
                req.Wait()
            js, is_ = self.box.local_slices(ov)
            buf.reshape(self.nlev, ov.nj, ov.ni)[...] = data[:, js, is_]
            self.ring[k][self.next] = (buf, MPI.COMM_WORLD.Isend([buf, MPI.REAL8], dest=peer, tag=77))
        self.next = (self.next + 1) % 4

    def drain(self) -> None:
        for slots in self.ring:
            for _buf, req in slots:
                if req is not None:
                    req.Wait()


def worker(nx: int, ny: int, nlev: int, px: int, py: int, niter: int, nrep: int, n_ocean: int,
           receive: int = 0) -> None:
    """The Python side: every phase of every repetition; rank 0 prints the timings as JSON.
    ``receive`` = 1: the ocean receives, this side puts (in the phase's put mode) and sends."""
    from mpi4py import MPI

    from bridge import Component, decompose

    send = bool(receive)
    comp = Component("worker", timeout=120.0)
    box = decompose(nx, ny, px, py)[comp.local_comm.Get_rank()]
    comp.def_partition(box)
    field = comp.def_field("f", "out" if send else "in", nlev, peer="ocean")
    comp.enddef()
    raw = [(rank, ov, np.ones(ov.size * nlev)) for rank, b in enumerate(decompose(nx, ny, 1, n_ocean))
           if (ov := box.intersect(b)) is not None]
    out = np.random.default_rng(comp.local_comm.Get_rank()).random(field.shape)
    buffered = BufferedSender(raw, box, nlev)
    world, step, times = MPI.COMM_WORLD, 0, []
    for rep in range(nrep + 1):
        row = {}
        for phase in phase_order(rep):
            world.Barrier()
            t0 = time.perf_counter()
            for _ in range(niter):
                if send and phase == "buffered":
                    buffered.send(out)
                elif phase in RAW or phase == "buffered":
                    raw_exchange("isend" if phase == "buffered" else phase, raw, nlev, send)
                else:
                    step += 1
                    if send:
                        comp.put_mode = phase
                        field.put(step, out)
                    else:
                        field.get(step, out=out)
            buffered.drain()  # (the barrier below waits for the ocean, which has received everything then)
            world.Barrier()
            row[phase] = time.perf_counter() - t0
        if rep:  # repetition 0 warms up
            times.append(row)
    comp.finalize()
    if comp.local_comm.Get_rank() == 0:
        print("BENCH " + json.dumps({"times": times, "spin_waits": comp.spin_waits}), flush=True)


def summarize(times: list[dict], nbytes: int) -> dict:
    """Raw winner, bandwidths and per-repetition ratios (median, min, max) of one case."""
    t = {phase: np.array([row[phase] for row in times]) for phase in PHASES}
    winner = min(RAW, key=lambda p: np.median(t[p]))
    out = {"raw_pattern": winner, "raw_mb_s": float(np.median(nbytes / t[winner]) / 1e6)}
    for phase in PHASES:
        out[f"{phase}_mb_s"] = float(np.median(nbytes / t[phase]) / 1e6)
    pairs = {mode: (winner, mode) for mode in BRIDGE} | {"copy_vs_buffered": ("buffered", "copy")}
    for name, (reference, mode) in pairs.items():
        ratio = t[reference] / t[mode]  # bandwidth ratio = t_reference / t_bridge, same repetition
        out |= {f"ratio_{name}": float(np.median(ratio)), f"ratio_{name}_min": float(ratio.min()),
                f"ratio_{name}_max": float(ratio.max())}
    return out


def run_case(label, nx, ny, nlev, n_ocean, m, layout, iters, reps, launches, build: Path, knobs: dict) -> dict:
    """One row, pooled over ``launches`` mpirun launches; knobs: direction (to-worker, to-ocean), and wait,
    ring, nan_policy (the $OBRIDGE_* settings of both sides)."""
    from bridge.mpirun import mpirun_prefix

    px, py = (1, m) if layout == "j-split" else (m, 1)
    receive = int(knobs["direction"] == "to-ocean")
    ocean = [str(build / "bin" / "obr_bandwidth_ocean"), *map(str, (nx, ny, nlev, px, py, iters, reps, receive))]
    py_side = [sys.executable, __file__, "--role", "worker",
               *map(str, (nx, ny, nlev, px, py, iters, reps, n_ocean, receive))]
    cmd = mpirun_prefix(n_ocean + m) + ["-np", str(n_ocean), *ocean, ":", "-np", str(m), *py_side]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OBRIDGE_WAIT": knobs["wait"], "OBRIDGE_RING": str(knobs["ring"]),
           "OBRIDGE_NAN_POLICY": knobs["nan_policy"]}
    env.pop("OBRIDGE_PUT_MODE", None)  # each bridge phase sets its own put mode
    load_before, times = os.getloadavg()[0], []
    for _ in range(launches):  # separate launches: process placement varies from one to the next
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
        if out.returncode != 0 or line is None:
            raise RuntimeError(f"benchmark case {label} N={n_ocean} M={m} {layout} {knobs} failed:\n{out.stdout}")
        result = json.loads(line[6:])
        times += result["times"]
    load = [load_before, os.getloadavg()[0]]  # 1-minute load average: the machine may be shared
    return {"case": label, "n_ocean": n_ocean, "m_python": m, "worker_layout": layout, **knobs, "load": load,
            "waits_spin": result["spin_waits"], "mbytes_per_exchange": nx * ny * nlev * 8 / 1e6,
            **summarize(times, nx * ny * nlev * 8 * iters), "reps": reps, "launches": launches, "iters": iters,
            "times": times}


def print_table(rows: list[dict]) -> None:
    print(f"\nbridge bandwidth vs raw MPI (same bytes, same run; {os.cpu_count()} cores; target ratio >= 0.9)")
    print("ratio = bridge bandwidth / bandwidth of the best raw pattern (send | isend | chunked), per repetition,"
          " median [min, max]; wait: $OBRIDGE_WAIT (what auto chose); put modes: copy (default, the ocean never"
          " waits) and direct (no copy, the put waits for the worker); copy/buf: the copy mode against raw MPI"
          " buffered by hand (copy, Isend, never wait for the receiver), the same way; load: 1-minute load average"
          " before-after")
    print(f"{'case':<15} {'to':>6} {'N':>1} {'M':>1} {'workers':>7} {'wait':>10} {'ring':>4} {'raw':>7} {'raw MB/s':>8} "
          f"{'copy':>5} {'[min, max]':>12} {'direct':>6} {'[min, max]':>12} {'copy/buf':>8} {'[min, max]':>12} "
          f"{'load':>9}")
    for r in rows:
        wait = r["wait"] if r["wait"] != "auto" else "auto:" + ("spin" if r["waits_spin"] else "yield")
        print(f"{r['case']:<15} {r['direction'][3:]:>6} {r['n_ocean']:>1} {r['m_python']:>1} {r['worker_layout']:>7} {wait:>10} {r['ring']:>4} "
              f"{r['raw_pattern']:>7} {r['raw_mb_s']:>8.0f} "
              f"{r['ratio_copy']:>5.2f} [{r['ratio_copy_min']:.2f}, {r['ratio_copy_max']:.2f}] "
              f"{r['ratio_direct']:>6.2f} [{r['ratio_direct_min']:.2f}, {r['ratio_direct_max']:.2f}] "
              f"{r['ratio_copy_vs_buffered']:>8.2f} [{r['ratio_copy_vs_buffered_min']:.2f}, "
              f"{r['ratio_copy_vs_buffered_max']:.2f}] {r['load'][0]:>4.1f}-{r['load'][1]:<4.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the six phases (default 5)")
    parser.add_argument("--launches", type=int, default=3,
                        help="mpirun launches per row, their repetitions pooled (default 3)")
    parser.add_argument("--iters", type=int, default=10, help="exchanges per phase and repetition (default 10)")
    parser.add_argument("--wait", default="auto", help="comma-separated $OBRIDGE_WAIT values to run (default auto)")
    parser.add_argument("--ring", default=os.environ.get("OBRIDGE_RING", "4"),
                        help="comma-separated $OBRIDGE_RING depths to run (default $OBRIDGE_RING or 4)")
    parser.add_argument("--direction", default="to-worker",
                        help="comma-separated: to-worker (the ocean puts, default), to-ocean (the worker puts)")
    parser.add_argument("--nan-policy", default="error", choices=("error", "warn", "off"),
                        help="the ocean's NaN/Inf check on puts (default error, the bridge's default; off: no scan)")
    parser.add_argument("--setups", default="", help="only these N:M:layout setups, e.g. 1:1:j-split,2:2:i-split")
    parser.add_argument("--build", type=Path, default=REPO / "build", help="build folder with bin/obr_bandwidth_ocean")
    parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.role == "worker":
        worker(*map(int, rest))
        return 0
    directions = args.direction.split(",")
    if unknown := [d for d in directions if d not in DIRECTIONS]:
        parser.error(f"--direction {','.join(unknown)}: must be {' or '.join(DIRECTIONS)}")
    if not (args.build / "bin" / "obr_bandwidth_ocean").exists():
        subprocess.run(["make", "-s", "fortran", f"BUILD={args.build}"], cwd=REPO, check=True)
    setups = SETUPS
    if args.setups:
        wanted = [s.split(":") for s in args.setups.split(",")]
        setups = [(int(n), int(m), layout) for n, m, layout in wanted]
    # The ocean splits in j. "j-split" workers share its layout; "i-split" workers cut
    # across it, so every rank talks to every rank and pieces need restaging.
    rows = [run_case(*case, *setup, args.iters, args.reps, args.launches, args.build,
                     {"direction": direction, "wait": wait, "ring": int(ring), "nan_policy": args.nan_policy})
            for direction in directions for wait in args.wait.split(",")
            for ring in args.ring.split(",") for case in CASES for setup in setups]
    print_table(rows)
    print(f"NaN/Inf check on puts: {args.nan_policy} (the ocean's: $OBRIDGE_NAN_POLICY; the worker's: error)")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "bridge_bandwidth", "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
