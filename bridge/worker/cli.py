"""``oceanbridge worker --config CONFIG``: join the MPMD job as the Python worker group.

Launched by ``oceanbridge launch`` (see ``deploy.mpmd.worker_argv``), in
the run folder, once per worker rank.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("bridge.worker")


def member_parameters(cfg) -> dict[str, np.ndarray]:
    """θ of every member, in the order of ``[[parameters]]``: from run_dir/parameters.csv
    (written by preprod), else recomputed from the config (the draw is a pure function of it)."""
    from bridge.config.ensemble import draw_parameters, read_parameters_csv
    names = [p.name for p in cfg.parameters]
    csv = cfg.run.run_dir / "parameters.csv"
    if names and csv.is_file():
        table = read_parameters_csv(csv)
        missing = [c for c in cfg.components if c not in table]
        if missing:
            raise SystemExit(f"oceanbridge worker: {csv} has no row for member(s) {missing}; "
                             f"run 'oceanbridge preprod {cfg.source}' again")
        return {c: np.array([table[c][n] for n in names], dtype=np.float32) for c in cfg.components}
    theta = draw_parameters(cfg) if names else np.zeros((len(cfg.components), 0))
    return {c: theta[k].astype(np.float32) for k, c in enumerate(cfg.components)}


def read_mask(settings, ny: int, nx: int) -> np.ndarray:
    """The (ny, nx) land-sea mask of [model] mask_file, or all ocean."""
    m = settings.model
    if m.mask_file is None:
        return np.ones((ny, nx), dtype=np.float32)
    import netCDF4
    with netCDF4.Dataset(m.mask_file) as ds:
        if m.mask_var not in ds.variables:
            raise SystemExit(f"oceanbridge worker: [model] mask_var '{m.mask_var}' not in {m.mask_file}")
        mask = np.ma.filled(ds.variables[m.mask_var][:], 0).astype(np.float32)
    if mask.shape != (ny, nx):
        raise SystemExit(f"oceanbridge worker: mask {m.mask_file}:{m.mask_var} is {mask.shape}, the grid is {(ny, nx)}")
    return (mask > 0).astype(np.float32)


def check_gaps_are_land(settings, mask: np.ndarray, gaps: np.ndarray) -> None:
    """The points no ocean rank owns must be land in [model] mask_file: an ocean point there is a decomposition
    that dropped ocean, or a mask of another grid.  (Without a mask file the worker's mask is all ocean until
    it learns the gaps: nothing to check.)"""
    if settings.model.mask_file is None:
        return
    wet = np.argwhere(gaps & (mask > 0))
    if len(wet):
        j, i = wet[0]
        raise SystemExit(f"oceanbridge worker: the ocean's ranks own no point at i={i}, j={j} (and {len(wet) - 1} "
                         f"more), which [model] mask_file {settings.model.mask_file} marks as ocean: the ocean "
                         f"declared gaps in its partition (land-only subdomains removed) over ocean points")


def main(argv: list[str] | None = None) -> int:
    from bridge.worker.process import WorkerProcess
    process = WorkerProcess()  # joins MPI before anything below can fail (bridge/worker/process.py)
    process.catch_stop_signals()
    try:
        return _main(argv, process)
    except SystemExit as err:
        if err.code in (0, None):  # --help
            raise
        process.end(err)
    except BaseException as err:
        process.end(err)


def _main(argv: list[str] | None, process) -> int:
    p = argparse.ArgumentParser(prog="oceanbridge worker", description=__doc__)
    p.add_argument("--config", required=True, type=Path, help="deploy config (TOML)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    from bridge.config.config import load_config
    from bridge.worker.settings import worker_settings
    from bridge.worker.tunnel import Tunnel, channel_names

    cfg = load_config(args.config)
    settings = worker_settings(cfg)
    import torch  # noqa: F401  (slow imports before joining: the ocean then waits in its init, not in its loop)

    import models.train  # noqa: F401
    tunnel = Tunnel(cfg)
    summary = run_worker(cfg, settings, tunnel, fresh=args.fresh, progress=not args.no_progress,
                         channels=channel_names(cfg), on_coupled=lambda: process.mark_coupled(cfg.ocean.required))
    tunnel.finalize()
    if tunnel.rank == 0:
        log.info("worker done: %s", {k: v for k, v in summary.items() if k != "losses"})
    return 0


def equilibrium_watch(cfg, settings, channels, mask):
    """The generate mode's equilibrium detector over every member (bridge/worker/equilibrium.py)."""
    from bridge.worker.equilibrium import EquilibriumWatch, gyre_setup
    grid, physics = gyre_setup(cfg, mask)
    g = settings.generate
    return EquilibriumWatch(cfg.components, g.metric_names, g.detector, grid, physics, channels, cfg.run.dt)


