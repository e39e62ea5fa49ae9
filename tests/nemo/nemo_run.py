"""Run a patched NEMO GYRE_OCE build (NEMO_DIR) in a scratch folder, alone or with a Python peer."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import f90nml
import numpy as np

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CFG = os.environ.get("NEMO_CFG", "GYRE_OCE")
MAXSEND = 10                                 # jp_obr_maxfld of obridge_nemo_nml.F90


def nemo_exp(nemo_dir: str | Path, cfg: str = CFG) -> Path:
    """EXP00 of the built configuration (its ``nemo`` link made by makenemo)."""
    return Path(nemo_dir) / "cfgs" / cfg / "EXP00"


def built(nemo_dir: str | None, cfg: str = CFG) -> str:
    """'' when NEMO_DIR holds a build of ``cfg`` patched with key_obridge, else why not."""
    if not nemo_dir:
        return f"NEMO_DIR is not set (a NEMO 5.0 tree with cfgs/{cfg} built after 'oceanbridge install nemo')"
    exe = nemo_exp(nemo_dir, cfg) / "nemo"
    if not exe.exists():
        return f"{exe} not found: build {cfg} with makenemo first (deploy/nemo/README.md)"
    if "key_obridge" not in (Path(nemo_dir) / "cfgs" / cfg / f"cpp_{cfg}.fcm").read_text():
        return f"{cfg} was built without key_obridge: run 'oceanbridge install nemo' and rebuild"
    return ""


def prepare(nemo_dir: str | Path, folder: Path, *, itend: int, obridge: dict | None = None,
            namrun: dict | None = None, cfg_name: str = CFG) -> Path:
    """A run folder: EXP00's files (links followed), namelist_cfg patched with &namrun and &namobridge."""
    folder.mkdir(parents=True, exist_ok=True)
    exp = nemo_exp(nemo_dir, cfg_name)
    for f in exp.iterdir():      # inputs only: namelists and XIOS files, not outputs of earlier runs
        if f.is_file() and (f.name.startswith("namelist") or f.suffix == ".xml"):
            shutil.copyfile(f, folder / f.name)
    # start from a namelist_cfg without &namobridge: f90nml.patch (1.5) garbles a list it extends in place
    cfg = folder / "namelist_cfg"
    cfg.write_text(re.sub(r"(?ims)^\s*&namobridge\b.*?^\s*/\s*$", "", cfg.read_text()))
    os.symlink(exp / "nemo", folder / "nemo")
    run = {"nn_itend": itend, "nn_stock": itend, "nn_write": itend, **(namrun or {})}
    obridge = dict(obridge or {})
    if "cn_obr_send" in obridge:   # a shorter list would keep namelist_ref's later entries (Fortran namelist rule)
        obridge["cn_obr_send"] = list(obridge["cn_obr_send"]) + [""] * (MAXSEND - len(obridge["cn_obr_send"]))
    f90nml.patch(str(folder / "namelist_cfg"), {"namrun": run, "namobridge": obridge},
                 str(folder / "namelist_cfg.new"))
    os.replace(folder / "namelist_cfg.new", folder / "namelist_cfg")
    return folder


def receiver_argv(mode: str, *args: str) -> list[str]:
    import sys
    return [sys.executable, str(HERE / "nemo_receiver.py"), mode, *args]


