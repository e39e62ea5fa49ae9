"""The phases of ``oceanbridge demo`` (see deploy/demo/__init__.py): spin-up, online training,
MSE baseline, emulation, report.  Every coupled phase is a deploy config written from
``deploy/demo/demo.toml`` into the run folder and started with the deploy layer's
preprod + mpirun command, exactly as ``oceanbridge preprod/launch`` would.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bridge.config.config import load_config
from bridge.config.namelist import patch_namelist
from bridge.config.tomlio import absolute_paths, dump_toml
from deploy.launch import build_command, require_ready
from deploy.preprod import preprod
from models.settings import ConfigError, from_table, setting

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
MARKER = ".oceanbridge-demo"  # the demo only ever empties a run folder that holds this file
GYRE_END = "gyre: normal end"  # what a member prints after closing its files


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    spinup_steps: int = setting(26280, "physical spin-up from rest, uncoupled (ocean steps)", ge=1)
    emulate_steps: int = setting(1080, "last phase, emulator on (ocean steps)", ge=1)
    out: Path = setting(Path("out/demo"), "output folder: figures, netCDF, summary.json")

    def __post_init__(self):
        from models.settings import validate_section
        validate_section(self)


def run_demo(config: Path) -> int:
    t_start = time.perf_counter()
    raw = tomllib.loads(Path(config).read_text())
    base = load_config(config)  # validates the whole file first
    demo = from_table(DemoSettings, raw.get("demo", {}), where=f"{config}: [demo]", base_dir=base.source.parent)
    run_dir, out = base.run.run_dir, demo.out
    fresh_folder(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    restart, kt0 = spin_up(base, demo, run_dir / "spinup")
    timings["spin-up"] = time.perf_counter() - t

    t = time.perf_counter()
    train_cfg = phase_config(raw, base, "train", nit000=kt0 + 1, steps=base.run.steps, restart=restart,
                             modes=list(base.worker.modes), emulate=False)
    from bridge.worker.demo_baseline import train_mse_baseline
    from bridge.worker.settings import worker_settings
    from models.ncio import atomic_write
    early: dict = {}

    def baseline_beside_the_worker(job: subprocess.Popen) -> None:
        """Once the members have ended, the MSE baseline trains on their files while the worker trains on
        its buffer up to min_steps: each on one core, instead of one after the other."""
        if members_ended(train_cfg, job):
            early["baseline"] = train_mse_baseline(train_cfg, steps=worker_settings(train_cfg).train.min_steps,
                                                   out=out / "mse_baseline.pt")
            early["wall"] = time.perf_counter() - t

    run_phase(train_cfg, "online training", while_running=baseline_beside_the_worker)
    timings["online training"] = time.perf_counter() - t
    train_summary = json.loads((run_dir / "worker_summary.json").read_text())
    shutil.copy(run_dir / "worker_summary.json", out / "worker_train_summary.json")

    t = time.perf_counter()
    steps = train_summary["train_steps"]  # the same number of optimizer steps as the diffusion surrogate
    baseline = early.get("baseline") or train_mse_baseline(train_cfg, steps=steps, out=out / "mse_baseline.pt")
    baseline.train_to(steps)
    timings["MSE baseline (after the online phase)"] = time.perf_counter() - t
    if "wall" in early:
        timings["MSE baseline began, into the online phase"] = early["wall"]

    t = time.perf_counter()
    kt1 = kt0 + base.run.steps
    emu_modes = sorted(set(base.worker.modes) | {"emulate"})
    emu_cfg = phase_config(raw, base, "emulate", nit000=kt1 + 1, steps=demo.emulate_steps,
                           restart=f"train_{kt1:08d}_restart", modes=emu_modes, emulate=True)
    run_phase(emu_cfg, "emulation")
    timings["emulation"] = time.perf_counter() - t
    emu_summary = json.loads((run_dir / "worker_summary.json").read_text())

    t = time.perf_counter()
    from bridge.worker.demo_report import report
    table = report(emu_cfg, baseline, out, train_summary, emu_summary, timings)
    timings["report"] = time.perf_counter() - t
    table["MSE baseline"] = {"optimizer steps": baseline.trainer.step, "began beside the worker": "baseline" in early}
    table["timings_s"] = {**timings, "total": time.perf_counter() - t_start}
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(table, indent=2)))
    from bridge.worker.demo_page import write_page
    write_page(table, out)
    print_summary(table, out)
    return 0


def fresh_folder(run_dir: Path) -> None:
    """Empty the demo's run folder (only one the demo made), so nothing resumes by accident."""
    if run_dir.exists():
        if not (run_dir / MARKER).is_file():
            raise SystemExit(f"oceanbridge demo: {run_dir} exists and was not made by the demo; move it away "
                             f"or point [run] run_dir elsewhere")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / MARKER).write_text("made by oceanbridge demo; emptied at every demo run\n")


def spin_up(cfg, demo: DemoSettings, folder: Path) -> tuple[Path, int]:
    """The physical spin-up: one uncoupled gyre run from rest; returns its restart and last step."""
    folder.mkdir(parents=True)
    shutil.copy(cfg.ocean.namelist_ref, folder / "namelist_ref")
    patch = {"namrun": {"cn_exp": "spinup", "nn_it000": 1, "nn_itend": demo.spinup_steps, "rn_dt": cfg.run.dt,
                        "nn_write": 0, "nn_stock": 0},
             "namdom": {"nn_nx": cfg.ocean.nx, "nn_ny": cfg.ocean.ny}, "namobridge": {"ln_obridge": False}}
    patch_namelist(cfg.namelist_template, patch, folder / "namelist_cfg")
    from bridge.mpirun import mpirun_prefix
    cmd = mpirun_prefix(cfg.ocean.ranks) + ["-np", str(cfg.ocean.ranks), str(cfg.ocean.executable)]
    log.info("spin-up: %d steps of %.0f s from rest (%.1f model years), uncoupled", demo.spinup_steps, cfg.run.dt,
             demo.spinup_steps * cfg.run.dt / 86400 / 365)
    _run(cmd, folder, folder / "gyre.log", "spin-up")
    restart = folder / f"spinup_{demo.spinup_steps:08d}_restart.nc"
    if not restart.is_file():
        raise SystemExit(f"oceanbridge demo: the spin-up wrote no restart {restart}; see {folder / 'gyre.log'}")
    return restart, demo.spinup_steps


