"""Seams of samples drawn on M = 1, 2 and 4 worker ranks, side by side in one run (issue 18).

    python benchmarks/bench_worker_ranks.py --json out/bench_worker_ranks.json

Trains one emulator p(x_{t+1 day} | x_t, θ) on 32-point patches of three gyre members (the
``make demo`` members' daily fields, or ``--data``), then samples held-out cases of the fourth member
under ``mpirun -n M``: every rank denoises its j-band with the worker's band tiling (models/bands.py:
32-point tiles overlapping by half, the iterate's halo exchanged at every network call, the noise
drawn on the whole grid). The same tiling on one rank is the reference: the M-rank samples must equal
it. Each rank also denoises its band on its own (no halo exchange; the worker before issue 18) from
the same noise, to show what the seam metric (models/seams.py) catches.

Reported per M and channel: the seam ratio (mean squared j-gradient across the band edges / inside the
bands) of the truth (the ocean's own next states of the sampled cases), of the 1-rank samples, of the
M-rank samples and of the bands on their own, with a 90 % interval of 1-rank vs truth from a bootstrap
over the cases (the ratio varies from case to case far more than 5 %, so the cases are paired); the largest |M-rank - 1-rank| difference; per-rank sampling time and
the halo exchange's share of it. Targets: M-rank ratio within 5 % of the 1-rank one, which is within
5 % of the truth's; exchange <= 10 % of the sampling time.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.bands import BandLayout, RankBand  # noqa: E402
from models.data import Batch, PairDataset  # noqa: E402
from models.sampling import SamplerConfig  # noqa: E402
from models.seams import SEAM_TOLERANCE, band_edges, seam_ratio, seams_match  # noqa: E402
from models.surrogate import Surrogate, SurrogateConfig  # noqa: E402
from models.train import TrainConfig, Trainer  # noqa: E402

log = logging.getLogger("bench_worker_ranks")
RANKS = (1, 2, 4)
CHANNELS = ("ssh", "u", "v", "temp")
HALO_SHARE = 0.10  # target: the exchange's share of the sampling time
BOOTSTRAP = 500  # resamples of the cases for the 1-rank vs truth interval
TILE = 32  # the training patch, and the sampling tile of every M
# The demo's emulator and sampler (deploy/demo/demo.toml, chosen there on validation)
MODEL = dict(model_channels=16, channel_mult=(1, 2), spectral_whitening=0.5, whiten_state=True)
SAMPLER = SamplerConfig(num_steps=6, S_churn=10.0, S_max=1.0)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    demo = REPO / "out" / "demo" / "run"
    p.add_argument("--data", nargs="+", type=Path,
                   default=[demo / f"member_{k}" / "train_fields.nc" for k in (1, 2, 3, 4)],
                   help="gyre fields files; the last is held out (default: the make demo members)")
    p.add_argument("--steps", type=int, default=1500, help="optimizer steps of the emulator")
    p.add_argument("--cases", type=int, default=128, help="held-out (x_t, θ) cases sampled")
    p.add_argument("--samples", type=int, default=4, help="samples per case")
    p.add_argument("--out", type=Path, default=REPO / "out" / "bench_worker_ranks")
    p.add_argument("--json", type=Path)
    p.add_argument("--reuse", action="store_true", help="reuse out/emulator.pt if it was trained the same way")
    p.add_argument("--rank-job", type=int, metavar="M", help=argparse.SUPPRESS)  # one mpirun job's rank
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- the parent


def train(args, files: list[Path]) -> Path:
    """The emulator, trained on random 32-point patches (so any tile of the grid is in distribution)."""
    checkpoint = args.out / "emulator.pt"
    data = PairDataset([str(f) for f in files], CHANNELS)
    config = SurrogateConfig(data.spec, use_position=True, **MODEL)
    # the warm-up and EMA its figures (bridge/worker/README.md) were measured with
    train_cfg = TrainConfig(batch_size=8, lr=2e-3, seed=0, tile=TILE, lr_warmup_steps=200, ema_halflife_steps=200.0,
                            norm_warmup_steps=100)
    if args.reuse and checkpoint.exists():
        trainer = Trainer.load(checkpoint)
        if (trainer.model.config.to_dict(), asdict(trainer.config)) == (config.to_dict(), asdict(train_cfg)) \
                and trainer.step >= args.steps:
            log.info("reusing %s (step %d)", checkpoint, trainer.step)
            return checkpoint
    trainer = Trainer(Surrogate(config), train_cfg)
    trainer.fit(data, args.steps, checkpoint=checkpoint, checkpoint_every=args.steps, progress=True)
    return checkpoint


def held_out(args, test_file: Path) -> tuple[Batch, np.ndarray]:
    """``--cases`` evenly spaced (x_t, θ) cases of the held-out member, and their next states (the truth)."""
    test = PairDataset([str(test_file)], CHANNELS)
    rows = torch.linspace(0, len(test) - 1, args.cases).round().long()
    cases = test.batch(rows)
    cases.pos = test.full_position()
    return cases, cases.target.numpy()


def launch(args, ranks: int) -> None:
    from bridge.mpirun import mpirun_prefix, run_mpirun
    cmd = mpirun_prefix(ranks) + ["-np", str(ranks), sys.executable, __file__, "--rank-job", str(ranks),
                                  "--out", str(args.out), "--samples", str(args.samples)]
    # one thread per rank for every M: the per-rank times compare, and the convolutions sum in the same order
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    res = run_mpirun(cmd, cwd=REPO, env=env, timeout=3600)
    if res.returncode != 0:
        raise SystemExit(f"bench_worker_ranks: the {ranks}-rank job failed:\n{res.stdout[-4000:]}")


def gather(out: Path, ranks: int) -> dict:
    """The ranks' bands stitched into whole grids, and their timings."""
    parts = [np.load(out / f"samples_M{ranks}_r{r}.npz") for r in range(ranks)]
    return {"halo": np.concatenate([p["halo"] for p in parts], axis=-2),
            "alone": np.concatenate([p["alone"] for p in parts], axis=-2),
            "sample_s": [float(p["sample_s"]) for p in parts], "exchange_s": [float(p["exchange_s"]) for p in parts],
            "bands": [tuple(int(v) for v in p["band"]) for p in parts]}