def run_alone(folder: Path, ranks: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
    from bridge.mpirun import mpirun_prefix
    return launch(mpirun_prefix(ranks) + ["-np", str(ranks), "./nemo"], folder, timeout)


def coupled_cmd(nemo_ranks: int, peer: list[str], py_ranks: int = 1, keep_going: bool = False) -> list[str]:
    """``mpirun -np N ./nemo : -np M <peer>``."""
    from bridge.mpirun import mpirun_prefix
    cmd = mpirun_prefix(nemo_ranks + py_ranks, keep_going_on_failure=keep_going)
    return cmd + ["-np", str(nemo_ranks), "./nemo", ":", "-np", str(py_ranks)] + peer


def launch(cmd: list[str], folder: Path, timeout: float, grace: float = 10.0,
           env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an mpirun command in ``folder`` (output in mpirun.log and returned).

    Open MPI 4.1's mpirun sometimes outlives every process it started after an MPI_Abort that meets a
    peer in MPI_Finalize: it is killed ``grace`` seconds after its last child ended (and says so).
    A job that runs past ``timeout`` raises TimeoutError: a hang."""
    log = folder / "mpirun.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)        # its own group: a kill reaches every rank
        t0, orphan_since, note = time.monotonic(), None, ""
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - t0 > timeout:
                _kill_group(proc)
                raise TimeoutError(f"{cmd} ran for more than {timeout} s:\n{log.read_text()[-3000:]}")
            alive = _has_children(proc.pid)
            orphan_since = None if alive else (orphan_since or time.monotonic())
            if orphan_since and time.monotonic() - orphan_since > grace:
                _kill_group(proc)
                note = f"\nnemo_run: mpirun outlived its processes by {grace:g} s and was killed\n"
    return subprocess.CompletedProcess(cmd, proc.returncode if not note else 1, log.read_text() + note)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _has_children(pid: int) -> bool:
    try:
        return any(Path(t, "children").read_text().split() for t in Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False


def restart_fields(folder: Path, step: int, names=("tn", "sn", "sshn", "un", "vn")) -> dict[str, np.ndarray]:
    """NEMO's own restart of ``step``, every rank's file put back on the global interior grid (nlev, ny, nx)."""
    files = sorted(folder.glob(f"*_{step:08d}_restart*.nc"))
    if not files:
        raise FileNotFoundError(f"{folder}: no restart file of step {step}")
    return global_fields(files, names)


def global_fields(files: list[Path], names) -> dict[str, np.ndarray]:
    """Variables of NEMO's per-rank files (restart, mesh_mask) on the global interior grid (nlev, ny, nx),
    placed by their DOMAIN_position_first / DOMAIN_size_global attributes."""
    import netCDF4

    out: dict[str, np.ndarray] = {}
    for f in files:
        with netCDF4.Dataset(f) as ds:
            nx, ny = ds.getncattr("DOMAIN_size_global")
            i0, j0 = ds.getncattr("DOMAIN_position_first") - 1
            for n in names:
                a = np.asarray(ds[n][:])
                a = a.reshape(-1, *a.shape[-2:])
                out.setdefault(n, np.full((a.shape[0], ny, nx), np.nan))[:, j0:j0 + a.shape[1], i0:i0 + a.shape[2]] = a
    return out


def loop_timing(folder: Path) -> tuple[float, float]:
    """(wall time per step, share of the loop spent in bridge calls), from obn_finalize in ocean.output."""
    m = re.search(r"obn_finalize: +(\d+) steps, wall time per step +(\S+) s, in bridge calls +(\S+) s",
                  (folder / "ocean.output").read_text())
    if not m:
        raise ValueError(f"{folder}/ocean.output: no 'obn_finalize: ... wall time per step' line")
    steps, per_step, in_bridge = int(m.group(1)), float(m.group(2)), float(m.group(3))
    return per_step, in_bridge / max(per_step * (steps - 1), 1e-30)


def obn_applied(folder: Path) -> dict[int, dict[str, tuple[float, float]]]:
    """step -> field -> (min, max) over ocean points after the emulator's apply, from ocean.output."""
    out: dict[int, dict[str, tuple[float, float]]] = {}
    pat = r"obn_step: applied (\w+)_emu at step (\d+): ocean min, max = +(\S+) +(\S+)"
    for name, step, lo, hi in re.findall(pat, (folder / "ocean.output").read_text()):
        out.setdefault(int(step), {})[name] = (float(lo), float(hi))
    return out


def check_emulator_applied(folder: Path, steps: list[int], names=("sst", "ssh")) -> None:
    """At every emulator step NEMO's own min/max over its ocean points right after the apply (ocean.output)
    equal those of the state the worker sent (its emulated.nc): the emulator changed NEMO's state to it."""
    import netCDF4
    ocean = global_fields(sorted(folder.glob("mesh_mask_*.nc")), ["tmask"])["tmask"][0] == 1
    applied = obn_applied(folder)
    with netCDF4.Dataset(folder / "emulated.nc") as ds:
        assert [int(k) for k in ds["step"][:]] == steps and sorted(applied) == steps, (applied, steps)
        for t, kt in enumerate(steps):
            for name in names:
                sent = np.asarray(ds[f"{name}_emulated"][0, t])[ocean]
                assert applied[kt][name] == (sent.min(), sent.max()), (name, kt)


# the deploy config of 'oceanbridge worker' on GYRE (2 NEMO ranks, 32 x 22, RK3 step 14400 s)
TRAIN_TOML = """
[run]
backend = "mpi"
run_dir = "."
dt = 14400.0
nit000 = 1
steps = 60
timeout = 120.0

[ocean]
model = "nemo"
executable = "./nemo"
ranks = 2
nx = 32
ny = 22

[worker]
ranks = 1
modes = ["train"]
device = "cpu"

[worker.train]
batch_size = 4
min_steps = 60

[worker.buffer]
capacity = 64
watermark = 4
"""


def emulator_toml(backend: str = "mpi", ocean_name: str = "") -> str:
    """The train + emulate deploy config of GYRE (2 ranks, 20 steps): sst and ssh every 5 steps, both ways."""
    fields = "".join(f'[[fields]]\nname = "{n}"\ndirection = "{d}"\nfreq = 5\n\n'
                     for n, d in (("sst", "ocean_to_worker"), ("ssh", "ocean_to_worker"),
                                  ("sst_emu", "worker_to_ocean"), ("ssh_emu", "worker_to_ocean")))
    toml = TRAIN_TOML.replace("steps = 60", "steps = 20").replace('modes = ["train"]', 'modes = ["train", "emulate"]')
    toml = toml.replace('backend = "mpi"', f'backend = "{backend}"')
    if ocean_name:
        toml = toml.replace('model = "nemo"', f'model = "nemo"\nname = "{ocean_name}"')
    return toml + "\n" + fields
