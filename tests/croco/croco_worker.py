"""Python side of the CROCO coupling tests: a minimal worker that follows the OBRIDGE protocol.

usage (MPMD, in the CROCO run folder):
  mpirun -np N ./croco croco.in : -np 1 python croco_worker.py MODE NX NY NLEV
MODE:
  record    receive every field of cn_obr_send at every send step; save them to worker.npz as
            '<name>@<step>' ('mask@<ntstart-1>' once when cn_obr_send lists it)
  emulate   record, and at every emulator step send '<name>_emu' (saved as '<name>_emu@<step>'):
            replace: the received state + 1; increment: 0.5 everywhere
  spinup    send '<name>_init' at step ntstart-1 = 0 (saved), then record
The protocol (croco_patches/obr_croco.F) is read from namelist_obridge with f90nml and the run
length from croco.in (NTIMES).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import f90nml
import numpy as np

from bridge import BoxPartition, Component

LEVELS_3D = ("temp", "salt", "u", "v")
RECEIVED = ("temp", "salt", "sst", "sss", "ssh")   # fields CROCO can apply ('_emu', '_init')


def ntimes(folder: Path = Path(".")) -> int:
    """NTIMES of croco.in (the line after 'time_stepping:')."""
    lines = (folder / "croco.in").read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.strip().startswith("time_stepping:"))
    return int(lines[k + 1].split()[0])


@dataclass(frozen=True)
class Protocol:
    """What CROCO sends and expects, from namelist_obridge."""
    name: str
    send: tuple[str, ...]
    mask: bool
    freq: int
    efreq: int
    emulator: bool
    spin: bool
    emu_mode: str
    ntimes: int
    timeout: float

    @classmethod
    def read(cls, folder: Path = Path(".")) -> "Protocol":
        obr = f90nml.read(folder / "namelist_obridge")["namobridge"]
        send = obr.get("cn_obr_send", [])
        send = [send] if isinstance(send, str) else [s for s in send if s]
        return cls(name=obr.get("cn_obr_name", "croco"), send=tuple(s for s in send if s != "mask"),
                   mask="mask" in send, freq=int(obr.get("nn_obr_freq", 1)), efreq=int(obr.get("nn_obr_emu_freq", 1)),
                   emulator=bool(obr.get("ln_obr_emulator", False)), spin=bool(obr.get("ln_obr_spinup", False)),
                   emu_mode=obr.get("cn_obr_emu_mode", "replace"), ntimes=ntimes(folder),
                   timeout=float(obr.get("rn_obr_timeout", 60.0)))


def initial(name: str, nlev: int, ny: int, nx: int) -> np.ndarray:
    """A deterministic spin-up state: smooth, positive temperatures, small ssh."""
    k, j, i = np.meshgrid(np.arange(nlev), np.arange(ny), np.arange(nx), indexing="ij")
    base = 0.1 * np.sin(0.2 * i) * np.cos(0.3 * j)
    return base if name == "ssh" else 12.0 + 0.5 * k + base


def main(argv: list[str]) -> int:
    mode, nx, ny, nlev = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    p = Protocol.read()
    levels = {n: nlev if n in LEVELS_3D else 1 for n in p.send}
    comp = Component("worker", timeout=p.timeout + 30.0)
    comp.def_partition(BoxPartition.whole(nx, ny))
    f_in = {n: comp.def_field(n, "in", nlev=levels[n], peer=p.name) for n in p.send}
    f_mask = comp.def_field("mask", "in", nlev=1, peer=p.name) if p.mask else None
    applied = [n for n in p.send if n in RECEIVED]
    f_emu = {n: comp.def_field(n + "_emu", "out", nlev=levels[n], peer=p.name) for n in applied} if p.emulator else {}
    f_ini = {n: comp.def_field(n + "_init", "out", nlev=levels[n], peer=p.name) for n in applied} if p.spin else {}
    comp.enddef()

    saved = {}
    for n, f in f_ini.items():
        saved[f"{n}_init@0"] = a = initial(n, levels[n], ny, nx)
        f.put(0, a)
    if f_mask is not None:
        saved["mask@0"] = f_mask.get(0).copy()
    for kt in range(0, p.ntimes + 1):
        if kt % p.freq == 0:
            for n, f in f_in.items():
                saved[f"{n}@{kt}"] = f.get(kt).copy()
        if p.emulator and kt >= 1 and kt % p.efreq == 0:
            for n, f in f_emu.items():
                a = saved[f"{n}@{kt}"] + 1.0 if p.emu_mode == "replace" else np.full((levels[n], ny, nx), 0.5)
                saved[f"{n}_emu@{kt}"] = a
                f.put(kt, a)
    np.savez("worker.npz", **saved)
    comp.finalize()
    print(f"croco_worker: {mode} done, {len(saved)} arrays saved", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
