"""Buffer study after Melissa's heat-equation table (models/README.md, Buffers): offline vs FIFO, FIRO, Reservoir.

    python benchmarks/bench_buffers.py                      # default study, a few minutes on 1 core
    python benchmarks/bench_buffers.py --quick              # smoke run, seconds
    python benchmarks/bench_buffers.py --json out/bench_buffers.json

The data: the 2-D heat equation du/dt = lap(u) on the unit square (Melissa's use case),
explicit finite differences in numpy, every simulation with its own 5 parameters θ: the
initial temperature and the 4 boundary temperatures, uniform in [100, 500] K. The
surrogate is a small MLP (θ, t) -> u(t) over the whole grid, trained with MSE on
normalized values, on one CPU thread.

The stream is **ordered in time**, as a running ensemble delivers it: ``--clients``
simulations run at once and each tick every one of them sends its next record; the next
wave of simulations starts when a wave ends. At any moment the stream therefore holds one
time of a few members, the bias that the buffers must undo.

Every method gets the **same data budget** (the same samples, each offered once):

- ``offline``: the whole stream stored, then one shuffled epoch;
- ``fifo``, ``firo``, ``reservoir`` (``models.buffers``): a producer puts one tick of
  samples, then the trainer gets ``--steps-per-tick`` chances to take a batch (a fixed
  compute budget: the trainer is that many times faster than the data arrive). A chance
  with no ready batch is idle time. At the end of the stream FIFO/FIRO drain their tail.
  All three use the same capacity and watermark.

Reported, all measured side by side in one run and averaged over ``--seeds`` repeats:
validation MSE on held-out simulations (normalized units, all times; and per third of
the time span, to show recency bias), its ratio to offline, gradient steps taken, idle
fraction (training chances with no batch ready), samples lost unseen, and the CPU and
wall time of each training loop (the simulations are computed once, before, and shared;
CPU time is the figure to compare on a shared machine). ``offline_budget`` is the
control: offline shuffled epochs with as many steps as the online compute budget.

Expected (Melissa, ICML 2023, heat PDE: offline 83.1, FIFO 391, FIRO 135, Reservoir 80.3,
i.e. 1 : 4.7 : 1.6 : 0.97): Reservoir ≈ offline < FIRO < FIFO.

Found (default configuration, 20480 samples, one CPU thread, 3 seeds; ratios of
validation MSE to offline one epoch, for ``--steps-per-tick K``; default K = 2):

    K    fifo  firo  reservoir  offline_budget  reservoir/offline_budget  idle fifo,firo  idle reservoir
    0.5  7.52  1.78    2.00         1.83                1.09                   0.01           0.01
    1    5.00  1.76    1.07         1.00                1.07                   0.01           0.01
    2    5.00  1.76    0.54         0.50                1.07                   0.50           0.01
    4    5.00  1.76    0.24         0.25                0.99                   0.75           0.01

The ordering is Melissa's. FIFO (5x) trains on batches of a single time that slide
forward through each wave: its error on the first third of the time span is 5x
offline's, on the last third 2x. FIRO (1.8x) mixes a watermark's worth (8 ticks) of
times. The Reservoir is within 10% of offline at the same number of gradient steps. When
the trainer is faster than the stream (K > 1), FIFO/FIRO idle: each sample is served once,
so they take one epoch of steps whatever K is. The Reservoir repeats samples, trains 99%
of the time, and ends as good as offline trained for K epochs, so it beats offline one
epoch. When the trainer is slower (K = 0.5, half the stream lost unseen: ``dropped``),
the reservoir rarely holds a served sample to replace, so it behaves like FIRO (its
random evictions are the same), and both are ≈ offline with the same number of steps;
FIFO, which keeps only the newest, is worst (7.5x). CPU time per step is the same for
all methods: a get or put costs microseconds, negligible next to a step of this MLP.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.buffers import BufferConfig, make_buffer  # noqa: E402

log = logging.getLogger("bench_buffers")
METHODS = ("offline", "fifo", "firo", "reservoir", "offline_budget")
T_LO, T_HI = 100.0, 500.0  # parameter range (K), as Melissa's heat use case
T_MID, T_HALF = 0.5 * (T_LO + T_HI), 0.5 * (T_HI - T_LO)


@dataclass(frozen=True)
class StudyConfig:
    grid: int = 24  # interior points per side
    n_times: int = 40  # records per simulation
    substeps: int = 12  # explicit steps between records
    n_train: int = 512  # training simulations (the data budget is n_train * n_times samples)
    n_val: int = 64  # held-out simulations
    clients: int = 32  # simulations running at once: samples per tick
    batch_size: int = 32
    steps_per_tick: float = 2.0  # training chances per tick (may be fractional): trainer speed / stream rate
    capacity: int = 1024  # buffer capacity (all online buffers)
    watermark: int = 256  # buffer watermark (all online buffers)
    hidden: int = 256
    lr: float = 1e-3

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"StudyConfig.{name} must be > 0, got {value!r}")
        if self.n_train % self.clients:
            raise ValueError(f"StudyConfig.n_train ({self.n_train}) must be a multiple of clients ({self.clients})")
        BufferConfig("reservoir", capacity=self.capacity, watermark=self.watermark)  # validates both
        if self.batch_size > self.capacity:
            raise ValueError(f"StudyConfig.batch_size ({self.batch_size}) exceeds capacity ({self.capacity})")


QUICK = dict(grid=12, n_times=20, substeps=6, n_train=128, n_val=16, clients=16, batch_size=16, capacity=256,
             watermark=64, hidden=64)


# -- data ------------------------------------------------------------------------------
def simulate_heat(theta: np.ndarray, cfg: StudyConfig) -> np.ndarray:
    """Records (S, n_times, grid, grid) of du/dt = lap(u), Dirichlet sides theta[:, 1:5],
    initial interior theta[:, 0]; FTCS with r = dt/dx^2 = 0.2 (stable below 0.25)."""
    s, n = len(theta), cfg.grid
    u = np.empty((s, n + 2, n + 2))
    u[:] = theta[:, 0, None, None]
    u[:, 0, :], u[:, -1, :] = theta[:, 1, None], theta[:, 2, None]  # south, north
    u[:, :, 0], u[:, :, -1] = theta[:, 3, None], theta[:, 4, None]  # west, east
    out = np.empty((s, cfg.n_times, n, n), np.float32)
    for k in range(cfg.n_times):
        out[:, k] = u[:, 1:-1, 1:-1]
        for _ in range(cfg.substeps):
            lap = u[:, :-2, 1:-1] + u[:, 2:, 1:-1] + u[:, 1:-1, :-2] + u[:, 1:-1, 2:] - 4 * u[:, 1:-1, 1:-1]
            u[:, 1:-1, 1:-1] += 0.2 * lap
    return out


def make_pairs(theta: np.ndarray, fields: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized inputs (S*T, 6) = (θ, t) and targets (S*T, grid*grid), simulation-major."""
    s, t = fields.shape[:2]
    th = np.repeat((theta - T_MID) / T_HALF, t, axis=0)
    tt = np.tile(np.linspace(0.0, 1.0, t), s)[:, None]
    x = np.concatenate([th, tt], axis=1).astype(np.float32)
    y = ((fields - T_MID) / T_HALF).reshape(s * t, -1).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def stream_order(cfg: StudyConfig) -> np.ndarray:
    """Sample indices (ticks, clients) in arrival order: waves of `clients` simulations,
    each tick one record of every running simulation."""
    waves = np.arange(cfg.n_train).reshape(-1, cfg.clients)  # (waves, clients)
    ticks = [wave * cfg.n_times + k for wave in waves for k in range(cfg.n_times)]
    return np.stack(ticks)


