"""Helpers of the tests on a real CROCO build (marker ``croco``): run folders, croco.in, history files.

``CROCO_DIR`` names a run folder where ``oceanbridge install croco`` and ``jobcomp``
built ``croco`` for BASIN (60 x 50 x 10) with ``OUT_DOUBLE`` (history in float64,
so that it can be compared bit for bit); its param.h gives the rank count.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np

CROCO_DIR = os.environ.get("CROCO_DIR")
NX, NY, NLEV = 60, 50, 10
DT = 9600.0
FIELDS = [("sst", 1), ("ssh", 1), ("temp", NLEV)]   # (name, levels) of the worker runs


def croco_ranks(folder: Path) -> int:
    """NP_XI * NP_ETA from the oceanbridge block of param.h."""
    text = (folder / "param.h").read_text()
    x = re.search(r"define SPLITTING_X (\d+)", text)
    e = re.search(r"define SPLITTING_ETA (\d+)", text)
    return int(x.group(1)) * int(e.group(1))


def set_croco_in(path: Path, ntimes: int, nwrt: int) -> None:
    """Shorten a BASIN croco.in: NTIMES steps, a history record every nwrt steps, no averages."""
    lines = path.read_text().splitlines()
    for key, edit in (("time_stepping:", lambda v: [str(ntimes)] + v[1:]),
                      ("history:", lambda v: [v[0], str(nwrt)] + v[2:]),
                      ("averages:", lambda v: [v[0], str(10 * ntimes)] + v[2:])):
        k = next(i for i, line in enumerate(lines) if line.strip().startswith(key))
        lines[k + 1] = "      " + "  ".join(edit(lines[k + 1].split()))
    path.write_text("\n".join(lines) + "\n")


def run_folder(src: Path, dst: Path, ntimes: int, nwrt: int, switches: dict[str, str]) -> Path:
    """A fresh run folder: croco, croco.in (shortened), param.h, namelist_obridge with ``switches``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("croco", "croco.in", "param.h"):
        shutil.copy2(src / name, dst / name)
    set_croco_in(dst / "croco.in", ntimes, nwrt)
    body = "\n".join(f"   {k} = {v}" for k, v in switches.items())
    (dst / "namelist_obridge").write_text(f"&namobridge\n{body}\n/\n")
    return dst


def history(folder: Path) -> dict[int, dict[str, np.ndarray]]:
    """basin_his.nc by step kt = time / dt: interior temp, zeta, and u, v averaged onto rho points."""
    import netCDF4
    out = {}
    with netCDF4.Dataset(folder / "basin_his.nc") as ds:
        times = np.asarray(ds.variables["scrum_time"][:])
        for r, t in enumerate(times):
            u = np.asarray(ds.variables["u"][r])[:, 1:-1, :]
            v = np.asarray(ds.variables["v"][r])[:, :, 1:-1]
            out[int(round(t / DT))] = {
                "temp": np.asarray(ds.variables["temp"][r])[:, 1:-1, 1:-1],
                "ssh": np.asarray(ds.variables["zeta"][r])[None, 1:-1, 1:-1],
                "u": 0.5 * (u[:, :, :-1] + u[:, :, 1:]),
                "v": 0.5 * (v[:, :-1, :] + v[:, 1:, :]),
            }
    return out


def deploy_config(run: Path, steps: int, freq: int, ranks: int, *, backend: str = "mpi", fields=FIELDS,
                  emulate: bool = False) -> Path:
    """A deploy config (run folder ``run``, ``fields`` every ``freq`` steps) for `oceanbridge worker`: train mode,
    or train + emulate with '<name>_emu' of every field every ``freq`` steps."""
    rows = [(n, k, "ocean_to_worker") for n, k in fields]
    rows += [(f"{n}_emu", k, "worker_to_ocean") for n, k in fields] if emulate else []
    text = "".join(f'\n[[fields]]\nname = "{n}"\ndirection = "{d}"\nnlev = {k}\nfreq = {freq}\n' for n, k, d in rows)
    modes = '["train", "emulate"]' if emulate else '["train"]'
    text = (f'[run]\nbackend = "{backend}"\nrun_dir = "{run}"\ndt = {DT}\nnit000 = 1\nsteps = {steps}\n'
            f'timeout = 300.0\n\n[ocean]\nmodel = "croco"\nexecutable = "{run}/croco"\nargs = ["croco.in"]\n'
            f'ranks = {ranks}\nnx = {NX}\nny = {NY}\n\n[worker]\nranks = 1\nmodes = {modes}\n\n[worker.buffer]\n'
            'watermark = 4\n' + text)
    path = run / "deploy.toml"
    path.write_text(text)
    return path
