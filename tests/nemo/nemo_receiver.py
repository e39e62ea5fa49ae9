"""Python side of the NEMO checks: a minimal receiver that follows the &namobridge protocol of obridge_nemo.

usage (MPMD, in the NEMO run folder; the protocol is read from namelist_ref then namelist_cfg):
  mpirun -np N ./nemo : -np M python nemo_receiver.py MODE [N] [--nx 32 --ny 22 --nlev 31]
MODE:
  record     receive every field of every send step (and 'mask' at nit000-1); save worker.npz as '<name>@<step>'
  emulate    record, and at every emulator step send '<name>_emu' = a smooth pattern (saved as '<name>_emu@<step>')
  spinup     send '<name>_init' = a smooth pattern at step nit000-1 (saved), then record
  kill N     record until step N, then die (SIGKILL), as a crashed worker
  quit N     record until step N, then leave the job (finalize) while NEMO goes on
  silent N   record until step N, then stop calling the bridge (sleep 60 s) and leave
Each of the M ranks owns a j-band of the global grid; rank 0 gathers the bands into worker.npz.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import f90nml
import numpy as np

from bridge import Component, decompose

SURFACE = ("sst", "sss", "ssh")


def protocol(folder: Path = Path(".")) -> dict:
    """&namrun and &namobridge merged from namelist_ref then namelist_cfg."""
    merged: dict = {}
    for f in ("namelist_ref", "namelist_cfg"):
        nml = f90nml.read(folder / f)
        for block in ("namrun", "namobridge"):
            merged.setdefault(block, {}).update(dict(nml.get(block, {})))
    obr = merged["namobridge"]
    send = obr.get("cn_obr_send", [])
    send = [send] if isinstance(send, str) else [s for s in send if s]
    return dict(name=obr.get("cn_obr_name", "nemo"), send=[s for s in send if s != "mask"], mask="mask" in send,
                freq=int(obr.get("nn_obr_freq", 1)), efreq=int(obr.get("nn_obr_emu_freq", 1)),
                emulator=bool(obr.get("ln_obr_emulator", False)), spin=bool(obr.get("ln_obr_spinup", False)),
                it000=int(merged["namrun"].get("nn_it000", 1)), itend=int(merged["namrun"]["nn_itend"]),
                timeout=float(obr.get("rn_obr_timeout", 60.0)))


def pattern(name: str, step: int, box, nlev: int) -> np.ndarray:
    """A smooth, deterministic field of this rank's box (global indices), shape (nlev, nj, ni)."""
    j, i = np.meshgrid(np.arange(box.j0, box.j0 + box.nj), np.arange(box.i0, box.i0 + box.ni), indexing="ij")
    base = {"sst": 20.0, "sss": 35.0, "ssh": 0.0, "u": 0.0, "v": 0.0, "tem3d": 10.0, "sal3d": 35.0}[name]
    amp = {"ssh": 0.1, "u": 0.01, "v": 0.01}.get(name, 1.0)
    return np.stack([base + amp * np.sin(0.3 * i + 0.2 * j + 0.1 * step + 0.05 * k) for k in range(nlev)])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["record", "emulate", "spinup", "kill", "quit", "silent"])
    ap.add_argument("nstop", nargs="?", type=int, default=-1)
    ap.add_argument("--nx", type=int, default=32)
    ap.add_argument("--ny", type=int, default=22)
    ap.add_argument("--nlev", type=int, default=31)
    args = ap.parse_args(argv)
    p = protocol()
    comp = Component("worker", timeout=p["timeout"] + 30.0)
    rank, size = comp.local_comm.Get_rank(), comp.local_comm.Get_size()
    box = decompose(args.nx, args.ny, 1, size)[rank]
    comp.def_partition(box)
    nlev = {n: 1 if n in SURFACE else args.nlev for n in p["send"]}
    f_in = {n: comp.def_field(n, "in", nlev=nlev[n], peer=p["name"]) for n in p["send"]}
    f_mask = comp.def_field("mask", "in", nlev=args.nlev, peer=p["name"]) if p["mask"] else None
    f_emu = {n: comp.def_field(n + "_emu", "out", nlev=nlev[n], peer=p["name"]) for n in p["send"]} \
        if p["emulator"] else {}
    f_ini = {n: comp.def_field(n + "_init", "out", nlev=nlev[n], peer=p["name"]) for n in p["send"]} \
        if p["spin"] else {}
    comp.enddef()

    saved: dict[str, np.ndarray] = {}
    k0 = p["it000"] - 1
    for n, f in f_ini.items():
        saved[f"{n}_init@{k0}"] = pattern(n, k0, box, nlev[n])
        f.put(k0, saved[f"{n}_init@{k0}"])
    if f_mask is not None:
        saved[f"mask@{k0}"] = f_mask.get(k0)
    for kt in range(k0, p["itend"] + 1):
        if args.mode in ("kill", "quit", "silent") and kt > args.nstop:
            if args.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if args.mode == "silent":      # alive but deaf: an MPI_Abort of NEMO must end the job
                time.sleep(60.0)
            break
        if kt % p["freq"] == 0:
            for n, f in f_in.items():
                saved[f"{n}@{kt}"] = f.get(kt)
        if p["emulator"] and kt >= p["it000"] and kt % p["efreq"] == 0:
            for n, f in f_emu.items():
                saved[f"{n}_emu@{kt}"] = pattern(n, kt, box, nlev[n])
                f.put(kt, saved[f"{n}_emu@{kt}"])
    # rank 0 stacks the j-bands of every array into the global (nlev, ny, nx) field
    bands = comp.local_comm.gather(saved, root=0)
    if rank == 0:
        whole = {key: np.concatenate([np.atleast_3d(b[key].reshape(-1, *b[key].shape[-2:])) for b in bands], axis=1)
                 for key in saved}
        np.savez("worker.npz", **whole)
    comp.finalize()
    print(f"nemo_receiver: {args.mode} done, {len(saved)} arrays", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
