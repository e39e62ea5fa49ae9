#!/usr/bin/env python3
"""Real NEMO (issue 16, part 6): NEMO 5.0 GYRE_OCE restarts from a state the oceanbridge worker generated.

Needs ``NEMO_DIR``: a NEMO 5.0 tree whose GYRE_OCE was built after ``oceanbridge install nemo``
(deploy/nemo/README.md). Nothing of NEMO is written into this repository: every run folder lives
under ``--out``. The stages, one after the other on the same machine:

1. ``control``: one NEMO member at the held-out θ* from rest, uncoupled, ``--train-years`` model
   years with a restart file every month (``nn_stock``). Its year 1 is the *rest* start, its last
   year (after ``train_years - 1`` years of physical spin-up) the *control*: the state the generated
   start stands in for.
2. ``train``: the in-situ training launch. ``--members`` GYRE_OCE members with θ = lateral viscous
   velocity ``rn_Uv`` (``&namdyn_ldf``, Latin hypercube over ``--theta-low .. --theta-high``) spin
   up from rest for ``--train-years`` years and stream ssh, u, v, T and S (31 levels) every
   ``--state-every`` steps to one worker rank, in one MPMD job (preprod writes the member folders).
   The worker is ``oceanbridge worker``'s own runtime (``bridge.worker.cli.run_worker``) in its
   ``generate`` mode: it learns p(x | θ) online with a ``generate`` diffusion surrogate and, on the
   same batches, its MSE baseline, and writes ``generator.pt`` / ``generator_mse.pt``. The deploy
   layer refuses ``generate`` for NEMO (its equilibrium detector watches the gyre's layer metrics),
   so this script hands the runtime a calendar watch instead of the detector: a state joins the
   training set when it lies after ``--burn-in-days`` and within ``--window-days`` of a new year
   (1 January: the restart's calendar date, so the generated state and NEMO's forcing agree in season).
3. ``spinup``: ``oceanbridge preprod`` + ``oceanbridge launch`` of one member at θ* with
   ``ln_obr_spinup = .true.``: the worker (``spinup`` mode, ``[worker.spinup] checkpoint``) sends a
   generated state as ``<name>_init`` at step nit000-1, NEMO replaces its initial state by it and
   runs ``--restart-years`` years (monthly restart files). Once with the diffusion generator
   (``diffusion``) and once with the MSE baseline (``mse``).
4. ``nearest``: θ* restarted (``ln_rstart``) from the nearest-θ training member's restart at the
   control's start date: the honest baseline of DESIGN.md section 10.
5. ``metrics``: from NEMO's own restart files (and the mesh_mask of the control run) every month of
   the year after each start: volume-mean kinetic energy, mean temperature and salinity, SST, SSH
   spatial variance, barotropic streamfunction max/min (``models.ocean_metrics.gyre_transports`` on
   the depth-integrated transports), max |u|. Offsets from the control in units of the control's
   monthly standard deviation within its year (one year of control gives no interannual std); blow-up
   check: NaN in any restart field, ``E R R O R`` in ocean.output, the end of run.stat.

    python benchmarks/nemo_spinup_restart.py --nemo-dir $NEMO_DIR --out out/nemo_spinup_restart \\
        --json out/nemo_spinup_restart.json

Outputs in ``--out``: ``metrics.nc`` (CF: every metric, start and month), ``sst_last_month.nc``,
``nemo_spinup_restart.png``, ``summary.json`` (and ``--json``); the table is printed at the end.
``--stages`` reruns a subset (the others' folders are reused).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "nemo"))

log = logging.getLogger("nemo_spinup_restart")

CFG = "GYRE_OCE"
DT = 14400.0                      # GYRE_OCE's rn_Dt (RK3)
STEPS_PER_DAY = int(86400 / DT)   # 6
YEAR_DAYS = 360                   # GYRE: nn_leapy = 30
STEPS_PER_YEAR = YEAR_DAYS * STEPS_PER_DAY
MONTH = 30 * STEPS_PER_DAY        # restart files every 30 days
NX, NY, NLEV = 32, 22, 31         # nn_GYRE = 1
FIELDS = (("ssh", 1, "m"), ("u", NLEV, "m s-1"), ("v", NLEV, "m s-1"), ("tem3d", NLEV, "degC"),
          ("sal3d", NLEV, "1e-3"))
THETA = ("rn_Uv", "namdyn_ldf", "m s-1", "lateral viscous velocity (Ahm = Uv Lv / 2)")
STAGES = ("control", "train", "spinup", "nearest", "metrics")
STARTS = ("rest", "diffusion", "mse", "nearest")  # compared with the control
RHO0, CP = 1026.0, 3991.86795711963


# ----------------------------------------------------------------------------- configs and folders


def exp00(nemo_dir: Path) -> Path:
    return nemo_dir / "cfgs" / CFG / "EXP00"


def namelist_template(nemo_dir: Path, folder: Path, namrun: dict, extra: dict | None = None) -> Path:
    """EXP00's namelist_cfg (no &namobridge) patched with &namrun (restart frequency...) and ``extra`` groups."""
    import f90nml
    folder.mkdir(parents=True, exist_ok=True)
    src = exp00(nemo_dir) / "namelist_cfg"
    text = re.sub(r"(?ims)^\s*&namobridge\b.*?^\s*/\s*$", "", src.read_text())
    plain = folder / "namelist_cfg.exp00"
    plain.write_text(text)
    out = folder / "namelist_cfg.template"
    f90nml.patch(str(plain), {"namrun": namrun, **(extra or {})}, str(out))
    plain.unlink()
    return out


