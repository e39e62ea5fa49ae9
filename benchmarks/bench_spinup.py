"""Generated post-spin-up states on the gyre (issue 16): do they start an ocean where a spun-up one would be, for less?

1. **Train in situ.** K members with θ = (rn_tau0, rn_rdrag) from a Latin hypercube spin up from rest in one
   launch (`gyre/cfg/namelist_spinup_cfg`, the slow configuration) and stream their states to the worker in the
   `generate` mode: each member's states join the training set once its equilibrium detector passes; the
   worker trains a diffusion generator and the MSE baseline (the conditional mean) on the same batches.
2. **Controls.** For each held-out θ (validation and test, never trained on) a physical spin-up from rest:
   its first years are start (a) `rest`, its last `--restart-years` years the control (e).
3. **Starts.** For each test θ*: (b) `nearest` the final state of the training member with the nearest θ
   (in units of the prior box), (c) `mse` the baseline's state, (d) `diffusion` `--samples` generated states;
   each written as a gyre restart and run for `--restart-years` years.
4. **Judged** on the physical metrics' annual means (models/ocean_metrics.py), in units of the control's
   interannual standard deviation: the offset of each start's years 1..N from the control's mean, the largest
   such offset (the target: within 2 std in every metric from year 1 on), each start's trend, the years it
   needs before every later year stays within 2 std; the cost ratio (the control's wall time from rest to
   its detector's equilibrium over generation + the start's adjustment wall time) and the break-even number
   of new θ* once the training launch is counted; the diversity of the diffusion samples (their spread of
   each metric over the control's interannual std).

No setting is tuned here: the sampler, network and detector keep their defaults; the validation θ are
reported beside the test θ* so that a later choice can be made on them.

usage: python benchmarks/bench_spinup.py [--out DIR] [--json PATH] [--members 8] [--train-years 120]
       [--restart-years 10] [--samples 3] [--quick]
Writes under --out: the runs, `generated.nc` (CF), `spinup_states.png` (generated against control),
`spinup_metrics.png` (every metric after restart, every start), `summary.json`.
"""
from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import f90nml
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "gyre" / "tools"))
sys.path.insert(0, str(REPO))

import gyrerun  # noqa: E402

from bridge.worker.engine import with_rest_volume  # noqa: E402
from bridge.worker.spinup_report import (  # noqa: E402
    FIELDS,
    METRICS,
    WITHIN,
    annual,
    judge,
    plot_metrics,
    plot_states,
    read_state,  # noqa: E402
)
from models.equilibrium import EquilibriumConfig, first_equilibrated  # noqa: E402
from models.ocean_metrics import YEAR  # noqa: E402

log = logging.getLogger("bench_spinup")
SPINUP_CFG = REPO / "gyre" / "cfg" / "namelist_spinup_cfg"
BOX = {"rn_tau0": (0.10, 0.20), "rn_rdrag": (3.0e-8, 8.0e-8)}  # the prior box of θ
STARTS = ("rest", "nearest", "mse", "diffusion")


@dataclass(frozen=True)
class Study:
    out: Path
    members: int
    train_years: int
    restart_years: int
    samples: int
    n_test: int
    n_val: int
    quick: bool

    @property
    def base(self) -> dict:
        """The namelist of every run: the spin-up configuration (a small, short one with --quick)."""
        nml = f90nml.read(str(self.out / SPINUP_CFG.name)).todict()  # the copy this study started with
        nml = {k: dict(v) for k, v in nml.items()}
        if self.quick:  # seconds, not hours: a 16 x 16 basin, fields every 10 days
            nml["namdom"].update(nn_nx=16, nn_ny=16)
            nml["namrun"].update(nn_write=360, nn_diag=360)
        return nml

    @property
    def dt(self) -> float:
        return float(self.base["namrun"]["rn_dt"])

    @property
    def detector(self) -> EquilibriumConfig:
        """The detector's defaults; --quick passes everything after 3 years (a smoke run checks the plumbing)."""
        return EquilibriumConfig(3, 0.1, 100.0, 1) if self.quick else EquilibriumConfig()

    def steps(self, years: int) -> int:
        return int(round(years * YEAR / self.dt))