def rank_band(cfg, rank: int, size: int):
    """This rank's band of the sampling decomposition: tiles of the band shape each rank trained on,
    halos exchanged at every network call (models/bands.py), so samples have no seams at band edges."""
    from bridge.worker.tunnel import worker_box
    from models.bands import BandLayout, RankBand
    boxes = [worker_box(cfg, r, size) for r in range(size)]
    layout = BandLayout.training_shaped(cfg.ocean.ny, cfg.ocean.nx, [(b.j0, b.nj) for b in boxes])
    log.info("sampling: %d bands of rows %s, tiles %s overlapping by %d rows/columns; this rank reads rows %d..%d",
             size, [(b.j0, b.j0 + b.nj - 1) for b in boxes], layout.tile, layout.overlap, layout.reads(rank)[0],
             layout.reads(rank)[1] - 1)
    return RankBand(layout, rank, cfg.run.ranks_timeout_s)


def run_worker(cfg, settings, tunnel, *, fresh: bool, progress: bool, channels, on_coupled=lambda: None) -> dict:
    """Everything after the tunnel exists: torch, the trainer, the buffer, the loop."""
    import torch
    from tqdm.auto import tqdm

    from bridge.transport import wait
    from bridge.worker.checkpoint import checkpoint_path, load_checkpoint, restore
    from bridge.worker.ddp import DataParallel
    from bridge.worker.engine import Engine, build_inference, build_trainer
    from bridge.worker.learner import Learner
    from bridge.worker.placement import device_for_rank, placement_report
    from bridge.worker.records import Counters
    from bridge.worker.runtime import Runtime, WorkerParts
    from models.buffers import BufferConfig, make_buffer
    from models.data import DataSpec
    from models.train import Trainer

    rank, size = tunnel.rank, tunnel.size
    wait.yield_to_busy_thread("the training thread")  # its core is not the receiver's to spin on
    # the receiving (main) thread must get the interpreter back quickly from the training thread,
    # or the ocean waits on it: switch threads every 0.5 ms instead of Python's default 5 ms
    sys.setswitchinterval(5e-4)
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores with the ocean ranks
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // (size + cfg.ocean.ranks * cfg.ocean.members)))
    device = device_for_rank(cfg.worker.device, rank)
    placement_report(tunnel.local_comm, device)
    spec = DataSpec(channels, tuple(p.name for p in cfg.parameters), tunnel.box.nj, tunnel.box.ni)
    generating = "generate" in cfg.worker.modes
    task, lag = ("generate", 1) if generating else ("emulate", tunnel.cfg.fields[0].freq)
    trainer = build_trainer(spec, settings, device, use_position=size > 1, lag=lag, task=task)
    baseline = build_trainer(spec, settings, device, use_position=size > 1, lag=lag, task=task, objective="mse") \
        if generating and settings.generate.baseline else None
    inference = build_inference(spec, settings, device)
    mask = read_mask(settings, cfg.ocean.ny, cfg.ocean.nx)
    watch = equilibrium_watch(cfg, settings, channels, mask) if generating else None
    parts = {name: part for name, part in (("baseline", baseline), ("equilibrium", watch)) if part is not None}
    b = settings.buffer
    buffer = make_buffer(BufferConfig(kind=b.kind, capacity=b.capacity, watermark=b.watermark, seed=b.seed + rank))
    ckpt = checkpoint_path(cfg.run.run_dir, settings.checkpoint.path, rank, size)
    counters = Counters()
    if ckpt.is_file() and settings.checkpoint.resume and not fresh:
        counters = Counters.from_dict(restore(load_checkpoint(ckpt), trainer, buffer, inference, parts))
        log.info("resumed from %s: train step %d, buffer %d sample(s) (n_put %d, n_got %d), counters %s", ckpt,
                 trainer.step, len(buffer), buffer.n_put, buffer.n_got, counters.as_dict())
    ddp = DataParallel(tunnel.local_comm, trainer.device, cfg.run.ranks_timeout_s)
    ddp.attach(trainer.model)
    trainer.on_freeze = ddp.pool_statistics  # the tiles' statistics pooled when the normalizers freeze
    engine = Engine(trainer, tunnel.box, mask, use_position=size > 1, inference=inference, baseline=baseline,
                    bands=rank_band(cfg, rank, size) if ddp.active else None)
    generator = Trainer.load(settings.spinup.checkpoint, device=device) if "spinup" in cfg.worker.modes else None
    learner = Learner(engine, buffer, ddp, settings.train, settings.emulate,
                      training=bool({"train", "generate"} & set(cfg.worker.modes)))
    runtime = Runtime(WorkerParts(cfg, settings, tunnel, engine, buffer, learner, counters, member_parameters(cfg),
                                  channels, ckpt, generator, watch, parts))
    tunnel.connect()
    gaps = tunnel.gaps()
    if gaps is not None:  # land-only subdomains removed by the ocean: land to the loss and the samples too
        check_gaps_are_land(settings, mask, gaps)
        engine.set_land(gaps)
        log.info("the ocean's ranks own no point at %d of %d grid points (land-only subdomains removed): land to "
                 "the worker", int(gaps.sum()), gaps.size)
    on_coupled()
    bar = tqdm(total=len(runtime.schedule.steps), desc="worker: ocean steps", unit="step", file=sys.stderr,
               disable=not progress or rank != 0, mininterval=2.0)
    try:
        return runtime.run(bar)
    finally:
        bar.close()
        ddp.close()