def fields_toml(freq: int, init: bool) -> str:
    out = ""
    for name, nlev, units in FIELDS:
        out += f'[[fields]]\nname = "{name}"\ndirection = "ocean_to_worker"\nnlev = {nlev}\nfreq = {freq}\n' \
               f'units = "{units}"\n\n'
    if init:
        for name, nlev, units in FIELDS:
            out += f'[[fields]]\nname = "{name}_init"\ndirection = "worker_to_ocean"\nnlev = {nlev}\nfreq = 1\n' \
                   f'units = "{units}"\n\n'
    return out


def deploy_toml(nemo_dir: Path, run_dir: Path, *, steps: int, members: int, low: float, high: float,
                modes: str, freq: int, init: bool, worker: str, model: str, timeout: float = 600.0) -> str:
    exp = exp00(nemo_dir)
    return f"""# written by benchmarks/nemo_spinup_restart.py
[run]
backend = "mpi"
run_dir = "{run_dir}"
dt = {DT}
nit000 = 1
steps = {steps}
timeout = {timeout}

[ocean]
model = "nemo"
executable = "{exp / 'nemo'}"
ranks = 1
members = {members}
nx = {NX}
ny = {NY}
namelist = "{run_dir / 'namelist_cfg.template'}"
namelist_ref = "{exp / 'namelist_ref'}"

[[parameters]]
name = "{THETA[0]}"
block = "{THETA[1]}"
low = {low!r}
high = {high!r}
units = "{THETA[2]}"
description = "{THETA[3]}"

[ensemble]
design = "lhs"
seed = 0

[worker]
ranks = 1
modes = {modes}
device = "cpu"

{worker}
{model}
{fields_toml(freq, init)}"""


MODEL_TOML = """[model]
model_channels = {channels}
levels = 2
mask_file = "{mask}"
mask_var = "mask"
dx = {dx}
dy = {dy}
"""


def model_toml(out: Path, channels: int) -> str:
    with _nc(out / "mask.nc") as ds:
        dx, dy = float(ds.getncattr("dx")), float(ds.getncattr("dy"))
    return MODEL_TOML.format(channels=channels, mask=out / "mask.nc", dx=dx, dy=dy)


def _nc(path):
    import netCDF4
    return netCDF4.Dataset(path)


def theta_star(members: np.ndarray) -> float:
    """The held-out θ*: the middle of the widest gap between the sorted members' θ."""
    t = np.sort(members)
    k = int(np.argmax(np.diff(t)))
    return float(0.5 * (t[k] + t[k + 1]))


# ----------------------------------------------------------------------------- running


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def run_logged(cmd: list[str], cwd: Path, logname: str, timeout: float) -> int:
    """Run ``cmd`` in ``cwd`` (output in ``cwd/logname``); return its exit status."""
    log.info("running in %s: %s", cwd, " ".join(cmd))
    t0 = time.perf_counter()
    with open(cwd / logname, "w") as fh:
        try:
            rc = subprocess.run(cmd, cwd=cwd, env=env(), stdout=fh, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    log.info("  exit %d after %.0f s (log %s)", rc, time.perf_counter() - t0, cwd / logname)
    return rc


def nemo_alone(nemo_dir: Path, folder: Path, template: Path, timeout: float) -> int:
    """One uncoupled NEMO rank in ``folder`` (namelist_cfg from ``template``)."""
    from bridge.mpirun import mpirun_prefix
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "namelist_cfg")
    for name in ("namelist_ref", "nemo"):
        link = folder / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(exp00(nemo_dir) / name, link)
    return run_logged(mpirun_prefix(1) + ["-np", "1", "./nemo"], folder, "mpirun.log", timeout)


def stage_control(args, nemo_dir: Path, out: Path, theta: float) -> dict:
    """θ* from rest, uncoupled, train_years years, monthly restarts, mesh_mask: rest start and control."""
    folder = out / "control"
    steps = args.train_years * STEPS_PER_YEAR
    template = namelist_template(nemo_dir, folder, {"nn_itend": steps, "nn_stock": MONTH, "nn_write": steps},
                                 {"namdom": {"ln_meshmask": True}, THETA[1]: {THETA[0]: theta}})
    rc = nemo_alone(nemo_dir, folder, template, args.timeout)
    write_mask(folder, out / "mask.nc")
    return {"folder": str(folder), "exit": rc, "steps": steps, THETA[0]: theta}


def write_mask(folder: Path, path: Path) -> None:
    """The surface T mask (y, x) of NEMO's mesh_mask, the worker's [model] mask_file."""
    import nemo_run as nr

    from models.ncio import atomic_write
    mesh = nr.global_fields(sorted(folder.glob("mesh_mask*.nc")), ["tmask", "e1t", "e2t"])
    mask = mesh["tmask"][0]

    def write(tmp: str) -> None:
        import netCDF4
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", "title": "NEMO GYRE_OCE surface T mask (tmask level 1)",
                          "dx": float(np.mean(mesh["e1t"][0][mask == 1])),
                          "dy": float(np.mean(mesh["e2t"][0][mask == 1]))})
            ds.createDimension("y", mask.shape[0])
            ds.createDimension("x", mask.shape[1])
            v = ds.createVariable("mask", "i1", ("y", "x"))
            v.setncatts({"long_name": "land-sea mask", "flag_values": np.array([0, 1], "i1"),
                         "flag_meanings": "land ocean"})
            v[:] = mask.astype("i1")
    atomic_write(path, write)


