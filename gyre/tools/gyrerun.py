"""Helpers to set up and launch gyre runs (used by tests/gyre, benchmarks/bench_gyre.py and the demo).

    from gyrerun import make_rundir, run_gyre
    rd = make_rundir(tmp, {"namrun": {"nn_itend": 10, "nn_write": 5}, "namdom": {"jpni": 2, "jpnj": 1}})
    res = run_gyre(rd, nranks=2)                  # uncoupled
    res = run_gyre(rd, nranks=1, worker=["python", "w.py"], nworker=1)   # MPMD with a Python worker
    res = run_members([rd1, rd2], nranks=1, worker=["python", "w.py"])    # K members (cn_obr_name) + a worker

Namelist values: bool -> .true./.false., str -> quoted, list/tuple -> comma-separated, numbers as repr.
Keys may carry Fortran sections, e.g. {"rn_island(:,1)": [100, 300, 800, 1200]}.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bridge.mpirun import mpirun_prefix, wait_mpirun

GYRE_DIR = Path(__file__).resolve().parents[1]
REPO = GYRE_DIR.parent
NAMELIST_REF = GYRE_DIR / "cfg" / "namelist_ref"


def default_exe() -> Path:
    """build/bin/gyre.exe of this checkout (or $GYRE_EXE)."""
    return Path(os.environ.get("GYRE_EXE", REPO / "build" / "bin" / "gyre.exe"))


def _fmt(value) -> str:
    if isinstance(value, bool):
        return ".true." if value else ".false."
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return repr(value)


def namelist_text(blocks: dict[str, dict]) -> str:
    """Namelist text of {block: {variable: value}} (blocks without '&')."""
    lines = []
    for block, values in blocks.items():
        lines.append(f"&{block}")
        lines += [f"   {key} = {_fmt(val)}" for key, val in values.items()]
        lines.append("/")
    return "\n".join(lines) + "\n"


def make_rundir(path: str | os.PathLike, blocks: dict[str, dict] | None = None, *, raw_cfg: str | None = None) -> Path:
    """A run directory with namelist_ref (the model's reference) and namelist_cfg (blocks, or raw text)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(NAMELIST_REF, path / "namelist_ref")
    (path / "namelist_cfg").write_text(raw_cfg if raw_cfg is not None else namelist_text(blocks or {}))
    return path


def mpi_env() -> dict[str, str]:
    """Environment for mpirun as root on a small machine."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    # ranks that wait yield their core: on a shared 2-core machine, busy-polling ranks would starve each other
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    # the worker imports the project's packages from the checkout
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    rundir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def mpirun_command(nranks: int, exe: Path | None = None, worker: list[str] | None = None, nworker: int = 1,
                   *, rundirs: list[Path] | None = None) -> list[str]:
    """mpirun -np N gyre.exe [: -np M worker...]; with rundirs, one gyre app per folder (-wdir), e.g. K members."""
    apps = [["-wdir", str(d), str(exe or default_exe())] for d in rundirs] if rundirs else [[str(exe or default_exe())]]
    cmd = mpirun_prefix(nranks * len(apps) + (nworker if worker else 0))
    for k, app in enumerate(apps):
        cmd += ([":"] if k else []) + ["-np", str(nranks)] + app
    if worker:
        cmd += [":", "-np", str(nworker)] + list(worker)
    return cmd


def run_gyre(rundir: Path, nranks: int = 1, *, worker: list[str] | None = None, nworker: int = 1,
             timeout: float = 300, exe: Path | None = None, env: dict | None = None) -> RunResult:
    """Launch gyre (and optionally a worker, MPMD) in rundir; never hangs beyond timeout."""
    return _launch(mpirun_command(nranks, exe, worker, nworker), Path(rundir), timeout, env)


def run_members(rundirs: list[Path], nranks: int = 1, *, worker: list[str] | None = None, nworker: int = 1,
                cwd: Path | None = None, timeout: float = 300, exe: Path | None = None,
                env: dict | None = None) -> RunResult:
    """Launch K gyre members, each in its own run directory (its cn_obr_name tells them apart), plus a worker
    started in cwd (default: the parent of the first run directory), as one MPMD job."""
    cwd = Path(cwd or Path(rundirs[0]).parent)
    cmd = mpirun_command(nranks, exe, worker, nworker, rundirs=[Path(d).resolve() for d in rundirs])
    return _launch(cmd, cwd, timeout, env)


def _launch(cmd: list[str], cwd: Path, timeout: float, env: dict | None) -> RunResult:
    full_env = mpi_env()
    if env:
        full_env.update(env)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=err, text=True)
        try:
            note = wait_mpirun(proc, timeout)  # also stops an mpirun that outlives its job (Open MPI 4.1)
        except subprocess.TimeoutExpired:
            note = None
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read() + (note or "")
    if note is None:
        raise AssertionError(f"gyre run hung for more than {timeout} s in {cwd}\n{stdout}\n{stderr}")
    return RunResult(proc.returncode, stdout, stderr, cwd)


def read_fields(path: Path) -> dict:
    """The fields file as numpy arrays: {'step': (nt,), 'ssh': (nt, ny, nx), ...}."""
    import netCDF4
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return {name: ds[name][...].copy() for name in ds.variables}


RESTART_FIELDS = ("ssh", "u", "v", "temp")  # gyre_par.F90's cp_fld: what a restart holds


def write_restart(path: Path, state: dict, *, kt: int = 0, dt: float = 0.0, dx: float, dy: float) -> Path:
    """A gyre restart file holding ``state`` = {ssh, u, v, temp: (ny, nx)} after step ``kt`` (gyre_rst.F90's
    layout): a generated or hand-made state to start a member from (``ln_rstart``, ``cn_ocerst_in``). The time
    scheme keeps no other memory, so the restart is the whole state. Written atomically (models.ncio)."""
    import netCDF4
    import numpy as np

    from models.ncio import TIME_UNITS, atomic_write, cf_attrs
    path = Path(path)
    missing = [k for k in RESTART_FIELDS if k not in state]
    if missing:
        raise ValueError(f"write_restart {path}: the state lacks {missing}")
    ny, nx = np.shape(state["ssh"])

    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.createDimension("x", nx)
            ds.createDimension("y", ny)
            ds.createVariable("x", "f8", ("x",))[:] = (np.arange(nx) + 0.5) * dx
            ds.createVariable("y", "f8", ("y",))[:] = (np.arange(ny) + 0.5) * dy
            for name in RESTART_FIELDS:
                var = ds.createVariable(name, "f8", ("y", "x"))
                var.setncatts({k: v for k, v in cf_attrs(name).items() if k in ("standard_name", "units")})
                var[:] = np.asarray(state[name], dtype=float)
            ds.createVariable("kt", "i4")[...] = kt
            t = ds.createVariable("time", "f8")
            t.units = TIME_UNITS
            t[...] = kt * dt
            ds.title = "oceanbridge gyre: restart written from a given state"
    return atomic_write(path, write)


if __name__ == "__main__":  # python gyre/tools/gyrerun.py RUNDIR NRANKS
    res = run_gyre(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    print(res.output)
    sys.exit(res.returncode)