# -- training --------------------------------------------------------------------------
def make_net(cfg: StudyConfig, seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
                        nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.grid ** 2))
    return net, torch.optim.Adam(net.parameters(), lr=cfg.lr)


def train_step(net, opt, x, y) -> float:
    opt.zero_grad(set_to_none=True)
    loss = torch.mean((net(x) - y) ** 2)
    loss.backward()
    opt.step()
    return float(loss.detach())


def run_offline(x, y, cfg: StudyConfig, seed: int, steps: int | None = None) -> tuple[nn.Module, dict]:
    """Shuffled epochs over the stored stream: one epoch, or ``steps`` batches."""
    net, opt = make_net(cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    steps = steps or -(-len(x) // cfg.batch_size)
    done = 0
    while done < steps:  # epochs
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            if done == steps:
                break
            train_step(net, opt, x[order[i:i + cfg.batch_size]], y[order[i:i + cfg.batch_size]])
            done += 1
    return net, {"steps": steps, "idle_fraction": 0.0, "dropped": 0}


def compute_budget(cfg: StudyConfig) -> int:
    """Training chances the online runs get: ticks x steps_per_tick."""
    return chances(cfg, (cfg.n_train // cfg.clients) * cfg.n_times)


def chances(cfg: StudyConfig, ticks: int) -> int:
    """Training chances in the first ``ticks`` ticks (a fractional rate spreads them evenly)."""
    return int(np.floor(ticks * cfg.steps_per_tick + 1e-9))


def run_online(kind: str, x, y, cfg: StudyConfig, seed: int) -> tuple[nn.Module, dict]:
    """Producer puts a tick of samples, then the trainer has steps_per_tick chances."""
    net, opt = make_net(cfg, seed)
    buf = make_buffer(BufferConfig(kind, capacity=cfg.capacity, watermark=cfg.watermark, seed=seed))
    steps = idle = 0

    def step_if_ready() -> bool:
        if not buf.ready(cfg.batch_size):
            return False
        idx = torch.tensor(buf.get(cfg.batch_size))
        train_step(net, opt, x[idx], y[idx])
        return True

    for k, tick in enumerate(stream_order(cfg)):
        for i in tick.tolist():
            buf.put(i)
        for _ in range(chances(cfg, k + 1) - chances(cfg, k)):
            took = step_if_ready()
            steps, idle = steps + took, idle + (not took)
    buf.close()
    while kind != "reservoir" and step_if_ready():  # FIFO/FIRO: the tail once, as offline would
        steps += 1
    return net, {"steps": steps, "idle_fraction": idle / (steps + idle), "dropped": buf.n_dropped}


@torch.no_grad()
def validation_mse(net, x, y, n_times: int) -> dict:
    """MSE (normalized units) over all records, and over each third of the time span."""
    err = ((net(x) - y) ** 2).mean(dim=1).reshape(-1, n_times)
    thirds = np.array_split(np.arange(n_times), 3)
    return {"mse": float(err.mean()), **{f"mse_{name}": float(err[:, part].mean())
                                         for name, part in zip(("early", "mid", "late"), thirds)}}


# -- study -----------------------------------------------------------------------------
def run_study(cfg: StudyConfig, seeds: int, data_seed: int = 0, progress: bool = True) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _study(cfg, seeds, data_seed, progress)
    finally:
        torch.set_num_threads(threads)


def _study(cfg: StudyConfig, seeds: int, data_seed: int, progress: bool) -> dict:
    rng = np.random.default_rng(data_seed)
    t0 = time.perf_counter()
    theta_train = rng.uniform(T_LO, T_HI, size=(cfg.n_train, 5))
    theta_val = rng.uniform(T_LO, T_HI, size=(cfg.n_val, 5))
    x, y = make_pairs(theta_train, simulate_heat(theta_train, cfg))
    xv, yv = make_pairs(theta_val, simulate_heat(theta_val, cfg))
    log.info("simulated %d + %d runs (%d training samples) in %.1f s", cfg.n_train, cfg.n_val, len(x),
             time.perf_counter() - t0)
    run_offline(x[: 8 * cfg.batch_size], y[: 8 * cfg.batch_size], cfg, 0)  # warm-up: first-call costs untimed
    runs = {m: [] for m in METHODS}
    jobs = [(seed, m) for seed in range(seeds) for m in METHODS]  # methods interleaved: fair timings
    for seed, method in tqdm(jobs, desc="bench_buffers", unit="run", disable=not progress):
        t1, c1 = time.perf_counter(), time.process_time()
        if method.startswith("offline"):
            net, info = run_offline(x, y, cfg, seed, compute_budget(cfg) if method == "offline_budget" else None)
        else:
            net, info = run_online(method, x, y, cfg, seed)
        info.update(wall_s=time.perf_counter() - t1, cpu_s=time.process_time() - c1)
        runs[method].append({**info, **validation_mse(net, xv, yv, cfg.n_times)})
    return {"config": asdict(cfg), "seeds": seeds, "samples": len(x), "runs": runs,
            "summary": summarize(runs)}


def summarize(runs: dict) -> dict:
    """Means over seeds, with ratios to the offline one-epoch run of the same study."""
    ref = {k: np.mean([r[k] for r in runs["offline"]]) for k in ("mse", "wall_s", "cpu_s")}
    out = {}
    for method, rs in runs.items():
        mean = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
        out[method] = {**mean, "mse_std": float(np.std([r["mse"] for r in rs])),
                       **{f"{k}_ratio_to_offline": mean[k] / ref[k] for k in ref}}
    return out


COLUMNS = [  # (title, summary key, format)
    ("method", None, "<15"), ("val MSE", "mse", ">10.3e"), ("± std", "mse_std", ">8.1e"),
    ("/offline", "mse_ratio_to_offline", ">9.2f"), ("early", "mse_early", ">9.2e"), ("mid", "mse_mid", ">9.2e"),
    ("late", "mse_late", ">9.2e"), ("steps", "steps", ">6.0f"), ("idle", "idle_fraction", ">5.2f"),
    ("dropped", "dropped", ">7.0f"), ("cpu s", "cpu_s", ">7.2f"), ("/offline", "cpu_s_ratio_to_offline", ">8.2f"),
    ("wall s", "wall_s", ">7.2f")]


def format_table(result: dict) -> str:
    """One row per method; MSE in normalized units ((u - 300 K) / 200 K)^2."""
    width = [int("".join(ch for ch in fmt.split(".")[0] if ch.isdigit())) for _, _, fmt in COLUMNS]
    head = " ".join(f"{title:{fmt[0]}{w}}" for (title, _, fmt), w in zip(COLUMNS, width))
    rows = [head, "-" * len(head)]
    for method, s in result["summary"].items():
        rows.append(" ".join(f"{method:{fmt}}" if key is None else f"{s[key]:{fmt}}" for _, key, fmt in COLUMNS))
    return "\n".join(rows)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke configuration (seconds)")
    p.add_argument("--seeds", type=int, default=None, help="repeats per method (default 3, --quick 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", type=Path, help="write the configuration, every run and the summary here")
    for name, field in StudyConfig.__dataclass_fields__.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(field.default), default=None,
                       help=f"StudyConfig.{name} (default {field.default}; --quick {QUICK.get(name, field.default)})")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    overrides = {k: getattr(args, k) for k in StudyConfig.__dataclass_fields__ if getattr(args, k) is not None}
    cfg = replace(StudyConfig(**(QUICK if args.quick else {})), **overrides)
    seeds = args.seeds or (1 if args.quick else 3)
    result = run_study(cfg, seeds, progress=not args.no_progress)
    print(format_table(result))
    s = result["summary"]
    print(f"reservoir / offline at the same compute budget ({s['offline_budget']['steps']:.0f} steps): "
          f"{s['reservoir']['mse'] / s['offline_budget']['mse']:.2f}")
    print("target (models/README.md, Buffers): reservoir ≈ offline < firo < fifo in validation MSE "
          "(Melissa heat PDE: offline 83.1, FIFO 391, FIRO 135, Reservoir 80.3)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(args.json)
        log.info("wrote %s", args.json)
    return result


if __name__ == "__main__":
    main()
