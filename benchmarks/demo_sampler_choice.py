"""Choose the demo's emulation sampler on validation data, scored as the demo scores its emulation phase.

    python benchmarks/demo_sampler_choice.py --checkpoint out/val/diffusion.pt \
        --val-data out/demo/run/member_4/train_fields.nc --json out/demo_sampler_choice.json

The demo's targets are per variable and on the **one-step change** (x_{t+1} - x_t): high-k ratio of the
change in [0.7, 1.4] (DCT), spread/skill in [0.7, 1.3]. ``bench_surrogate.py`` scores the predicted state
instead, whose small scales a one-day lag leaves almost all in x_t; so the sampler is chosen here, with the
demo's own scoring (``bridge.worker.report.scores``), on (x_t, x_{t+1}) pairs of validation files the
checkpoint was not trained on, for every sampler of the grid (Heun steps x churn settings of
``models/sampler_select.py``). Rule: the settings with every variable's high-k ratio in the band; among
them, the smallest mean |log spread/skill|; if none is in the band, the smallest mean |log high-k|.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import netCDF4
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bridge.worker.demo_targets import TARGETS  # noqa: E402
from bridge.worker.report import scores  # noqa: E402
from models.data import Batch, PairDataset  # noqa: E402
from models.metrics import crps_fair_pointwise  # noqa: E402
from models.sampler_select import churn_grid  # noqa: E402
from models.sampling import SamplerConfig  # noqa: E402
from models.train import Trainer  # noqa: E402

HIGH_K_BAND = next((t.low, t.high) for t in TARGETS if t.name == "high_k")  # the demo's own target
STEPS = (6, 12, 18)
CHURNS = ("det", "churn10_low", "churn10_high")


def ensemble(trainer: Trainer, pairs: Batch, samples: int, sampler, seed: int) -> np.ndarray:
    """(cases, samples, C, ny, nx) samples for every validation pair."""
    out = trainer.sample(pairs, n=samples, sampler=sampler, generator=torch.Generator().manual_seed(seed))
    return out.double().numpy()


def demo_scores(ens: np.ndarray, pairs: Batch, mask: np.ndarray, dx: float, channels) -> dict:
    """The demo's per-variable scores of one ensemble (cases act as the demo's steps of one member)."""
    truth, start = pairs.target.double().numpy()[None], pairs.state.double().numpy()[None]
    em = {"ocean": truth, "start": start, "emulated": ens[None, :, 0], "mean": ens.mean(1)[None],
          "spread": ens.std(1)[None], "crps": np.stack([crps_fair_pointwise(e, t) for e, t in zip(ens, truth[0])])[None],
          "mask": mask, "dx": dx, "dy": dx}
    return scores(em, None, channels, ens.shape[1])


def rank(table: dict) -> str:
    def in_band(row):
        return all(HIGH_K_BAND[0] <= v["highk_diffusion"] <= HIGH_K_BAND[1] for v in row.values())

    def mean_abs_log(row, key):
        return float(np.mean([abs(math.log(max(v[key], 1e-12))) for v in row.values()]))
    banded = [n for n, row in table.items() if in_band(row)]
    if banded:
        return min(banded, key=lambda n: mean_abs_log(table[n], "spread_skill"))
    return min(table, key=lambda n: mean_abs_log(table[n], "highk_diffusion"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="a diffusion surrogate (emulate task)")
    p.add_argument("--val-data", nargs="+", required=True, help="validation fields files, not trained on")
    p.add_argument("--cases", type=int, default=8, help="validation pairs, spread over the files' records")
    p.add_argument("--samples", type=int, default=4, help="samples per pair (the demo's [worker.emulate] samples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    trainer = Trainer.load(args.checkpoint, device="cpu")
    data = PairDataset(args.val_data, list(trainer.spec.channels), lag=1)
    pick = torch.linspace(0, len(data) - 1, args.cases).round().long()
    pairs = data.batch(pick)
    with netCDF4.Dataset(args.val_data[0]) as ds:
        dx = float(np.diff(ds["x"][:2])[0])
    mask = pairs.mask[0, 0].numpy() > 0
    table = {}
    for steps, churn in itertools.product(STEPS, CHURNS):
        sampler = churn_grid([churn])[churn].sampler(steps, SamplerConfig.sigma_min)
        ens = ensemble(trainer, pairs, args.samples, sampler, args.seed)
        table[f"{steps} steps, {churn}"] = demo_scores(ens, pairs, mask, dx, trainer.spec.channels)
    chosen = rank(table)
    print(f"{'sampler':<26}" + "".join(f"{c + ' hk':>10}{c + ' s/s':>10}" for c in trainer.spec.channels))
    for name, row in table.items():
        cells = "".join(f"{v['highk_diffusion']:>10.2f}{v['spread_skill']:>10.2f}" for v in row.values())
        print(f"{name:<26}{cells}{'  <- chosen' if name == chosen else ''}")
    print(f"rule: every variable's high-k ratio of the one-step change in {list(HIGH_K_BAND)}, then mean "
          f"|log spread/skill| smallest; {args.cases} pairs of {', '.join(args.val_data)}")
    if args.json:
        args.json.write_text(json.dumps({"table": table, "chosen": chosen}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