# ----------------------------------------------------------------------------- design
def held_out(study: Study) -> dict[str, np.ndarray]:
    """Validation and test θ inside the prior box, from a hypercube of their own (never the training design)."""
    from bridge.config.ensemble import latin_hypercube
    lo, hi = (np.array([b[i] for b in BOX.values()]) for i in (0, 1))
    held = lo + latin_hypercube(study.n_val + study.n_test, len(BOX), np.random.default_rng(17)) * (hi - lo)
    return {"val": held[:study.n_val], "test": held[study.n_val:]}


def theta_nml(theta: np.ndarray) -> dict:
    return {"namphys": {name: float(v) for name, v in zip(BOX, theta)}}


def nearest(theta: np.ndarray, train: np.ndarray) -> int:
    """Index of the training θ nearest to ``theta`` in units of the prior box."""
    width = np.array([b[1] - b[0] for b in BOX.values()])
    return int(np.argmin((((train - theta) / width) ** 2).sum(1)))


# ----------------------------------------------------------------------------- 1. training launch
def deploy_config(study: Study) -> Path:
    """The training launch: K members in the generate mode (bridge/worker/README.md), θ from its own design."""
    run = study.out / "train"
    run.mkdir(parents=True, exist_ok=True)
    nml = study.base
    nml["namrun"].update(nn_itend=study.steps(study.train_years), nn_stock=study.steps(study.train_years))
    f90nml.Namelist(nml).write(str(run / "template_cfg"), force=True)
    freq = int(nml["namrun"]["nn_write"])
    fields = "".join(f'[[fields]]\nname = "{n}"\ndirection = "ocean_to_worker"\nfreq = {freq}\n\n' for n in FIELDS)
    params = "".join(f'[[parameters]]\nname = "{n}"\nblock = "namphys"\nlow = {b[0]!r}\nhigh = {b[1]!r}\n\n'
                     for n, b in BOX.items())
    detector = study.detector
    text = f"""[run]
run_dir = "."
dt = {study.dt}
steps = {study.steps(study.train_years)}
timeout = 600.0

[ocean]
model = "gyre"
executable = "{gyrerun.default_exe()}"
members = {study.members}
nx = {nml['namdom']['nn_nx']}
ny = {nml['namdom']['nn_ny']}
namelist = "template_cfg"
namelist_ref = "{gyrerun.NAMELIST_REF}"

[ensemble]
design = "lhs"
seed = 16

[worker]
modes = ["generate"]
device = "cpu"
args = ["--no-progress"]

[worker.train]
batch_size = 8
min_steps = {200 if study.quick else 4000}

[worker.buffer]
capacity = {256 if study.quick else 2048}
watermark = 8

[worker.generate]
window_years = {detector.window_years}
horizon_years = {detector.horizon_years}
factor = {detector.factor}
persist_years = {detector.persist_years}

[model]
dx = {nml['namdom']['rn_dx']}
dy = {nml['namdom']['rn_dy']}

{params}{fields}"""
    path = run / "deploy.toml"
    path.write_text(text)
    return path


def train_in_situ(study: Study) -> dict:
    """Run the training launch; its wall time, the members' θ and the worker's summary."""
    from bridge.config.config import load_config
    from bridge.config.ensemble import draw_parameters
    from bridge.mpirun import run_mpirun
    from deploy.launch import build_command
    from deploy.preprod import preprod
    cfg = load_config(deploy_config(study))
    preprod(cfg)
    t0 = time.perf_counter()
    res = run_mpirun(build_command(cfg, "mpirun"), cwd=cfg.run.run_dir, env=gyrerun.mpi_env(),
                     timeout=24 * 3600)
    wall = time.perf_counter() - t0
    (cfg.run.run_dir / "launch.log").write_text(res.stdout)
    (cfg.run.run_dir / "launch.json").write_text(json.dumps({"wall_s": wall}))
    if res.returncode != 0:
        raise RuntimeError(f"training launch failed (rc {res.returncode}); see {cfg.run.run_dir / 'launch.log'}")
    summary = json.loads((cfg.run.run_dir / "worker_summary.json").read_text())
    return {"wall_s": wall, "summary": summary, "run_dir": cfg.run.run_dir, "theta": draw_parameters(cfg)}