def stage_train(args, nemo_dir: Path, out: Path) -> dict:
    """The in-situ training launch: preprod writes the members' folders, then one MPMD job with this
    script's worker rank (``--peer``), which is oceanbridge worker's runtime in generate mode."""
    from bridge.config.config import load_config
    from deploy.mpmd import mpirun_command, worker_argv
    from deploy.preprod import preprod
    folder = out / "train"
    steps = args.train_years * STEPS_PER_YEAR
    # members keep a restart at every model year (the nearest-member start reads the control's start date)
    namelist_template(nemo_dir, folder, {"nn_itend": steps, "nn_stock": STEPS_PER_YEAR, "nn_write": steps})
    worker = (f"[worker.train]\nbatch_size = {args.batch_size}\nmin_steps = {args.min_steps}\n"
              f"log_every = 100\n\n[worker.buffer]\nkind = \"reservoir\"\ncapacity = 4096\nwatermark = 8\n\n"
              f"[worker.generate]\nbaseline = true\n\n[worker.checkpoint]\nresume = false\n")
    toml = deploy_toml(nemo_dir, folder, steps=steps, members=args.members, low=args.theta_low,
                       high=args.theta_high, modes='["train"]', freq=args.state_every, init=False, worker=worker,
                       model=model_toml(out, args.channels), timeout=args.timeout)
    (folder / "train.toml").write_text(toml)
    cfg = load_config(folder / "train.toml")
    preprod(cfg)
    cmd = mpirun_command(cfg, cores=len(os.sched_getaffinity(0)))
    tail = list(worker_argv(cfg))
    assert cmd[-len(tail):] == tail, cmd
    cmd = cmd[:-len(tail)] + [sys.executable, str(Path(__file__).resolve()), "--peer", str(folder / "train.toml")]
    log.info("training launch: %d members x %d years, θ %s = %s", args.members, args.train_years, THETA[0],
             (folder / "parameters.csv").read_text().strip().splitlines()[1:])
    t0 = time.perf_counter()
    rc, paused = run_training_job(cmd, folder, cfg, steps, args.timeout)
    wall = time.perf_counter() - t0
    log.info("training launch: exit %d after %.0f s (members paused for the worker's last %.0f s)", rc, wall, paused)
    if rc != 0:
        raise SystemExit(f"training launch failed (exit {rc}):\n{(folder / 'mpirun.log').read_text()[-4000:]}")
    return {**train_record(folder), "exit": rc, "wall_s": wall, "paused_s": paused, "command": " ".join(cmd)}


def train_record(folder: Path) -> dict:
    """What the training launch left: θ of the members, the worker's counters and losses."""
    summary = json.loads((folder / "worker_summary.json").read_text())
    return {"folder": str(folder), "theta": _theta_table(folder),
            "train_steps": summary["train_steps"], "loss_first": summary["loss_first"],
            "loss_last": summary["loss_last"], "counters": summary["counters"],
            "coupled": summary["coupled"], "qualified_states": summary["counters"]["pairs"],
            "worker_wall_s": summary["wall_s"], "learner_train_s": summary["train_s"]}


def run_training_job(cmd: list[str], folder: Path, cfg, steps: int, timeout: float) -> tuple[int, float]:
    """Run the MPMD job (output in mpirun.log). A NEMO member that has finished its run spins in MPI_Finalize
    (Open MPI 4.1, about 40 % of a core each) while the worker trains on after the ocean's last step; on a
    2-core machine that starves the worker. So once every member has written its last step (time.step), the
    members are SIGSTOPped, and SIGCONTinued when the worker has written worker_summary.json (the same hand
    measure as bench_spinup.py's first run; a defect of the finalize path, not of this experiment)."""
    from tqdm.auto import tqdm

    from bridge.mpirun import wait_mpirun
    members = [cfg.member_dir(k) for k in range(1, cfg.ocean.members + 1)]
    stopped: list[int] = []
    resumed, t_stop = False, None
    with open(folder / "mpirun.log", "w") as out:
        proc = subprocess.Popen(cmd, cwd=folder, env=env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        t0 = time.monotonic()
        bar = tqdm(total=steps, desc="training launch: NEMO steps (slowest member)", unit="step", mininterval=5)
        while proc.poll() is None:
            time.sleep(2.0)
            done = min(_time_step(m) for m in members)
            bar.update(max(done - bar.n, 0))
            if not stopped and not resumed and done >= steps:
                stopped = _nemo_children(proc.pid, str(cfg.ocean.executable))
                for pid in stopped:
                    os.kill(pid, signal.SIGSTOP)
                t_stop = time.monotonic()
                log.info("every member finished: NEMO ranks %s paused while the worker trains on", stopped)
            if stopped and not resumed and (folder / "worker_summary.json").is_file():
                for pid in stopped:
                    os.kill(pid, signal.SIGCONT)
                log.info("worker done: NEMO ranks %s continued into MPI_Finalize", stopped)
                resumed = True
            if time.monotonic() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)   # the job's own session: only its processes
                break
        bar.close()
        wait_mpirun(proc, 60)
    return proc.returncode, (time.monotonic() - t_stop) if t_stop else 0.0


