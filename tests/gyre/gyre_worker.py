"""Python side of the gyre coupling tests: a minimal worker that follows gyre's &namobridge protocol.

usage (MPMD, in the gyre run directory):
  mpirun -np N gyre.exe : -np 1 python gyre_worker.py MODE [ARG]
MODE:
  record          receive every field at every send step; save them to worker.npz as '<name>@<step>'
  emulate         record, and at every emulator step send '<name>_emu' (saved as '<name>_emu@<step>'):
                  replace: a smooth pattern plus the received state scaled; increment: a small pattern
  spinup          send '<name>_init' at step nit000-1 (saved), then record
  quit N          record until step N, then leave the job (finalize) while gyre goes on
  silent N        record until step N, then stop calling the bridge (sleep ARG2 s) and leave
  kill N          record until step N, then die (SIGKILL), as a crashed worker
The protocol is read from the run directory's namelists (namelist_ref, then namelist_cfg) with f90nml.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import f90nml
import numpy as np

from bridge import BoxPartition, Component


def namelist() -> dict:
    """Merged &namrun, &namdom, &namobridge of namelist_ref then namelist_cfg."""
    ref = f90nml.read("namelist_ref")
    cfg = f90nml.read("namelist_cfg")
    merged = {}
    for block in ("namrun", "namdom", "namobridge"):
        values = dict(ref.get(block, {}))
        values.update(dict(cfg.get(block, {})))
        merged[block] = values
    return merged


def pattern(name: str, step: int, ny: int, nx: int) -> np.ndarray:
    """A deterministic field for a name and a step (exact in float64 arithmetic on both sides)."""
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    scale = {"ssh": 1e-3, "u": 1e-3, "v": 1e-3, "temp": 1e-2, "sst": 1e-2}[name]
    return (scale * np.sin(0.3 * i + 0.2 * j + 0.1 * step))[None, :, :]


def main(argv: list[str]) -> int:
    mode = argv[0]
    nstop = int(argv[1]) if len(argv) > 1 else -1
    nml = namelist()
    run, dom, obr = nml["namrun"], nml["namdom"], nml["namobridge"]
    nx, ny = int(dom.get("nn_nx", 128)), int(dom.get("nn_ny", 128))
    send = obr.get("cn_obr_send", ["ssh", "u", "v", "temp"])
    send = [send] if isinstance(send, str) else [s for s in send if s]
    freq, efreq = int(obr.get("nn_obr_freq", 1)), int(obr.get("nn_obr_emu_freq", 1))
    emulator, spin = bool(obr.get("ln_obr_emulator", False)), bool(obr.get("ln_obr_spinup", False))
    emu_mode = obr.get("cn_obr_emu_mode", "replace")
    it000, itend = int(run.get("nn_it000", 1)), int(run.get("nn_itend", 100))

    comp = Component("worker", timeout=float(obr.get("rn_obr_timeout", 60.0)) + 30.0)
    comp.def_partition(BoxPartition.whole(nx, ny))
    f_in = {n: comp.def_field(n, "in", nlev=1, peer="gyre") for n in send}
    f_emu = {n: comp.def_field(n + "_emu", "out", nlev=1, peer="gyre") for n in send} if emulator else {}
    f_ini = {n: comp.def_field(n + "_init", "out", nlev=1, peer="gyre") for n in send} if spin else {}
    comp.enddef()

    saved: dict[str, np.ndarray] = {}
    if spin:
        for n, f in f_ini.items():
            a = 10.0 * pattern(n, it000 - 1, ny, nx) if n not in ("temp", "sst") else 15.0 + pattern(n, 0, ny, nx)
            f.put(it000 - 1, a)
            saved[f"{n}_init@{it000 - 1}"] = a
    last = {}
    for kt in range(it000 - 1, itend + 1):
        if mode in ("quit", "silent") and kt > nstop:
            break
        if mode == "kill" and kt > nstop:
            import os
            import signal
            os.kill(os.getpid(), signal.SIGKILL)
        if kt % freq == 0:
            for n, f in f_in.items():
                last[n] = f.get(kt)
                saved[f"{n}@{kt}"] = last[n].copy()
        if emulator and kt >= it000 and kt % efreq == 0:
            for n, f in f_emu.items():
                if emu_mode == "replace":
                    a = 0.5 * last[n] + pattern(n, kt, ny, nx)
                else:
                    a = pattern(n, kt, ny, nx)
                f.put(kt, a)
                saved[f"{n}_emu@{kt}"] = a
    np.savez("worker.npz", **saved)
    if mode == "silent":
        time.sleep(float(argv[2]) if len(argv) > 2 else 10.0)
    comp.finalize()
    print(f"gyre_worker: {mode} done, {len(saved)} arrays saved", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