def critical_share(sample_s: list[float], exchange_s: list[float]) -> tuple[float, float]:
    """(exchange share of the sampling time on the rank that computes longest, compute imbalance max/min).
    The other ranks' exchange time includes waiting for that rank (more tiles touch its band): idle time
    that does not lengthen the sample; the busiest rank's share is what the exchange adds."""
    compute = [s - e for s, e in zip(sample_s, exchange_s)]
    k = int(np.argmax(compute))
    return exchange_s[k] / sample_s[k], max(compute) / max(min(compute), 1e-12)


def ratios(fields: np.ndarray, edges, mask) -> dict:
    """Seam ratio per channel of (..., C, ny, nx) fields."""
    return {c: seam_ratio(fields[..., k, :, :], edges, mask) for k, c in enumerate(CHANNELS)}


def paired_interval(samples: np.ndarray, truth: np.ndarray, edges, mask, draws: int = BOOTSTRAP) -> dict:
    """90 % bootstrap interval of ratio(samples) / ratio(truth) - 1 per channel, resampling the cases
    (samples (K, n, C, ny, nx) and truth (K, C, ny, nx) drawn with the same case indices)."""
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, len(truth), len(truth)) for _ in range(draws)]
    return {c: np.percentile([seam_ratio(samples[i, :, k], edges, mask) / seam_ratio(truth[i, k], edges, mask) - 1
                              for i in picks], [5, 95]).tolist() for k, c in enumerate(CHANNELS)}


def measure(args, truth: np.ndarray, mask: np.ndarray) -> dict:
    runs = {m: gather(args.out, m) for m in RANKS}
    one = runs[1]["halo"]
    result = {}
    for m in RANKS[1:]:
        r, edges = runs[m], band_edges(runs[m]["bands"])
        share, imbalance = critical_share(r["sample_s"], r["exchange_s"])
        result[m] = {
            "edges": edges, "truth": ratios(truth, edges, mask), "one_rank": ratios(one, edges, mask),
            "one_rank_vs_truth_90": paired_interval(one, truth, edges, mask),
            "halo": ratios(r["halo"], edges, mask), "alone": ratios(r["alone"], edges, mask),
            "max_abs_diff_vs_one_rank": float(np.abs(r["halo"] - one).max()),
            "sample_s_per_rank": r["sample_s"], "exchange_s_per_rank": r["exchange_s"],
            "exchange_share_critical": share, "compute_imbalance": imbalance,
            "exchange_share_per_rank": [e / s for e, s in zip(r["exchange_s"], r["sample_s"])],
            "tiles": BandLayout(mask.shape[0], mask.shape[1], r["bands"], (TILE, TILE)).tiles_evaluated(),
        }
    result[1] = {"sample_s_per_rank": runs[1]["sample_s"], "exchange_s_per_rank": runs[1]["exchange_s"]}
    return result


def targets(res: dict) -> dict:
    out = {}
    for m in RANKS[1:]:
        r = res[m]
        for c in CHANNELS:
            out[f"seam_M{m}_vs_M1_{c}"] = (r["halo"][c] / r["one_rank"][c] - 1,
                                           seams_match(r["halo"][c], r["one_rank"][c]))
            out[f"seam_M1_vs_truth_at_M{m}_edges_{c}"] = (r["one_rank"][c] / r["truth"][c] - 1,
                                                          seams_match(r["one_rank"][c], r["truth"][c]))
        out[f"halo_share_M{m}"] = (r["exchange_share_critical"], r["exchange_share_critical"] <= HALO_SHARE)
    return out


