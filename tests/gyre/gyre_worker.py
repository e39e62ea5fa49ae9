"""Python side of the gyre coupling tests: a minimal worker that follows gyre's &namobridge protocol.

usage (MPMD, in the gyre run directory):
  mpirun -np N gyre.exe : -np 1 python gyre_worker.py MODE [ARG [ARG2]]
  mpirun -np N -wdir D1 gyre.exe : -np N -wdir D2 gyre.exe : -np 1 python gyre_worker.py record --members D1 D2
MODE:
  record          receive every field at every send step; save them to worker.npz as '<name>@<step>'
                  ('mask@<nit000-1>' once when cn_obr_send lists 'mask'); with --members, one peer per
                  run directory (its cn_obr_name), saved as '<member>:<name>@<step>'
  emulate         record, and at every emulator step send '<name>_emu' (saved as '<name>_emu@<step>'):
                  replace: a smooth pattern plus the received state scaled; increment: a small pattern
  spinup          send '<name>_init' at step nit000-1 (saved), then record
  quit N          record until step N, then leave the job (finalize) while gyre goes on
  silent N        record until step N, then stop calling the bridge (sleep ARG2 s) and leave
  kill N          record until step N, then die (SIGKILL), as a crashed worker
The protocol is read from each run directory's namelists (namelist_ref, then namelist_cfg) with f90nml.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import f90nml
import numpy as np

from bridge import BoxPartition, Component


def namelist(folder: Path = Path(".")) -> dict:
    """Merged &namrun, &namdom, &namobridge of namelist_ref then namelist_cfg of a run directory."""
    ref = f90nml.read(folder / "namelist_ref")
    cfg = f90nml.read(folder / "namelist_cfg")
    merged = {}
    for block in ("namrun", "namdom", "namobridge"):
        values = dict(ref.get(block, {}))
        values.update(dict(cfg.get(block, {})))
        merged[block] = values
    return merged


@dataclass(frozen=True)
class Protocol:
    """What one gyre member sends and expects, from its namelists."""
    name: str
    nx: int
    ny: int
    send: tuple[str, ...]
    mask: bool
    freq: int
    efreq: int
    emulator: bool
    spin: bool
    emu_mode: str
    it000: int
    itend: int
    timeout: float

    @classmethod
    def read(cls, folder: Path = Path(".")) -> "Protocol":
        nml = namelist(folder)
        run, dom, obr = nml["namrun"], nml["namdom"], nml["namobridge"]
        send = obr.get("cn_obr_send", ["ssh", "u", "v", "temp"])
        send = [send] if isinstance(send, str) else [s for s in send if s]
        return cls(name=obr.get("cn_obr_name", "gyre"), nx=int(dom.get("nn_nx", 128)), ny=int(dom.get("nn_ny", 128)),
                   send=tuple(s for s in send if s != "mask"), mask="mask" in send,
                   freq=int(obr.get("nn_obr_freq", 1)), efreq=int(obr.get("nn_obr_emu_freq", 1)),
                   emulator=bool(obr.get("ln_obr_emulator", False)), spin=bool(obr.get("ln_obr_spinup", False)),
                   emu_mode=obr.get("cn_obr_emu_mode", "replace"), it000=int(run.get("nn_it000", 1)),
                   itend=int(run.get("nn_itend", 100)), timeout=float(obr.get("rn_obr_timeout", 60.0)))


def pattern(name: str, step: int, ny: int, nx: int) -> np.ndarray:
    """A deterministic field for a name and a step (exact in float64 arithmetic on both sides)."""
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    scale = {"ssh": 1e-3, "u": 1e-3, "v": 1e-3, "temp": 1e-2, "sst": 1e-2}[name]
    return (scale * np.sin(0.3 * i + 0.2 * j + 0.1 * step))[None, :, :]


class Member:
    """The fields of one gyre member on the worker, and what was received from / sent to it."""

    def __init__(self, comp: Component, p: Protocol, prefix: str):
        self.p, self.prefix, self.last, self.saved = p, prefix, {}, {}
        peer = p.name
        self.f_in = {n: comp.def_field(n, "in", nlev=1, peer=peer) for n in p.send}
        self.f_mask = comp.def_field("mask", "in", nlev=1, peer=peer) if p.mask else None
        self.f_emu = {n: comp.def_field(n + "_emu", "out", nlev=1, peer=peer) for n in p.send} if p.emulator else {}
        self.f_ini = {n: comp.def_field(n + "_init", "out", nlev=1, peer=peer) for n in p.send} if p.spin else {}

    def save(self, key: str, a: np.ndarray) -> None:
        self.saved[self.prefix + key] = a.copy()

    def start(self) -> None:
        """Step nit000-1: send the spin-up state, receive the mask."""
        p = self.p
        for n, f in self.f_ini.items():
            a = 10.0 * pattern(n, p.it000 - 1, p.ny, p.nx) if n not in ("temp", "sst") else 15.0 + pattern(n, 0, p.ny, p.nx)
            f.put(p.it000 - 1, a)
            self.save(f"{n}_init@{p.it000 - 1}", a)
        if self.f_mask is not None:
            self.save(f"mask@{p.it000 - 1}", self.f_mask.get(p.it000 - 1))

    def step(self, kt: int) -> None:
        """Receive the state of step kt when due, then send the emulated state when due."""
        p = self.p
        if kt % p.freq == 0:
            for n, f in self.f_in.items():
                self.last[n] = f.get(kt)
                self.save(f"{n}@{kt}", self.last[n])
        if p.emulator and kt >= p.it000 and kt % p.efreq == 0:
            for n, f in self.f_emu.items():
                if p.emu_mode == "replace":
                    a = 0.5 * self.last[n] + pattern(n, kt, p.ny, p.nx)
                else:
                    a = pattern(n, kt, p.ny, p.nx)
                f.put(kt, a)
                self.save(f"{n}_emu@{kt}", a)


def main(argv: list[str]) -> int:
    folders = [Path(".")]
    if "--members" in argv:
        k = argv.index("--members")
        folders, argv = [Path(d) for d in argv[k + 1:]], argv[:k]
    mode = argv[0]
    nstop = int(argv[1]) if len(argv) > 1 else -1
    protos = [Protocol.read(d) for d in folders]
    p0 = protos[0]
    comp = Component("worker", timeout=max(p.timeout for p in protos) + 30.0)
    comp.def_partition(BoxPartition.whole(p0.nx, p0.ny))
    members = [Member(comp, p, f"{p.name}:" if len(protos) > 1 else "") for p in protos]
    comp.enddef()

    for m in members:
        m.start()
    for kt in range(p0.it000 - 1, p0.itend + 1):
        if mode in ("quit", "silent") and kt > nstop:
            break
        if mode == "kill" and kt > nstop:
            os.kill(os.getpid(), signal.SIGKILL)
        for m in members:
            m.step(kt)
    saved = {k: v for m in members for k, v in m.saved.items()}
    np.savez("worker.npz", **saved)
    if mode == "silent":
        time.sleep(float(argv[2]) if len(argv) > 2 else 10.0)
    comp.finalize()
    print(f"gyre_worker: {mode} done, {len(saved)} arrays saved", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
