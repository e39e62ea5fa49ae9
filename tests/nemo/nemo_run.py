"""Run a patched NEMO GYRE_OCE build (NEMO_DIR) in a scratch folder, alone or with a Python peer."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import f90nml
import numpy as np

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CFG = os.environ.get("NEMO_CFG", "GYRE_OCE")


def nemo_exp(nemo_dir: str | Path) -> Path:
    """EXP00 of the built configuration (its ``nemo`` link made by makenemo)."""
    return Path(nemo_dir) / "cfgs" / CFG / "EXP00"


def built(nemo_dir: str | None) -> str:
    """'' when NEMO_DIR holds a GYRE_OCE build patched with key_obridge, else why not."""
    if not nemo_dir:
        return "NEMO_DIR is not set (a NEMO 5.0 tree with cfgs/GYRE_OCE built after 'oceanbridge install nemo')"
    exe = nemo_exp(nemo_dir) / "nemo"
    if not exe.exists():
        return f"{exe} not found: build GYRE_OCE with makenemo first (deploy/nemo/README.md)"
    if "key_obridge" not in (Path(nemo_dir) / "cfgs" / CFG / f"cpp_{CFG}.fcm").read_text():
        return f"{CFG} was built without key_obridge: run 'oceanbridge install nemo' and rebuild"
    return ""


def prepare(nemo_dir: str | Path, folder: Path, *, itend: int, obridge: dict | None = None,
            namrun: dict | None = None) -> Path:
    """A run folder: EXP00's files (links followed), namelist_cfg patched with &namrun and &namobridge."""
    folder.mkdir(parents=True, exist_ok=True)
    exp = nemo_exp(nemo_dir)
    for f in exp.iterdir():
        if f.name != "nemo" and f.is_file():
            shutil.copyfile(f, folder / f.name)
    os.symlink(exp / "nemo", folder / "nemo")
    run = {"nn_itend": itend, "nn_stock": itend, "nn_write": itend, **(namrun or {})}
    f90nml.patch(str(folder / "namelist_cfg"), {"namrun": run, "namobridge": obridge or {}},
                 str(folder / "namelist_cfg.new"))
    os.replace(folder / "namelist_cfg.new", folder / "namelist_cfg")
    return folder


def nemo_argv(folder: Path) -> list[str]:
    return [str(folder / "nemo")]


def receiver_argv(mode: str, *args: str) -> list[str]:
    import sys
    return [sys.executable, str(HERE / "nemo_receiver.py"), mode, *args]


def run_alone(folder: Path, ranks: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
    from bridge.mpirun import mpirun_prefix
    cmd = mpirun_prefix(ranks) + ["-np", str(ranks), "./nemo"]
    return subprocess.run(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def restart_fields(folder: Path, step: int, names=("tn", "sn", "sshn", "un", "vn")) -> dict[str, np.ndarray]:
    """NEMO's own restart of ``step``, every rank's file put back on the global interior grid (nlev, ny, nx)."""
    import netCDF4

    files = sorted(folder.glob(f"*_{step:08d}_restart*.nc"))
    if not files:
        raise FileNotFoundError(f"{folder}: no restart file of step {step}")
    out: dict[str, np.ndarray] = {}
    for f in files:
        with netCDF4.Dataset(f) as ds:
            gsize = ds.getncattr("DOMAIN_size_global") if "DOMAIN_size_global" in ds.ncattrs() else None
            first = ds.getncattr("DOMAIN_position_first") if gsize is not None else (1, 1)
            for n in names:
                a = np.asarray(ds[n][:])
                a = a.reshape(-1, *a.shape[-2:])
                if n not in out:
                    ny, nx = (gsize[1], gsize[0]) if gsize is not None else a.shape[-2:]
                    out[n] = np.full((a.shape[0], ny, nx), np.nan)
                j0, i0 = first[1] - 1, first[0] - 1
                out[n][:, j0:j0 + a.shape[1], i0:i0 + a.shape[2]] = a
    return out


def run_stat(folder: Path) -> list[str]:
    """The lines of NEMO's run.stat (one per step)."""
    return (folder / "run.stat").read_text().splitlines() if (folder / "run.stat").exists() else []


def per_step_time(folder: Path) -> float:
    """Wall time per step printed by obn_finalize in ocean.output."""
    m = re.search(r"obn_finalize: +(\d+) steps, wall time per step +([0-9.Ee+-]+) s", (folder / "ocean.output").read_text())
    if not m:
        raise ValueError(f"{folder}/ocean.output: no 'obn_finalize: ... wall time per step' line")
    return float(m.group(2))