def table(res: dict, verdict: dict) -> str:
    lines = ["| M | channel | edge rows | truth | 1 rank | M ranks | bands alone (no halo) | M vs 1 | 1 vs truth "
             "(90 % interval) | no halo vs 1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in RANKS[1:]:
        r = res[m]
        for c in CHANNELS:
            lines.append(f"| {m} | {c} | {r['edges']} | {r['truth'][c]:.3f} | {r['one_rank'][c]:.3f} | "
                         f"{r['halo'][c]:.3f} | {r['alone'][c]:.3f} | "
                         f"{100 * verdict[f'seam_M{m}_vs_M1_{c}'][0]:+.1f}% | "
                         f"{100 * verdict[f'seam_M1_vs_truth_at_M{m}_edges_{c}'][0]:+.1f}% "
                         f"({100 * r['one_rank_vs_truth_90'][c][0]:+.1f}..{100 * r['one_rank_vs_truth_90'][c][1]:+.1f}%) | "
                         f"{100 * (r['alone'][c] / r['one_rank'][c] - 1):+.1f}% "
                         f"({'passes' if seams_match(r['alone'][c], r['one_rank'][c]) else 'fails'} the check) |")
    lines += ["", "| M | max abs(M ranks - 1 rank) | sampling s per rank | exchange share per rank (incl. waiting) | "
                  "exchange share, busiest rank | compute max/min | tile rows evaluated (all ranks / one rank) |",
              "|---|---|---|---|---|---|---|"]
    for m in RANKS:
        r = res[m]
        times = ", ".join(f"{s:.1f}" for s in r["sample_s_per_rank"])
        if m == 1:
            lines.append(f"| 1 | (reference) | {times} | no exchange | | | |")
            continue
        shares = ", ".join(f"{100 * x:.1f}%" for x in r["exchange_share_per_rank"])
        lines.append(f"| {m} | {r['max_abs_diff_vs_one_rank']:.3g} | {times} | {shares} | "
                     f"{100 * r['exchange_share_critical']:.2f}% | {r['compute_imbalance']:.2f} | "
                     f"{r['tiles'][0]} / {r['tiles'][1]} |")
    lines += ["", "| target | value | PASS/FAIL |", "|---|---|---|"]
    for name, (value, ok) in verdict.items():
        lines.append(f"| {name} | {100 * value:+.2f}% | {'PASS' if ok else 'FAIL'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rank_job:
        return rank_job(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    missing = [str(f) for f in args.data if not f.is_file()]
    if missing or len(args.data) < 2:
        raise SystemExit(f"bench_worker_ranks: needs >= 2 gyre fields files (run `make demo` first, or pass "
                         f"--data); missing: {missing}")
    args.out.mkdir(parents=True, exist_ok=True)
    train(args, args.data[:-1])
    cases, truth = held_out(args, args.data[-1])
    torch.save({"cases": cases}, args.out / "cases.pt")
    for m in RANKS:
        t = time.perf_counter()
        launch(args, m)
        log.info("%d-rank job: %.1f s", m, time.perf_counter() - t)
    mask = cases.mask[0, 0].numpy()
    res = measure(args, truth, mask)
    verdict = targets(res)
    print(table(res, verdict))
    if args.json:
        doc = {"command": " ".join(sys.argv), "tile": TILE, "sampler": asdict(SAMPLER), "model": MODEL,
               "cases": args.cases, "samples": args.samples, "tolerance": SEAM_TOLERANCE, "halo_share": HALO_SHARE,
               "results": {str(m): r for m, r in res.items()},
               "targets": {k: {"value": v, "pass": ok, "result": "PASS" if ok else "FAIL"}
                           for k, (v, ok) in verdict.items()}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, default=float))
        tmp.replace(args.json)
    return 0


# ----------------------------------------------------------------------------- one rank of a job


def rank_job(args) -> int:
    """Sample this rank's band with halos (and on its own), write it and the timings."""
    from mpi4py import MPI

    from bridge.partition import decompose
    from bridge.worker.ddp import DataParallel
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    DataParallel(comm, torch.device("cpu"), timeout=600.0)
    trainer = Trainer.load(args.out / "emulator.pt")
    cases = torch.load(args.out / "cases.pt", weights_only=False)["cases"]
    ny, nx = cases.mask.shape[-2:]
    boxes = [(b.j0, b.nj) for b in decompose(nx, ny, 1, size)]
    band = RankBand(BandLayout(ny, nx, boxes, (TILE, TILE)), rank, timeout_s=600.0)
    rows = band.rows
    mine = Batch(target=None, state=cases.state[..., rows, :], theta=cases.theta, mask=cases.mask[..., rows, :],
                 pos=cases.pos[..., rows, :])
    comm.Barrier()
    t = time.perf_counter()
    halo = trainer.sample(mine, args.samples, SAMPLER, bands=band, generator=torch.Generator().manual_seed(1))
    sample_s = time.perf_counter() - t
    alone_layout = BandLayout(rows.stop - rows.start, nx, [(0, rows.stop - rows.start)], (TILE, TILE))
    alone = trainer.sample(mine, args.samples, SAMPLER, bands=RankBand(alone_layout, 0, 600.0),
                           noise=band.noise(torch.Generator().manual_seed(1)))
    np.savez(args.out / f"samples_M{size}_r{rank}.npz", halo=halo.numpy(), alone=alone.numpy(),
             sample_s=sample_s, exchange_s=band.exchange.seconds, band=np.array(boxes[rank]))
    comm.Barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