# ----------------------------------------------------------------------------- 2, 3. ocean runs
def run_ocean(study: Study, name: str, theta: np.ndarray, years: int, restart: Path | None = None) -> dict:
    """One uncoupled gyre run at θ for ``years`` model years, from rest or from ``restart``; its wall time."""
    nml = study.base
    nml["namrun"].update(nn_itend=study.steps(years), nn_stock=study.steps(years))
    if restart is not None:
        nml["namrun"].update(ln_rstart=True, cn_ocerst_in=str(restart), nn_itend=study.steps(years))
    for block, values in theta_nml(theta).items():
        nml[block].update(values)
    rd = study.out / "runs" / name
    shutil.rmtree(rd, ignore_errors=True)
    gyrerun.make_rundir(rd, nml)
    t0 = time.perf_counter()
    res = gyrerun.run_gyre(rd, 1, timeout=24 * 3600)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"gyre run {name} failed:\n{res.output[-3000:]}")
    (rd / "wall_s.json").write_text(json.dumps({"wall_s": wall}))
    return {"name": name, "wall_s": wall, "years": years, "fields": rd / "spinup_fields.nc", "run_dir": rd}


def run_all(jobs: list[tuple], workers: int = 2, reuse: bool = False) -> list[dict]:
    """Ocean runs two at a time (two cores), with a progress bar; with ``reuse`` a finished run is kept."""
    from tqdm.auto import tqdm
    kept = [r for r in (reused_run(*job) for job in jobs) if r is not None] if reuse else []
    todo = [job for job in jobs if job[1] not in {r["name"] for r in kept}]
    with futures.ThreadPoolExecutor(workers) as pool:
        running = [pool.submit(run_ocean, *job) for job in todo]
        done = kept
        for f in tqdm(futures.as_completed(running), total=len(running), desc="gyre runs", unit="run"):
            done.append(f.result())
    return sorted(done, key=lambda r: r["name"])


def reused_run(study: Study, name: str, theta: np.ndarray, years: int, restart: Path | None = None) -> dict | None:
    """A run of an earlier invocation that reached its end, with its wall time (wall_s.json, else the time from
    its namelist's writing to its last restart's: start-up included)."""
    rd = study.out / "runs" / name
    final = rd / f"spinup_{study.steps(years):08d}_restart.nc"
    if not final.is_file():
        return None
    record = rd / "wall_s.json"
    wall = json.loads(record.read_text())["wall_s"] if record.is_file() else \
        final.stat().st_mtime - (rd / "namelist_cfg").stat().st_mtime
    log.info("reusing %s (%.0f s)", rd, wall)
    return {"name": name, "wall_s": wall, "years": years, "fields": rd / "spinup_fields.nc", "run_dir": rd}


def reused_training(study: Study) -> dict:
    """The training launch of an earlier invocation (its wall time from train/launch.json)."""
    from bridge.config.config import load_config
    from bridge.config.ensemble import draw_parameters
    run = study.out / "train"
    summary = json.loads((run / "worker_summary.json").read_text())
    wall = json.loads((run / "launch.json").read_text())["wall_s"]
    return {"wall_s": wall, "summary": summary, "run_dir": run, "theta": draw_parameters(load_config(run / "deploy.toml"))}