def phase_config(raw: dict, base, phase: str, *, nit000: int, steps: int, restart: Path | str, modes: list[str],
                 emulate: bool):
    """Write ``<run_dir>/<phase>.toml`` (and its namelist template) from the demo config; load it."""
    run_dir = base.run.run_dir
    data = absolute_paths(raw, base.source.parent)
    data.pop("demo", None)
    name = restart.name if isinstance(restart, Path) else restart + ".nc"
    template = run_dir / f"namelist_cfg.{phase}"
    patch_namelist(base.namelist_template, {"namrun": {"cn_exp": phase, "ln_rstart": True,
                                                       "cn_ocerst_in": name[:-3]}}, template)
    data["run"].update(nit000=nit000, steps=steps, run_dir=str(run_dir))
    data["ocean"].update(namelist=str(template), inputs=[str(restart)] if isinstance(restart, Path) else [])
    data["worker"]["modes"] = modes
    if emulate:
        states = [f for f in data["fields"] if f["direction"] == "ocean_to_worker"]
        data["fields"] += [{**f, "name": f["name"] + "_emu", "direction": "worker_to_ocean"} for f in states]
    path = run_dir / f"{phase}.toml"
    path.write_text(f"# written by oceanbridge demo from {base.source}\n" + dump_toml(data))
    try:
        return load_config(path)
    except ConfigError as err:
        raise SystemExit(f"oceanbridge demo: phase '{phase}': {err}") from None


def run_phase(cfg, title: str, while_running=None) -> None:
    """preprod, the launch checks, then the MPMD job; ocean output goes to a log file, the worker's
    progress bar and log lines to the terminal. ``while_running(job)`` works beside the job."""
    preprod(cfg)
    require_ready(cfg, "mpirun")
    cmd = build_command(cfg, "mpirun")
    log.info("%s: %d member(s) x %d rank(s) + %d worker rank(s), steps %d..%d", title, cfg.ocean.members,
             cfg.ocean.ranks, cfg.worker.ranks, cfg.run.nit000, cfg.run.nit000 + cfg.run.steps - 1)
    _run(cmd, cfg.run.run_dir, phase_log(cfg), title, while_running)


def phase_log(cfg) -> Path:
    return cfg.run.run_dir / f"{cfg.source.stem}.log"


def members_ended(cfg, job: subprocess.Popen, poll_s: float = 1.0) -> bool:
    """Wait until every member has printed its normal end (its files closed); False if the job ends first."""
    while job.poll() is None:
        if phase_log(cfg).read_text(errors="replace").count(GYRE_END) >= cfg.ocean.members:
            return True
        time.sleep(poll_s)
    return False


def _run(cmd: list[str], cwd: Path, log_path: Path, title: str, while_running=None) -> None:
    env_path = str(REPO)
    import os
    env = {**os.environ, "PYTHONPATH": env_path + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMPI_MCA_mpi_yield_when_idle": "1"}
    with open(log_path, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=sys.stderr)
        try:
            if while_running is not None:
                while_running(proc)
            proc.wait()
        finally:
            if proc.poll() is None:  # an error beside the job (or ^C): the job must not outlive the demo
                proc.terminate()
                proc.wait()
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise SystemExit(f"oceanbridge demo: {title} failed (exit {proc.returncode}); {log_path}:\n{tail}")


def print_summary(table: dict, out: Path) -> None:
    """The summary as a person reads it: the run's facts, the scores, what beat what, the targets."""
    from bridge.worker.demo_page import cell_text
    from bridge.worker.demo_targets import fmt
    from bridge.worker.report import SCORE_LABELS
    shown = {"what beat what", "targets", "figures"}
    print("\n" + "=" * 78)
    print("oceanbridge demo: summary")
    print("=" * 78)
    for section, rows in table.items():
        if isinstance(rows, dict) and section not in shown and not section.startswith("scores "):
            print(f"\n{section}")
            print("\n".join(f"  {key:<36} {cell_text(value)}" for key, value in rows.items()))
    scores = {k.removeprefix("scores "): v for k, v in table.items() if k.startswith("scores ")}
    print("\nscores of the emulation phase (RMSE, CRPS: lower is better; high-k ratio, spread/skill: 1 is the truth)")
    print(f"  {'':<28}" + "".join(f"{var:>11}" for var in scores))
    for key, label in SCORE_LABELS.items():
        print(f"  {label:<28}" + "".join(f"{fmt(row.get(key)):>11}" for row in scores.values()))
    print("\nwhat beat what")
    for var, lines in table["what beat what"].items():
        print("\n".join(f"  {var:<5} {line}" for line in lines))
    targets = table["targets"]
    print(f"\ntargets: {targets['result']} ({targets['passed']} of {targets['checked']} pass)")
    for var, checks in targets["by variable"].items():
        print("\n".join(f"  {var:<5} {c['result']}  {c['measured']}" for c in checks.values()))
    print(f"\noutputs in {out}; the report page: {out / 'index.html'}")