def _time_step(folder: Path) -> int:
    try:
        return int((folder / "time.step").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _nemo_children(root: int, exe: str) -> list[int]:
    """Processes under ``root`` (the mpirun) that run the NEMO executable."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            kids = [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                if os.readlink(f"/proc/{kid}/exe") == os.path.realpath(exe):
                    found.append(kid)
            except OSError:
                pass
            todo.append(kid)
    return found


def _theta_table(folder: Path) -> dict[str, float]:
    from bridge.config.ensemble import read_parameters_csv
    return {c: v[THETA[0]] for c, v in read_parameters_csv(folder / "parameters.csv").items()}


def stage_spinup(args, nemo_dir: Path, out: Path, theta: float, start: str) -> dict:
    """oceanbridge preprod + launch: one member at θ* whose initial state is the worker's generated one."""
    folder = out / f"spinup_{start}"
    folder.mkdir(parents=True, exist_ok=True)
    steps = args.restart_years * STEPS_PER_YEAR
    namelist_template(nemo_dir, folder, {"nn_itend": steps, "nn_stock": MONTH, "nn_write": steps})
    ckpt = out / "train" / ("generator.pt" if start == "diffusion" else "generator_mse.pt")
    worker = f"[worker.spinup]\ncheckpoint = \"{ckpt}\"\nnum_steps = 18\n"
    # one member: LHS puts θ in [low, high); a width of 1e-9 fixes it at θ* (to 1e-9)
    toml = deploy_toml(nemo_dir, folder, steps=steps, members=1, low=theta, high=theta + 1e-9,
                       modes='["spinup"]', freq=steps, init=True, worker=worker,
                       model=model_toml(out, args.channels))
    (folder / "spin.toml").write_text(toml)
    cli = [sys.executable, "-m", "deploy.cli"]
    rc = run_logged(cli + ["preprod", "spin.toml"], folder, "preprod.log", 120)
    if rc == 0:
        rc = run_logged(cli + ["launch", "spin.toml"], folder, "launch.log", args.timeout)
    text = (folder / "ocean.output").read_text(errors="replace") if (folder / "ocean.output").exists() else ""
    replaced = "initial state replaced by the received one" in text
    return {"folder": str(folder), "exit": rc, "steps": steps, "checkpoint": str(ckpt), "replaced": replaced,
            "commands": ["oceanbridge preprod spin.toml", "oceanbridge launch spin.toml"]}


def stage_nearest(args, nemo_dir: Path, out: Path, theta: float) -> dict:
    """θ* restarted (ln_rstart) from the nearest training member's restart at the control's start date."""
    folder = out / "nearest"
    table = _theta_table(out / "train")
    member = min(table, key=lambda c: abs(table[c] - theta))
    k = list(table).index(member) + 1
    day0 = (args.train_years - 1) * STEPS_PER_YEAR
    src = out / "train" / f"member_{k}" / f"GYRE_{day0:08d}_restart.nc"
    if not src.is_file():
        raise SystemExit(f"{src} not found: the training members write a restart every model year")
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "nearest_restart.nc"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(src, link)
    steps = args.restart_years * STEPS_PER_YEAR
    template = namelist_template(nemo_dir, folder, {"nn_itend": steps, "nn_stock": MONTH, "nn_write": steps,
                                                    "ln_rstart": True, "nn_rstctl": 0,
                                                    "cn_ocerst_in": "nearest_restart"},
                                 {THETA[1]: {THETA[0]: theta}})
    rc = nemo_alone(nemo_dir, folder, template, args.timeout)
    return {"folder": str(folder), "exit": rc, "steps": steps, "member": member, THETA[0]: table[member],
            "restart": str(src)}


# ----------------------------------------------------------------------------- the worker rank (--peer)


class CalendarWatch:
    """Stands in for the generate mode's equilibrium detector (bridge/worker/equilibrium.py) on NEMO: a state
    joins the generator's training set when it is past ``burn_in_days`` and within ``window_days`` of a new
    year (the restart's calendar date). Same interface as ``EquilibriumWatch``: add, qualified, write, state."""

    def __init__(self, members, dt: float, burn_in_days: float, window_days: float):
        self.members, self.dt = tuple(members), dt
        self.burn_in, self.window = burn_in_days, window_days
        self.steps: dict[str, list[int]] = {m: [] for m in self.members}
        self.first: dict[str, int | None] = {m: None for m in self.members}

    def day(self, kt: int) -> float:
        return kt * self.dt / 86400.0

    def add(self, member: str, kt: int, state: np.ndarray) -> bool:
        day = self.day(kt)
        to_year = abs(day - YEAR_DAYS * round(day / YEAR_DAYS))
        if day < self.burn_in or to_year > self.window:
            return False
        self.steps[member].append(int(kt))
        if self.first[member] is None:
            self.first[member] = int(kt)
            log.info("member '%s': states from step %d (day %.0f) on join the generator's training set when "
                     "within %g days of a new year", member, kt, day, self.window)
        return True

    def qualified(self) -> dict[str, int | None]:
        return {m: None if self.first[m] is None else int(self.day(self.first[m]) // YEAR_DAYS) + 1
                for m in self.members}

    def state_dict(self) -> dict:
        return {"steps": {m: list(s) for m, s in self.steps.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.steps = {m: list(s) for m, s in state["steps"].items()}

    def write(self, path: Path) -> Path:
        from models.ncio import atomic_write

        def write(tmp: str) -> None:
            import netCDF4
            with netCDF4.Dataset(tmp, "w") as ds:
                ds.setncatts({"Conventions": "CF-1.8", "source": "benchmarks/nemo_spinup_restart.py (CalendarWatch)",
                              "title": "steps of each member's states in the generator's training set",
                              "burn_in_days": self.burn_in, "window_days": self.window})
                n = max([len(s) for s in self.steps.values()] + [1])
                ds.createDimension("member", len(self.members))
                ds.createDimension("sample", n)
                names = ds.createVariable("member", str, ("member",))
                for k, m in enumerate(self.members):
                    names[k] = m
                v = ds.createVariable("time", "f8", ("member", "sample"), fill_value=-1.0)
                v.setncatts({"standard_name": "time", "units": "days since 0001-01-01 00:00:00",
                             "calendar": "360_day", "long_name": "model time of each training state"})
                for k, m in enumerate(self.members):
                    v[k, :len(self.steps[m])] = [self.day(s) for s in self.steps[m]]
        return atomic_write(path, write)


def peer_main(config: Path) -> int:
    """The worker rank of the training launch: oceanbridge worker (bridge/worker/cli.py) in generate mode."""
    from bridge.worker.process import WorkerProcess
    process = WorkerProcess()          # joins MPI before anything can fail, as oceanbridge worker does
    process.catch_stop_signals()
    try:
        return _peer(config, process)
    except BaseException as err:       # noqa: BLE001  (process.end decides: stops the job with a message)
        process.end(err)
    return 1


def _peer(config: Path, process) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    import bridge.worker.cli as wcli
    from bridge.config.config import load_config
    from bridge.worker.settings import worker_settings
    from bridge.worker.tunnel import Tunnel, channel_names
    cfg = load_config(config)
    settings = worker_settings(cfg)    # validated as a train config ([ocean] model = "nemo")
    # the generate mode of the worker runtime, with the calendar watch in place of the gyre's detector
    cfg = dataclasses.replace(cfg, worker=dataclasses.replace(cfg.worker, modes=("generate",)))
    args = json.loads(os.environ.get("NSR_WATCH", "{}"))
    wcli.equilibrium_watch = lambda cfg_, settings_, channels_, mask_: CalendarWatch(
        cfg_.components, cfg_.run.dt, args.get("burn_in_days", 330.0), args.get("window_days", 30.0))
    import torch  # noqa: F401

    import models.train  # noqa: F401
    tunnel = Tunnel(cfg)
    summary = wcli.run_worker(cfg, settings, tunnel, fresh=True, progress=False, channels=channel_names(cfg),
                              on_coupled=lambda: process.mark_coupled(cfg.ocean.required))
    tunnel.finalize()
    log.info("worker done: %s", {k: v for k, v in summary.items() if k != "losses"})
    return 0


# ----------------------------------------------------------------------------- metrics


@dataclasses.dataclass
class Mesh:
    tmask: np.ndarray      # (k, y, x)
    umask: np.ndarray
    vmask: np.ndarray
    vol_t: np.ndarray      # e1t e2t e3t_0 tmask (m3)
    vol_u: np.ndarray
    vol_v: np.ndarray
    e3u: np.ndarray
    e3v: np.ndarray
    area_t: np.ndarray     # (y, x) surface ocean area
    dx: float
    dy: float


def read_mesh(folder: Path) -> Mesh:
    """NEMO's mesh_mask (ln_meshmask) on the global interior grid; GYRE_OCE is z-coordinate with full steps
    (key_vco_1d): the cell thickness is e3t_1d at every T, U and V point of a level."""
    import nemo_run as nr
    files = sorted(folder.glob("mesh_mask*.nc"))
    m = nr.global_fields(files, ["tmask", "umask", "vmask", "e1t", "e2t", "e1u", "e2u", "e1v", "e2v"])
    with _nc(files[0]) as ds:
        e3 = np.asarray(ds["e3t_1d"][:], dtype=float).reshape(-1)[:, None, None]
    t, u, v = m["tmask"], m["umask"], m["vmask"]
    return Mesh(t, u, v, m["e1t"] * m["e2t"] * e3 * t, m["e1u"] * m["e2u"] * e3 * u, m["e1v"] * m["e2v"] * e3 * v,
                e3 * u, e3 * v, (m["e1t"] * m["e2t"] * t)[0],
                float(np.mean(m["e1t"][0][t[0] == 1])), float(np.mean(m["e2t"][0][t[0] == 1])))


METRICS = {  # name -> (units, long_name)
    "ke": ("m2 s-2", "volume-mean kinetic energy per unit mass, (u2 + v2)/2"),
    "heat": ("J", "ocean heat content rho0 cp sum(T dV), T in degC"),
    "t_mean": ("degC", "volume-mean temperature"),
    "s_mean": ("1e-3", "volume-mean salinity"),
    "sst": ("degC", "area-mean sea surface temperature"),
    "ssh_var": ("m2", "spatial variance of sea surface height over ocean points"),
    "psi_max": ("Sv", "barotropic streamfunction maximum (clockwise, subtropical gyre)"),
    "psi_min": ("Sv", "barotropic streamfunction minimum (anticlockwise, subpolar gyre)"),
    "u_max": ("m s-1", "largest |u|, |v| over ocean points"),
}


def state_metrics(st: dict[str, np.ndarray], mesh: Mesh) -> dict[str, float]:
    """Metrics of one state {tn, sn, sshn, un, vn} (levels, y, x) on NEMO's mesh."""
    from models.ocean_metrics import GRAV, Grid, Physics, gyre_transports
    t, s, ssh, u, v = (np.nan_to_num(st[k], nan=np.nan) for k in ("tn", "sn", "sshn", "un", "vn"))
    vol = mesh.vol_t.sum()
    ke = 0.5 * ((u ** 2 * mesh.vol_u).sum() + (v ** 2 * mesh.vol_v).sum()) / vol
    ocean = mesh.tmask[0] == 1
    eta = ssh[0][ocean]
    # depth-integrated transports (m2 s-1) as the 'layer transports' of a unit-thickness layer
    grid = Grid(mesh.dx, mesh.dy, mesh.tmask[0])
    phys = Physics(h0=1.0, gprime=GRAV)
    psi_max, psi_min = gyre_transports(np.zeros_like(ssh[0]), (u * mesh.e3u).sum(0), (v * mesh.e3v).sum(0),
                                       grid, phys)
    return {"ke": float(ke), "heat": float(RHO0 * CP * (t * mesh.vol_t).sum()),
            "t_mean": float((t * mesh.vol_t).sum() / vol), "s_mean": float((s * mesh.vol_t).sum() / vol),
            "sst": float((t[0] * mesh.area_t).sum() / mesh.area_t.sum()), "ssh_var": float(eta.var()),
            "psi_max": float(psi_max), "psi_min": float(psi_min),
            "u_max": float(max(np.abs(u[mesh.umask == 1]).max(), np.abs(v[mesh.vmask == 1]).max()))}


def run_states(folder: Path, steps: list[int]) -> tuple[list[dict], list[bool]]:
    """Metrics and 'finite' of NEMO's restart files at ``steps``."""
    import nemo_run as nr
    out, finite = [], []
    for kt in steps:
        st = nr.restart_fields(folder, kt)
        finite.append(all(np.isfinite(a).all() for a in st.values()))   # one NEMO rank: no gaps on the grid
        out.append(st)
    return out, finite


def blowup(folder: Path, finite: list[bool]) -> dict:
    """Did it blow up: NaN in a restart field, NEMO's E R R O R lines, the last line of run.stat."""
    text = (folder / "ocean.output").read_text(errors="replace") if (folder / "ocean.output").exists() else ""
    errors = len(re.findall(r"E R R O R", text))
    stat = (folder / "run.stat").read_text().strip().splitlines() if (folder / "run.stat").exists() else []
    aborted = bool(list(folder.glob("output.abort*.nc")))   # NEMO's stp_ctl dumps the state when it stops
    return {"nan": not all(finite), "errors": errors, "abort_file": aborted,
            "run_stat_last": stat[-1].strip() if stat else "", "blew_up": (not all(finite)) or errors > 0 or aborted}


def sst_field(folder: Path, kt: int) -> np.ndarray:
    import nemo_run as nr
    return nr.restart_fields(folder, kt, names=("tn",))["tn"][0]


def generated_initial(folder: Path, mesh: Mesh) -> dict | None:
    """The state the worker sent (its initial.nc) as restart-like arrays, for month 0 of a generated start."""
    path = folder / "initial.nc"
    if not path.is_file():
        return None
    with _nc(path) as ds:
        def arr(name, nlev):
            if nlev == 1:
                return np.ma.filled(ds[f"{name}_initial"][0, 0], 0.0).astype(float)[None]
            return np.stack([np.ma.filled(ds[f"{name}@{k}_initial"][0, 0], 0.0).astype(float) for k in range(nlev)])
        try:
            st = {"sshn": arr("ssh", 1), "un": arr("u", NLEV), "vn": arr("v", NLEV), "tn": arr("tem3d", NLEV),
                  "sn": arr("sal3d", NLEV)}
        except (IndexError, KeyError) as err:
            log.warning("%s: cannot read the generated state (%s)", path, err)
            return None
    # NEMO applies it on ocean points only (tmask/umask/vmask): the same here
    return {"tn": st["tn"] * mesh.tmask, "sn": st["sn"] * mesh.tmask, "sshn": st["sshn"] * mesh.tmask[:1],
            "un": st["un"] * mesh.umask, "vn": st["vn"] * mesh.vmask}


def stage_metrics(args, out: Path) -> dict:
    from tqdm.auto import tqdm
    months = list(range(1, 12 * args.restart_years + 1))
    mesh = read_mesh(out / "control")
    y0 = (args.train_years - 1) * STEPS_PER_YEAR            # the control's start (steps of the control run)
    runs = {"control": (out / "control", [y0 + m * MONTH for m in [0] + months]),
            "rest": (out / "control", [m * MONTH for m in months]),
            "diffusion": (out / "spinup_diffusion", [m * MONTH for m in months]),
            "mse": (out / "spinup_mse", [m * MONTH for m in months]),
            "nearest": (out / "nearest", [m * MONTH for m in months])}
    series: dict[str, dict[str, np.ndarray]] = {}
    status: dict[str, dict] = {}
    sst_last: dict[str, np.ndarray] = {}
    for name, (folder, steps) in tqdm(runs.items(), desc="metrics", unit="run"):
        if not folder.is_dir() or not list(folder.glob("*_restart*.nc")):
            log.warning("no restart files in %s: start '%s' left out", folder, name)
            continue
        try:
            states, finite = run_states(folder, steps)
        except FileNotFoundError as err:
            log.warning("start '%s': %s (it stopped early: blown up?)", name, err)
            status[name] = {**blowup(folder, [False]), "missing": str(err)}
            continue
        if name != "control":
            init = generated_initial(folder, mesh) if name in ("diffusion", "mse") else None
            if name == "nearest":
                import nemo_run as nr
                init = nr.global_fields([folder / "nearest_restart.nc"], ("tn", "sn", "sshn", "un", "vn"))
            states = ([init] if init is not None else [None]) + states
            finite = [True] + finite
        rows = [state_metrics(s, mesh) if s is not None else {k: np.nan for k in METRICS} for s in states]
        series[name] = {k: np.array([r[k] for r in rows]) for k in METRICS}   # month 0 .. 12
        status[name] = blowup(folder, finite)
        sst_last[name] = states[-1]["tn"][0]
    table = offsets(series, args.restart_years)
    write_metrics_nc(out / "metrics.nc", series, status)
    write_sst(out / "sst_last_month.nc", sst_last, mesh)
    figure(out / "nemo_spinup_restart.png", series, sst_last, mesh)
    return {"series": {k: {m: v.tolist() for m, v in s.items()} for k, s in series.items()}, "status": status,
            "offsets": table}


def offsets(series: dict, years: int) -> dict:
    """Per start and metric: offset of the yearly mean from the control's, and the largest monthly offset,
    both in units of the control's monthly std over its year; the initial state's offset (month 0)."""
    ctl = series.get("control")
    if ctl is None:
        return {}
    out = {}
    for name, s in series.items():
        if name == "control":
            continue
        row = {}
        for k in METRICS:
            c, x = ctl[k][1:], s[k][1:]
            std = float(np.std(c, ddof=1))
            n = min(len(c), len(x))
            row[k] = {"control_mean": float(np.mean(c)), "control_std": std, "mean": float(np.mean(x[:n])),
                      "offset_std": float((np.mean(x[:n]) - np.mean(c[:n])) / std) if std > 0 else float("nan"),
                      "max_offset_std": float(np.max(np.abs(x[:n] - c[:n])) / std) if std > 0 else float("nan"),
                      "initial_offset_std": float((s[k][0] - ctl[k][0]) / std) if std > 0 else float("nan")}
        out[name] = row
    return out


def write_metrics_nc(path: Path, series: dict, status: dict) -> None:
    from models.ncio import atomic_write
    names = list(series)

    def write(tmp: str) -> None:
        import netCDF4
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", "title": "NEMO GYRE_OCE: metrics of the year after each start",
                          "source": "benchmarks/nemo_spinup_restart.py", "starts": " ".join(names)})
            ds.createDimension("start", len(names))
            ds.createDimension("time", len(next(iter(series.values()))["ke"]))
            s = ds.createVariable("start", str, ("start",))
            for k, n in enumerate(names):
                s[k] = n
            t = ds.createVariable("time", "f8", ("time",))
            t.setncatts({"standard_name": "time", "units": "days since 0001-01-01 00:00:00", "calendar": "360_day",
                         "long_name": "days after the start (0: the initial state)"})
            t[:] = np.arange(len(ds.dimensions["time"])) * 30.0
            b = ds.createVariable("blew_up", "i1", ("start",))
            b.setncatts({"long_name": "NaN in a restart field or E R R O R in ocean.output",
                         "flag_values": np.array([0, 1], "i1"), "flag_meanings": "no yes"})
            b[:] = [int(status.get(n, {}).get("blew_up", False)) for n in names]
            for m, (units, long_name) in METRICS.items():
                v = ds.createVariable(m, "f8", ("start", "time"), fill_value=1.0e20)
                v.setncatts({"units": units, "long_name": long_name})
                v[:] = np.ma.masked_invalid(np.stack([series[n][m] for n in names]))
    atomic_write(path, write)


def write_sst(path: Path, sst: dict, mesh: Mesh) -> None:
    from models.ncio import write_fields
    mask = mesh.tmask[0].astype("i1")
    x = (np.arange(NX) + 0.5) * mesh.dx
    y = (np.arange(NY) + 0.5) * mesh.dy
    write_fields(path, {f"sst_{k}": v[None] for k, v in sst.items()}, mask, x, y, np.array([0.0]),
                 attrs={"title": "SST of the last month after each start (NEMO GYRE_OCE restart files)"},
                 var_attrs={f"sst_{k}": {"standard_name": "sea_surface_temperature", "units": "degC"} for k in sst})


def figure(path: Path, series: dict, sst: dict, mesh: Mesh) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = ["ke", "t_mean", "s_mean", "sst", "ssh_var", "psi_max", "psi_min", "u_max"]
    fig, axes = plt.subplots(3, 4, figsize=(16, 10))
    colors = {"control": "k", "rest": "tab:gray", "diffusion": "tab:red", "mse": "tab:blue", "nearest": "tab:green"}
    for ax, k in zip(axes.flat, keys):
        for n, s in series.items():
            ax.plot(np.arange(len(s[k])) * 30, s[k], "-o", ms=2, color=colors.get(n), label=n)
        ax.set_title(f"{k} ({METRICS[k][0]})", fontsize=9)
        ax.set_xlabel("days after the start")
    axes.flat[0].legend(fontsize=8)
    land = mesh.tmask[0] == 0
    for ax, n in zip(list(axes.flat)[8:], ["control", "diffusion", "mse", "nearest"]):
        if n in sst:
            ax.imshow(np.ma.masked_where(land, sst[n]), origin="lower", cmap="RdYlBu_r")
            ax.set_title(f"SST, last month: {n}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def print_table(summary: dict) -> str:
    off, status = summary["metrics"]["offsets"], summary["metrics"]["status"]
    lines = [f"NEMO GYRE_OCE, θ* {THETA[0]} = {summary['theta_star']:.4g}; year after each start vs the control "
             f"(offsets in control monthly std: yearly mean / largest month / initial state)"]
    head = f"{'metric':9s} {'control mean ± std':>24s}" + "".join(f" {n:>22s}" for n in off)
    lines.append(head)
    for k in METRICS:
        first = next(iter(off.values()))[k]
        row = f"{k:9s} {first['control_mean']:>13.4g} ± {first['control_std']:<8.3g}"
        for n in off:
            r = off[n][k]
            row += f" {r['offset_std']:>7.2f}/{r['max_offset_std']:>6.2f}/{r['initial_offset_std']:>7.2f}"
        lines.append(row)
    lines.append("yearly-mean offset from the control, in the metric's units:")
    lines.append(f"{'metric':9s} {'units':>7s}" + "".join(f" {n:>11s}" for n in off))
    for k in METRICS:
        lines.append(f"{k:9s} {METRICS[k][0]:>7s}" + "".join(
            f" {off[n][k]['mean'] - off[n][k]['control_mean']:>11.3g}" for n in off))
    lines.append("blown up: " + ", ".join(f"{n}: {'YES' if s['blew_up'] else 'no'} (NaN {s['nan']}, "
                                            f"E R R O R {s['errors']})" for n, s in status.items()))
    text = "\n".join(lines)
    print(text)
    return text


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nemo-dir", type=Path, default=os.environ.get("NEMO_DIR"), help="NEMO 5.0 tree ($NEMO_DIR)")
    p.add_argument("--out", type=Path, default=REPO / "out" / "nemo_spinup_restart", help="output folder")
    p.add_argument("--json", type=Path, help="also write the summary here")
    p.add_argument("--members", type=int, default=3, help="training members")
    p.add_argument("--theta-low", type=float, default=1.0, help=f"{THETA[0]} range of the members")
    p.add_argument("--theta-high", type=float, default=4.0)
    p.add_argument("--train-years", type=int, default=3, help="model years of each member (and of the control run)")
    p.add_argument("--restart-years", type=int, default=1, help="model years after each start")
    p.add_argument("--state-every", type=int, default=30, help="ocean steps between streamed states")
    p.add_argument("--burn-in-days", type=float, default=330.0)
    p.add_argument("--window-days", type=float, default=30.0)
    p.add_argument("--min-steps", type=int, default=3000, help="optimizer steps of the generator in all")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--channels", type=int, default=32, help="U-Net base width")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds any one NEMO job may take")
    p.add_argument("--peer", type=Path, help=argparse.SUPPRESS)   # the worker rank of the training launch
    args = p.parse_args(argv)
    if args.peer:
        return peer_main(args.peer)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    import nemo_run as nr
    why = nr.built(str(args.nemo_dir) if args.nemo_dir else None)
    if why:
        print(f"nemo_spinup_restart: skipped: {why}")
        return 0
    nemo_dir, out = args.nemo_dir.resolve(), args.out.resolve()
    if nemo_dir in out.parents or out == nemo_dir:
        raise SystemExit("--out must not lie inside the NEMO tree")
    out.mkdir(parents=True, exist_ok=True)
    os.environ["NSR_WATCH"] = json.dumps({"burn_in_days": args.burn_in_days, "window_days": args.window_days})
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"--stages: unknown {sorted(unknown)} (known: {', '.join(STAGES)})")
    members = args.theta_low + DESIGNS_draw(args) * (args.theta_high - args.theta_low)
    theta = theta_star(members)
    log.info("members' %s: %s; held-out θ* = %.4g", THETA[0], np.round(members, 4).tolist(), theta)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary.update({"theta_name": THETA[0], "theta_members": members.tolist(), "theta_star": theta,
                    "argv": sys.argv, "nemo_dir": str(nemo_dir)})
    t0 = time.perf_counter()
    if "control" in stages:
        summary["control"] = stage_control(args, nemo_dir, out, theta)
    elif "control" not in summary and (out / "control" / "mesh_mask.nc").is_file():
        summary["control"] = {"folder": str(out / "control"), "steps": args.train_years * STEPS_PER_YEAR,
                              THETA[0]: theta}
    if "train" in stages:
        summary["train"] = stage_train(args, nemo_dir, out)
    elif "train" not in summary and (out / "train" / "worker_summary.json").is_file():
        summary["train"] = train_record(out / "train")   # a rerun of the later stages: what the launch left
    if "spinup" in stages:
        summary["spinup"] = {s: stage_spinup(args, nemo_dir, out, theta, s) for s in ("diffusion", "mse")}
    if "nearest" in stages:
        summary["nearest"] = stage_nearest(args, nemo_dir, out, theta)
    if "metrics" in stages:
        summary["metrics"] = stage_metrics(args, out)
    summary["wall_s_this_run"] = time.perf_counter() - t0
    summary_path.write_text(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if "metrics" in summary and summary["metrics"].get("offsets"):
        summary["table"] = print_table(summary)
        summary_path.write_text(json.dumps(summary, indent=1))
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1))
    return 0


def DESIGNS_draw(args) -> np.ndarray:  # noqa: N802
    """The members' unit draws exactly as preprod makes them (bridge.config.ensemble.draw_parameters)."""
    from bridge.config.ensemble import DESIGNS
    rng = np.random.default_rng(0)
    return DESIGNS["lhs"](args.members, 1, rng)[:, 0]


if __name__ == "__main__":
    sys.exit(main())