# ----------------------------------------------------------------------------- generation
def generate(checkpoint: Path, theta: np.ndarray, n: int, mask: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """``n`` states for θ from a 'generate' surrogate (EMA weights, the default sampler); (n, C, ny, nx), seconds."""
    import torch

    from models.data import Batch
    from models.sampling import SamplerConfig
    from models.train import Trainer
    trainer = Trainer.load(checkpoint, device="cpu")
    t0 = time.perf_counter()
    cond = Batch(None, None, torch.tensor(theta[None], dtype=torch.float32),
                 torch.from_numpy(mask.astype(np.float32))[None, None], None)
    out = trainer.ema.sample(cond, n, SamplerConfig(), torch.Generator().manual_seed(seed))
    return out[0].double().numpy(), time.perf_counter() - t0


def restart_from(study: Study, path: Path, state: np.ndarray) -> Path:
    nml = study.base["namdom"]
    return gyrerun.write_restart(path, dict(zip(FIELDS, state)), dx=nml["rn_dx"], dy=nml["rn_dy"])


# ----------------------------------------------------------------------------- judging
def equilibrium_wall(control_run: dict, per_year: float, study: Study) -> tuple[int | None, float]:
    """The control's first equilibrated year (its detector on every metric) and the wall time to get there."""
    series = annual(control_run["fields"])
    year = first_equilibrated(np.array([series[m] for m in METRICS]), study.detector)
    return (None, math.nan) if year is None else (year, year * per_year)


# ----------------------------------------------------------------------------- outputs
def write_generated(path: Path, states: dict[str, np.ndarray], dx: float, dy: float) -> None:
    """CF netCDF of the generated states: one variable per field, (start, sample, y, x)."""
    import netCDF4

    from models.ncio import atomic_write, cf_attrs
    names = sorted(states)
    n = max(len(states[k]) for k in names)
    ny, nx = states[names[0]].shape[-2:]

    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.Conventions, ds.title = "CF-1.8", "oceanbridge bench_spinup: generated post-spin-up states"
            for dim, size in (("start", len(names)), ("sample", n), ("y", ny), ("x", nx)):
                ds.createDimension(dim, size)
            ds.createVariable("x", "f8", ("x",))[:] = (np.arange(nx) + 0.5) * dx
            ds.createVariable("y", "f8", ("y",))[:] = (np.arange(ny) + 0.5) * dy
            s = ds.createVariable("start", str, ("start",))
            for i, name in enumerate(names):
                s[i] = name
            for c, field in enumerate(FIELDS):
                a = cf_attrs(field)
                v = ds.createVariable(field, "f4", ("start", "sample", "y", "x"), fill_value=np.float32(np.nan))
                v.setncatts({k: a[k] for k in ("standard_name", "units", "long_name") if k in a})
                for i, name in enumerate(names):
                    v[i, :len(states[name])] = states[name][:, c]
    atomic_write(path, write)


# ----------------------------------------------------------------------------- the study
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "out" / "bench_spinup")
    p.add_argument("--json", type=Path)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--train-years", type=int, default=120)
    p.add_argument("--restart-years", type=int, default=10)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--test", type=int, default=4, help="held-out test θ*")
    p.add_argument("--val", type=int, default=2, help="held-out validation θ")
    p.add_argument("--quick", action="store_true", help="a 16 x 16 basin and the sizes given, for a smoke run")
    p.add_argument("--reuse", action="store_true", help="keep the training launch (if finished) and the runs "
                   "already in --out (their wall times from wall_s.json, else from their files' times)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    study = Study(args.out.resolve(), args.members, args.train_years, args.restart_years, args.samples, args.test, args.val,
                  args.quick)
    study.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPINUP_CFG, study.out / SPINUP_CFG.name)
    thetas = held_out(study)

    log.info("1/4 training launch: %d members x %d model years", study.members, study.train_years)
    trained = reused_training(study) if args.reuse and (study.out / "train" / "launch.json").is_file() \
        else train_in_situ(study)
    thetas["train"] = trained["theta"]
    log.info("training launch: %.0f s, equilibrium %s", trained["wall_s"], trained["summary"]["equilibrium"])

    held = [(f"{split}{i}", t) for split in ("val", "test") for i, t in enumerate(thetas[split])]
    log.info("2/4 controls: %d held-out θ x %d model years from rest", len(held), study.train_years)
    controls = {r["name"].removeprefix("control_"): r for r in run_all(
        [(study, f"control_{name}", t, study.train_years) for name, t in held], reuse=args.reuse)}

    log.info("3/4 starts: nearest member, MSE, %d diffusion sample(s) for each held-out θ", study.samples)
    mask = np.ones((study.base["namdom"]["nn_ny"], study.base["namdom"]["nn_nx"]))
    members = trained["run_dir"]
    final = f"spinup_{study.steps(study.train_years):08d}_restart.nc"
    jobs, generated, gen_s = [], {}, {}
    for name, t in held:
        k = nearest(t, thetas["train"])
        folder = study.out / "restarts"
        folder.mkdir(exist_ok=True)
        state = read_state(members / f"member_{k + 1}" / final)  # restarted at step 0, as every other start
        jobs.append((study, f"{name}_nearest", t, study.restart_years,
                     restart_from(study, folder / f"{name}_nearest.nc", state)))
        mse, s_mse = generate(members / "generator_mse.pt", t, 1, mask, seed=1)
        diff, s_diff = generate(members / "generator.pt", t, study.samples, mask, seed=2)
        generated[f"{name}_mse"], generated[f"{name}_diffusion"] = mse, diff
        gen_s[name] = {"mse": s_mse, "diffusion": s_diff / study.samples}
        jobs.append((study, f"{name}_mse", t, study.restart_years,
                     restart_from(study, folder / f"{name}_mse.nc", with_rest_volume(mse[0], FIELDS, mask))))
        for s in range(study.samples):
            jobs.append((study, f"{name}_diffusion{s}", t, study.restart_years,
                         restart_from(study, folder / f"{name}_diffusion{s}.nc",
                                      with_rest_volume(diff[s], FIELDS, mask))))
    starts = {r["name"]: r for r in run_all(jobs)}
    write_generated(study.out / "generated.nc", generated, study.base["namdom"]["rn_dx"], study.base["namdom"]["rn_dy"])

    log.info("4/4 judging")
    report = judge_all(study, held, controls, starts, generated, gen_s, trained)
    print_table(report)
    (study.out / "summary.json").write_text(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def judge_all(study, held, controls, starts, generated, gen_s, trained) -> dict:
    n = study.restart_years
    report = {"settings": {"members": study.members, "train_years": study.train_years, "restart_years": n,
                           "samples": study.samples, "quick": study.quick},
              "training": {"wall_s": trained["wall_s"], "equilibrium": trained["summary"]["equilibrium"],
                           "train_steps": trained["summary"]["train_steps"]}, "theta": {}}
    first_plot = True
    for name, t in held:
        control_run = controls[name]
        per_year = control_run["wall_s"] / control_run["years"]
        series = annual(control_run["fields"])
        control = {m: series[m][-n:] for m in METRICS}
        eq_year, eq_wall = equilibrium_wall(control_run, per_year, study)
        runs = {"rest": {m: series[m][:n] for m in METRICS}, "nearest": annual(starts[f"{name}_nearest"]["fields"]),
                "mse": annual(starts[f"{name}_mse"]["fields"])}
        for s in range(study.samples):
            runs[f"diffusion{s}"] = annual(starts[f"{name}_diffusion{s}"]["fields"])
        scores = {start: judge(r, control) for start, r in runs.items()}
        cost = {}
        for start in ("mse", "diffusion0"):
            adjust = max(v["adjust_years"] for v in scores[start].values())
            spent = gen_s[name]["mse" if start == "mse" else "diffusion"] + max(adjust, 1) * per_year
            saved = eq_wall - spent  # ocean wall time one new θ* saves (nothing, or a loss, when <= 0)
            cost[start] = {"adjust_years": adjust, "ratio": eq_wall / spent if eq_year else math.nan,
                           "break_even": trained["wall_s"] / saved if eq_year and saved > 0 else math.inf}
        report["theta"][name] = {"theta": dict(zip(BOX, map(float, t))), "equilibrium_year": eq_year,
                                 "equilibrium_wall_s": eq_wall, "wall_per_year_s": per_year, "scores": scores,
                                 "cost": cost, "diversity": diversity(generated[f"{name}_diffusion"], control, control_run)}
        if first_plot and name.startswith("test"):
            plot_states(study.out / "spinup_states.png", read_state(control_run["fields"], -1), {
                "mse": generated[f"{name}_mse"][0], **{f"diffusion {s}": generated[f"{name}_diffusion"][s]
                                                       for s in range(study.samples)}})
            plot_metrics(study.out / "spinup_metrics.png", control, runs)
            first_plot = False
    report["targets"] = targets(report)
    return report


def diversity(samples: np.ndarray, control: dict, control_run: dict) -> dict:
    """Spread of each metric over the diffusion samples, in units of the control's interannual std (the grid and
    constants those of the control's own file)."""
    from models.ocean_metrics import evaluate, read_setup
    grid, physics = read_setup(control_run["fields"])
    values = evaluate({f: samples[:, c] for c, f in enumerate(FIELDS)}, np.zeros(len(samples)), grid, physics,
                      METRICS)
    return {m: float(values[m].std(ddof=1) / max(control[m].std(ddof=1), 1e-30)) if len(samples) > 1 else math.nan
            for m in METRICS}


def targets(report: dict) -> dict:
    """The issue's targets over the test θ*, each with its value and PASS/FAIL."""
    tests = {k: v for k, v in report["theta"].items() if k.startswith("test")}
    worst = max((s["max_offset"] for v in tests.values() for k, sc in v["scores"].items() if k.startswith("diffusion")
                 for s in sc.values()), default=math.nan)
    closer = []
    for v in tests.values():
        d = np.mean([[abs(s["offset"]) for s in v["scores"][k].values()] for k in v["scores"] if k.startswith("diff")],
                    axis=0)
        for other in ("nearest", "mse"):
            o = np.array([abs(s["offset"]) for s in v["scores"][other].values()])
            closer.append(float(np.mean(d < o)))
    ratio = min((v["cost"]["diffusion0"]["ratio"] for v in tests.values()), default=math.nan)
    return {"diffusion_within_2_std": {"value": worst, "pass": bool(worst <= WITHIN)},
            "diffusion_closer_than_nearest_and_mse": {"value": float(np.mean(closer)) if closer else math.nan,
                                                      "pass": bool(closer and np.mean(closer) > 0.5)},
            "cost_ratio": {"value": ratio, "pass": bool(ratio >= 100)}}


def print_table(report: dict) -> None:
    print(f"\ntraining launch: {report['training']['wall_s']:.0f} s, {report['training']['train_steps']} steps, "
          f"members qualified at year {report['training']['equilibrium']}")
    for name, v in report["theta"].items():
        print(f"\n{name} θ = {v['theta']}: control equilibrated at year {v['equilibrium_year']} "
              f"({v['equilibrium_wall_s']:.0f} s of ocean)")
        starts = list(v["scores"])
        print(f"{'metric':<14}" + "".join(f"{s:>16}" for s in starts) + "   (offset / max |offset| in control std)")
        for m in METRICS:
            print(f"{m:<14}" + "".join(f"{v['scores'][s][m]['offset']:>8.2f}/{v['scores'][s][m]['max_offset']:<7.2f}"
                                       for s in starts))
        print("trend (std/yr) " + "".join(f"{np.mean([x['trend'] for x in v['scores'][s].values()]):>16.3f}"
                                          for s in starts))
        print("adjust years   " + "".join(f"{max(x['adjust_years'] for x in v['scores'][s].values()):>16d}"
                                          for s in starts))
        c = v["cost"]
        print(f"cost ratio: diffusion {c['diffusion0']['ratio']:.1f} (break-even {c['diffusion0']['break_even']:.1f} "
              f"new θ*), mse {c['mse']['ratio']:.1f}; diversity (sample spread / control std): "
              + ", ".join(f"{m} {x:.2f}" for m, x in v["diversity"].items()))
    print("\ntargets:")
    for name, t in report["targets"].items():
        print(f"  {name:<40} {t['value']:.3f}  {'PASS' if t['pass'] else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
