"""Diffusion vs MSE surrogate at equal training budget (targets: models/README.md, Gyre benchmark).

    python benchmarks/bench_surrogate.py --synthetic --out out/bench_surrogate --json out/bench_surrogate.json
    python benchmarks/bench_surrogate.py --data run*/gyre_*.nc --test-data test/gyre_*.nc --steps 4000

Trains the EDM diffusion surrogate and the MSE baseline (same U-Net, same steps, batch
size and learning rate) on next-state emulation p(x_{t+lag} | x_t, θ), then scores both
on held-out trajectories: ensemble-mean RMSE, fair CRPS, spread/skill, the upper-half
wavenumber energy ratio, NFE per sample against a 256-step reference, training
samples/s and ms per sample on CPU (and CUDA when present).

``--synthetic`` stands in for the eddying gyre: stochastically forced 2-D turbulence
(models/synthetic.py) whose small scales are not predictable from the previous record,
which is exactly where an MSE surrogate regresses to the mean.

On gyre data (closed basin, steep ssh/u spectra) see models/whiten.py for why both
models train on spectrally whitened targets, and ``--spectrum``: the high-k target is
scored with the DCT spectrum there, because the FFT wraps the basin's walls into jumps
(both are reported). The one-call denoising study (table rows "denoised high-k
err/true") shows at which noise level the network stops removing small-scale noise.

    python benchmarks/bench_surrogate.py --data /tmp/gyredata/train_{0,1,2}/run/gyre_fields.nc \
        --test-data /tmp/gyredata/test_0/run/gyre_fields.nc --val-data /tmp/gyredata/test_1/run/gyre_fields.nc \
        --lag 6 --tile 32 --steps 2000 --cases 16 --val-cases 8 --ref-cases 4 --threads 1 \
        --whiten 0.5 --whiten-state --churn auto --out out/bench_surrogate_gyre_auto2k --json out/bench_surrogate_gyre_auto2k.json

Half whitening (``--whiten 0.5``) keeps the large scales in the loss (full whitening
weighs every DCT mode the same, and the ensemble mean then lost to persistence at the
largest scales); ``--whiten-state`` lets the network see x_t's small scales at the
scale of the target. ``--churn auto`` chooses the stochastic sampler's S_churn and
sigma window (Alg. 2) on the validation files from models/sampler_select.py's declared
grid: the test files are sampled once, with that choice. The 35-NFE sampler is compared
with a 256-step one (same window and total churn) on ``--ref-cases`` cases; "matching"
is the ``MATCH`` tolerance on CRPS, spread/skill and the high-k ratio (target line
``nfe_matches_reference``).
``--reuse`` rescores saved checkpoints (e.g. with other sampler settings).
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import metrics as M  # noqa: E402
from models.data import Batch, PairDataset  # noqa: E402
from models.plots import plot_fields, plot_rank_histogram, plot_spectra  # noqa: E402
from models.sampler_select import churn_grid, effective_churn, select  # noqa: E402
from models.sampling import SamplerConfig  # noqa: E402
from models.surrogate import Surrogate, SurrogateConfig  # noqa: E402
from models.synthetic import write_turbulence  # noqa: E402
from models.tiling import TiledDenoiser  # noqa: E402
from models.train import TrainConfig, Trainer  # noqa: E402

log = logging.getLogger("bench_surrogate")
TARGETS = {"high_k_ratio": (0.8, 1.25), "spread_skill": (0.8, 1.2), "nfe": 35}
# "quality matching the reference": |fast - ref| within these (relative for CRPS) on the same cases
MATCH = {"crps": ("relative", 0.05), "spread_skill": ("absolute", 0.1), "high_k": ("absolute", 0.15)}
DENOISE_SIGMAS = (0.01, 0.05, 0.2, 1.0)  # noise levels of the one-call denoising study
HIGH_K = {"fft": "high_k_ratio", "dct": "high_k_ratio_dct"}  # summary key of each spectrum
# (noise amplitude, drag) of the synthetic members: θ changes eddy energy and spectral slope
SYNTHETIC_THETA = [(0.7, 0.05), (1.0, 0.1), (1.4, 0.2), (1.0, 0.05)]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+", help="training files (gyre output, eddying regime)")
    src.add_argument("--synthetic", action="store_true", help="generate the 2-D turbulence stand-in")
    p.add_argument("--test-data", nargs="+", help="held-out files (default with --data: the last --data file)")
    p.add_argument("--val-data", nargs="+",
                   help="validation files: sampler settings (--churn auto) are chosen there, never on --test-data")
    p.add_argument("--val-cases", type=int, default=8, help="validation (x_t, x_t+lag) pairs scored per setting")
    p.add_argument("--variables", nargs="+", default=["ssh", "u", "v", "temp"])
    p.add_argument("--lag", type=int, default=1, help="records between x_t and the predicted state")
    p.add_argument("--skip", type=int, default=0, help="leading records of each file left out (spin-up)")
    p.add_argument("--tile", type=int, default=None,
                   help="train on random tiles of this size with their global position; score on whole grids")
    p.add_argument("--grid", type=int, default=32, help="synthetic grid size")
    p.add_argument("--records", type=int, default=300, help="synthetic records per training member")
    p.add_argument("--steps-per-record", type=int, default=40,
                   help="synthetic model steps between records: sets how much of the small scales is unpredictable")
    p.add_argument("--steps", type=int, default=800, help="optimizer steps for each model (equal budget)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--channels", type=int, default=16, help="U-Net base channels")
    p.add_argument("--channel-mult", default="1,2,2")
    p.add_argument("--P-mean", type=float, default=None,
                   help="EDM training noise ln(sigma) ~ N(P_mean, P_std^2); default: the surrogate's (0.6 for emulation)")
    p.add_argument("--P-std", type=float, default=1.2)
    p.add_argument("--whiten", type=float, default=1.0,
                   help="spectral whitening exponent of both models' targets (models/whiten.py); 0: off")
    p.add_argument("--whiten-state", action="store_true",
                   help="also whiten the conditioning state x_t (SurrogateConfig.whiten_state), both models")
    p.add_argument("--whiten-anisotropic", action="store_true",
                   help="whiten each (ky, kx) mode by its own power (SurrogateConfig.whiten_anisotropic)")
    p.add_argument("--reuse", action="store_true",
                   help="load --out's checkpoints when their settings match instead of retraining (rescoring)")
    p.add_argument("--cases", type=int, default=48, help="held-out (x_t, x_t+lag) pairs scored")
    p.add_argument("--members", type=int, default=8, help="ensemble members per case")
    p.add_argument("--num-steps", type=int, default=18, help="Heun steps (NFE = 2N - 1)")
    p.add_argument("--churn", type=churn_arg, default=0.0,
                   help="S_churn of the main sampler, or 'auto': chosen on --val-data from models/sampler_select.py's "
                        "grid (validation high-k in range, then spread/skill closest to 1)")
    p.add_argument("--churn-window", type=float, nargs=2, default=(0.0, math.inf), metavar=("S_MIN", "S_MAX"),
                   help="sigma window of the churn (Alg. 2's S_tmin, S_tmax); not with --churn auto")
    p.add_argument("--sigma-min", type=float, default=0.002, help="smallest noise level of the samplers")
    p.add_argument("--ref-steps", type=int, default=256, help="reference sampler steps")
    p.add_argument("--ref-cases", type=int, default=4, help="cases re-sampled with the reference")
    p.add_argument("--spectrum", choices=["auto", *M.SPECTRA], default="auto",
                   help="spectrum of the high-k target: fft for periodic grids, dct for closed basins "
                        "(auto: fft with --synthetic, dct with --data); both are reported")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/bench_surrogate", help="folder for data, checkpoints and PNGs")
    p.add_argument("--json", default=None, help="write the figures as JSON here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.churn == "auto" and not args.val_data:
        p.error("--churn auto chooses the sampler on a validation set: give --val-data (never the --test-data files)")
    if args.churn == "auto" and tuple(args.churn_window) != (0.0, math.inf):
        p.error("--churn auto takes the windows of its grid: drop --churn-window")
    if args.ref_cases < 1:
        p.error(f"--ref-cases must be >= 1 (the reference sampler's study needs a case), got {args.ref_cases}")
    return args


def churn_arg(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--churn must be a number >= 0 or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--churn must be >= 0, got {value}")
    return value


# ----------------------------------------------------------------------------- data


def synthetic_files(out: Path, args) -> tuple[list[str], list[str]]:
    """One training and one independent test trajectory per θ; files are reused when the
    generating settings (encoded in their names) are unchanged."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"train": [], "test": []}
    for k, (noise, r) in enumerate(SYNTHETIC_THETA):
        kw = dict(n=args.grid, noise_amp=noise, r=r, steps_per_record=args.steps_per_record)
        for split, n_records, seed in (("train", args.records, 100 + k), ("test", max(args.cases // 2, 8), 200 + k)):
            path = out / f"{split}_{k}_n{args.grid}_r{n_records}_s{args.steps_per_record}.nc"
            if not path.exists():
                write_turbulence(path, n_records=n_records, seed=seed, **kw)
            files[split].append(str(path))
    return files["train"], files["test"]


def split_files(args) -> tuple[list[str], list[str]]:
    if args.synthetic:
        return synthetic_files(Path(args.out) / "data", args)
    if args.test_data:
        return args.data, args.test_data
    if len(args.data) < 2:
        raise SystemExit("bench_surrogate: give --test-data or at least two --data files (the last is held out)")
    return args.data[:-1], args.data[-1:]


def check_disjoint(args, train_files: list[str], test_files: list[str]) -> None:
    """Validation files must be neither training nor test files (selection never sees the test set)."""
    real = lambda files: {str(Path(f).resolve()) for f in files}  # noqa: E731
    for name, files in (("--data", train_files), ("--test-data", test_files)):
        shared = real(args.val_data or []) & real(files)
        if shared:
            raise SystemExit(f"bench_surrogate: --val-data shares {sorted(shared)} with {name}")


def held_out_cases(test: PairDataset, n_cases: int, with_position: bool) -> Batch:
    rows = torch.linspace(0, len(test) - 1, min(n_cases, len(test))).round().long()
    batch = test.batch(rows)
    batch.pos = test.full_position() if with_position else None
    return batch


# ----------------------------------------------------------------------------- models


def train(objective: str, dataset: PairDataset, args) -> Trainer:
    cfg = SurrogateConfig(dataset.spec, objective=objective, lag=args.lag, model_channels=args.channels,
                          P_mean=args.P_mean, P_std=args.P_std, use_position=args.tile is not None,
                          spectral_whitening=args.whiten, whiten_state=args.whiten_state,
                          whiten_anisotropic=args.whiten_anisotropic,
                          channel_mult=tuple(int(m) for m in args.channel_mult.split(",")))
    # the warm-up and EMA its figures (models/README.md) were measured with: runs of ~1000 offline steps, four
    # times the in-situ defaults of TrainConfig
    train_cfg = TrainConfig(batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, tile=args.tile,
                            lr_warmup_steps=200, ema_halflife_steps=200.0, norm_warmup_steps=100)
    checkpoint = Path(args.out) / f"{objective}.pt"
    if args.reuse and checkpoint.exists():  # rescoring (e.g. other sampler settings) without retraining
        trainer = Trainer.load(checkpoint, device=args.device)
        theirs = trainer.model.config.to_dict(), asdict(trainer.config)
        if theirs != (Surrogate(cfg).config.to_dict(), asdict(train_cfg)):
            raise SystemExit(f"bench_surrogate --reuse: {checkpoint} was trained with other settings: {theirs}")
        log.info("reusing %s (step %d)", checkpoint, trainer.step)
    else:
        trainer = Trainer(Surrogate(cfg), train_cfg)
    trainer.fit(dataset, args.steps, checkpoint=checkpoint, checkpoint_every=args.steps, progress=not args.no_progress)
    return trainer


def predict(trainer: Trainer, cases: Batch, members: int, sampler: SamplerConfig, seed: int,
            chunk: int = 64) -> tuple[np.ndarray, float]:
    """(M, B, C, ny, nx) samples and the wall time per sample in ms."""
    gen = torch.Generator(trainer.device).manual_seed(seed)
    per = max(1, chunk // members)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    parts = [trainer.sample(part, members, sampler, gen) for part in cases.split(per)]
    sync()
    elapsed = time.perf_counter() - t0
    out = torch.cat(parts).transpose(0, 1).cpu().numpy()
    return out, 1000 * elapsed / (len(cases) * (1 if trainer.model.config.objective == "mse" else members))


def score(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, channels, dx: float) -> dict:
    per = {c: M.summarize(pred[:, :, i], truth[:, i], mask, dx, dx) for i, c in enumerate(channels)}
    keys = set.intersection(*(set(s) for s in per.values()))
    # RMSE and CRPS are divided by each channel's truth std so that channels in different units average
    std = {c: float(truth[:, i][:, mask > 0].std()) for i, c in enumerate(channels)}
    mean = {k: float(np.mean([s[k] / (std[c] if k in ("rmse", "crps", "spread", "skill") else 1)
                              for c, s in per.items()])) for k in keys}
    return {"channels": per, "mean": mean}


def timing(trainer: Trainer, dataset: PairDataset, cases: Batch, device: str, sampler: SamplerConfig,
           members: int) -> dict:
    """Training samples/s and ms per sample of a copy of the trained model on ``device``."""
    clone = Trainer(copy.deepcopy(trainer.model).cpu(), replace(trainer.config, device=device))
    clone.ema.load_state_dict(trainer.ema.state_dict())
    dataset.to(clone.device)
    sync = torch.cuda.synchronize if clone.device.type == "cuda" else (lambda: None)
    batches = [dataset.random_batch(clone.config.batch_size, clone.data_gen, clone.config.tile) for _ in range(6)]
    clone.train_step(batches[0])  # warm-up (allocations, autotuning)
    sync()
    t0 = time.perf_counter()
    for b in batches[1:]:
        clone.train_step(b)
    sync()
    train_sps = 5 * clone.config.batch_size / (time.perf_counter() - t0)
    small = cases.split(4)[0].to(clone.device)
    _, ms = predict(clone, small, members, sampler, seed=1)
    dataset.to(trainer.device)
    return {"train_samples_per_s": train_sps, "ms_per_sample": ms}


def main_sampler(args) -> SamplerConfig:
    """The sampler of a fixed --churn (and --churn-window)."""
    s_min, s_max = args.churn_window
    return SamplerConfig(num_steps=args.num_steps, sigma_min=args.sigma_min, S_churn=args.churn, S_min=s_min, S_max=s_max)


def choose_sampler(diff: Trainer, val: PairDataset, args, hk: str) -> tuple[SamplerConfig, dict]:
    """--churn auto: every setting of the declared grid on the validation cases (same cases and
    seed for each), then models/sampler_select.py's rule. The test set is not touched."""
    cases = held_out_cases(val.to(diff.device), args.val_cases, args.tile is not None)
    truth, mask = cases.target.cpu().numpy(), val.members[0].mask
    channels, dx = val.spec.channels, float(np.diff(val.members[0].x[:2])[0])
    grid, scores = churn_grid(), {}
    for name, setting in grid.items():
        pred, _ = predict(diff, cases, args.members, setting.sampler(args.num_steps, args.sigma_min), args.seed + 11)
        scores[name] = score(pred, truth, mask, channels, dx)
        log.info("validation %s: spread/skill %.3f, high-k %.3f, CRPS/std %.3f", name,
                 scores[name]["mean"]["spread_skill"], scores[name]["mean"][hk], scores[name]["mean"]["crps"])
    choice = select({n: s["mean"] for n, s in scores.items()}, TARGETS["high_k_ratio"], hk)
    if not choice.high_k_in_range:
        log.warning("no grid setting has its validation high-k ratio in %s: took the nearest, %s",
                    TARGETS["high_k_ratio"], choice.name)
    return grid[choice.name].sampler(args.num_steps, args.sigma_min), {
        "files": list(args.val_data), "cases": len(cases), "grid": {n: asdict(g) for n, g in grid.items()},
        "scores": scores, "choice": asdict(choice)}


# ----------------------------------------------------------------------------- report


def selection_table(sel: dict, hk: str) -> str:
    """The validation scores of the grid and the choice."""
    rows = [("validation", "S_churn", "sigma window", "spread/skill", "high-k", "CRPS/std", "")]
    for name, g in sel["grid"].items():
        m = sel["scores"][name]["mean"]
        rows.append((name, f"{g['S_churn']:g}", f"[{g['S_min']:g}, {g['S_max']:g}]", f"{m['spread_skill']:.3f}",
                     f"{m[hk]:.3f}", f"{m['crps']:.3f}", "<- chosen" if name == sel["choice"]["name"] else ""))
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = (f"rule: validation high-k in {list(TARGETS['high_k_ratio'])}, then spread/skill closest to 1 "
            f"(|log|); {sel['cases']} cases of {', '.join(sel['files'])}")
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, width)) for r in rows) + "\n" + rule


def reference_sampler(fast: SamplerConfig, ref_steps: int) -> SamplerConfig:
    """The reference discretizes the same process finer: same window, sigma range and total
    churn (EDM's gamma_i = S_churn / N keeps the sum of gamma over the window independent of N;
    where the fast sampler's gamma is capped, the reference gets the capped total)."""
    return replace(fast, num_steps=ref_steps, S_churn=effective_churn(fast, ref_steps))


def reference_match(fast: dict, ref: dict, hk: str) -> dict:
    """Per score of MATCH: both values, |difference| (relative for CRPS) and whether it is within tolerance."""
    out = {}
    for name, (kind, tol) in MATCH.items():
        key = hk if name == "high_k" else name
        diff = abs(fast[key] - ref[key]) / (abs(ref[key]) if kind == "relative" else 1.0)
        out[name] = {"fast": fast[key], "reference": ref[key], "difference": diff, "kind": kind, "tolerance": tol,
                     "ok": bool(diff <= tol)}
    return out


def nfe_study(diff: Trainer, cases: Batch, sampler: SamplerConfig, args, mask, channels, dx, hk: str) -> dict:
    """The main sampler and the reference on the same --ref-cases cases (spread over the scored
    ones) and latents, with as many members: scores, their match, and the sample distance."""
    sub = cases.select(torch.linspace(0, len(cases) - 1, min(args.ref_cases, len(cases))).round().long())
    truth = sub.target.cpu().numpy()
    ref_cfg = reference_sampler(sampler, args.ref_steps)
    fast, _ = predict(diff, sub, args.members, sampler, seed=args.seed + 7)
    ref, ms_ref = predict(diff, sub, args.members, ref_cfg, seed=args.seed + 7)
    spread = np.sqrt(np.mean(np.var(ref, axis=0, ddof=1)[:, :, mask > 0]))
    f, r = score(fast, truth, mask, channels, dx), score(ref, truth, mask, channels, dx)
    return {"nfe": sampler.nfe, "nfe_reference": ref_cfg.nfe, "ms_per_sample_reference": ms_ref, "cases": len(sub),
            "reference_sampler": asdict(ref_cfg), "fast": f["mean"], "reference": r["mean"],
            "fast_channels": f["channels"], "reference_channels": r["channels"],
            "match": reference_match(f["mean"], r["mean"], hk),
            "sample_distance_over_spread": float(np.sqrt(np.mean((fast - ref)[:, :, :, mask > 0] ** 2)) / spread)}


@torch.no_grad()
def denoise_study(diff: Trainer, cases: Batch, mask, channels) -> dict:
    """Where excess small scales come from: one denoiser call on truth + noise, the noise as
    the sampler adds it (white, or colored when whitened), at a few sigma. Per channel, the
    high-k band energy of the residual error and of the noise over the truth's (physical
    units). Below the sigma where the error reaches the truth's level, the ODE no longer
    removes noise (D ~ x), so that error stays in the samples."""
    model, sub = diff.ema.eval(), cases.split(4)[0].to(diff.device)
    y, cond = model.encode_target(sub), model.condition(sub)
    net = model.denoiser() if diff.config.tile is None else TiledDenoiser(model.denoiser(), diff.config.tile)
    noise = torch.randn(y.shape, generator=torch.Generator(diff.device).manual_seed(3), device=diff.device)
    if model.whitener is not None:
        y, noise = y.double(), model.whitener.color(noise.double(), model.target_norm.var)
    std = model.target_norm.std.cpu().numpy().reshape(1, -1, 1, 1)
    truth = sub.target.cpu().numpy()
    res = {}
    for sigma in DENOISE_SIGMAS:
        err = (net(y + sigma * noise, sigma, cond) - y).float().cpu().numpy() * std
        n_phys = sigma * noise.float().cpu().numpy() * std
        res[f"{sigma:g}"] = {c: {"error": M.high_k_ratio(err[:, i], truth[:, i], 1, 1, mask),
                                 "noise": M.high_k_ratio(n_phys[:, i], truth[:, i], 1, 1, mask)}
                             for i, c in enumerate(channels)}
    return res


def figures(out: Path, truth, diff, mse, mask, channels, dx, method: str) -> list[str]:
    paths = []
    k_nyq = 0.5 / dx
    for i, c in enumerate(channels):
        panels = [("truth", truth[0, i]), ("diffusion #1", diff[0, 0, i]), ("diffusion #2", diff[1, 0, i]),
                  ("diffusion mean", diff[:, 0, i].mean(0)), ("MSE", mse[0, 0, i])]
        paths.append(plot_fields(out / f"fields_{c}.png", panels, mask, title=f"{c}: one held-out case"))
        k, e_true = M.power_spectrum(truth[:, i], dx, dx, mask, method)
        curves = {"truth": (k, e_true), "diffusion": M.power_spectrum(diff[:, :, i], dx, dx, mask, method),
                  "MSE": M.power_spectrum(mse[0, :, i], dx, dx, mask, method)}
        paths.append(plot_spectra(out / f"spectra_{c}.png", curves, title=f"{c} ({method.upper()} spectrum)",
                                  k_nyq=k_nyq))
        paths.append(plot_rank_histogram(out / f"rank_histogram_{c}.png", M.rank_histogram(diff[:, :, i], truth[:, i], mask),
                                         title=f"diffusion, {c}"))
    return [str(p) for p in paths]


def table(res: dict) -> str:
    rows = [("", "diffusion", "MSE", "target")]
    d, m = res["diffusion"]["mean"], res["mse"]["mean"]
    rows += [("RMSE / std", f"{d['rmse']:.3f}", f"{m['rmse']:.3f}", "lower"),
             ("CRPS / std", f"{d['crps']:.3f}", f"{m['crps']:.3f}", "lower"),
             ("spread/skill", f"{d['spread_skill']:.3f}", "0 (deterministic)", "[0.8, 1.2]")]
    for key, name in (("high_k_ratio_dct", "DCT"), ("high_k_ratio", "FFT, periodic")):
        headline = (key == "high_k_ratio_dct") == (res["spectrum"] == "dct")
        rows.append((f"high-k energy ratio ({name})", f"{d[key]:.3f}", f"{m[key]:.3f}",
                     "[0.8, 1.25]; MSE lower" if headline else "(reported)"))
        for c, s in res["diffusion"]["channels"].items():
            rows.append((f"  high-k {c} ({name})", f"{s[key]:.3f}", f"{res['mse']['channels'][c][key]:.3f}", ""))
    for c, s in res["diffusion"]["channels"].items():
        rows.append((f"  spread/skill {c} (high-k band, DCT)", f"{s['spread_skill']:.3f} ({s['spread_skill_high_k_dct']:.3f})",
                     "", ""))
    n = res["nfe"]
    rows.append(("NFE per sample", str(n["nfe"]), "1", "<= 35"))
    rows.append((f"{n['nfe_reference']}-NFE reference, {n['cases']} cases", f"ref. ({n['nfe']} NFE)", "",
                 "match: |difference|"))
    for name, mt in n["match"].items():
        tol = f"{100 * mt['tolerance']:g} % rel." if mt["kind"] == "relative" else f"{mt['tolerance']:g}"
        rows.append((f"  {name}", f"{mt['reference']:.3f} ({mt['fast']:.3f})", "",
                     f"{mt['difference']:.3f} <= {tol}: {'ok' if mt['ok'] else 'no'}"))
    rows.append((f"  |x{n['nfe']} - xref| / spread", f"{n['sample_distance_over_spread']:.3f}", "",
                 "small" if not n["reference_sampler"]["S_churn"] else "(churn: other noise paths, compare scores)"))
    for sigma, per in res.get("denoise", {}).items():
        rows.append((f"  denoised high-k err/true, sigma={sigma}",
                     " ".join(f"{c}:{v['error']:.2g}" for c, v in per.items()), "", "< 1 (noise removed)"))
    for dev, t in res["timing"].items():
        if dev == "during_fit":
            rows.append(("train samples/s (whole fit)", f"{t['diffusion']['train_samples_per_s']:.1f}",
                         f"{t['mse']['train_samples_per_s']:.1f}", t["diffusion"]["device"]))
            continue
        rows += [(f"train samples/s ({dev})", f"{t['diffusion']['train_samples_per_s']:.1f}",
                  f"{t['mse']['train_samples_per_s']:.1f}", ""),
                 (f"ms/sample ({dev})", f"{t['diffusion']['ms_per_sample']:.1f}", f"{t['mse']['ms_per_sample']:.2f}", "")]
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    m = res["config"]["members"]
    note = (f"(RMSE of a {m}-member mean: even a perfect ensemble sits sqrt(1 + 1/{m}) = {np.sqrt(1 + 1 / m):.3f} "
            "times above the best deterministic RMSE; CRPS is the proper score)")
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, width)) for r in rows) + "\n" + note


def verdict(res: dict) -> dict:
    d, m = res["diffusion"]["mean"], res["mse"]["mean"]
    hk = HIGH_K[res["spectrum"]]
    lo, hi = TARGETS["high_k_ratio"]
    s_lo, s_hi = TARGETS["spread_skill"]
    return {"diffusion_high_k_in_range": lo <= d[hk] <= hi,
            "mse_high_k_visibly_lower": m[hk] < min(lo, d[hk] - 0.1),
            "spread_skill_in_range": s_lo <= d["spread_skill"] <= s_hi,
            "nfe_at_most_35": res["nfe"]["nfe"] <= TARGETS["nfe"],
            "nfe_matches_reference": all(mt["ok"] for mt in res["nfe"]["match"].values()),
            "diffusion_crps_below_mse": d["crps"] < m["crps"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    t_start = time.perf_counter()
    train_files, test_files = split_files(args)
    check_disjoint(args, train_files, test_files)
    dataset = PairDataset(train_files, args.variables, lag=args.lag, skip=args.skip)
    test = PairDataset(test_files, args.variables, lag=args.lag, skip=args.skip)
    log.info("train: %d pairs from %d files; test: %d pairs; %s", len(dataset), len(train_files), len(test),
             dataset.spec.describe())
    models = {obj: train(obj, dataset, args) for obj in ("diffusion", "mse")}
    spectrum = args.spectrum if args.spectrum != "auto" else ("fft" if args.synthetic else "dct")
    if args.churn == "auto":  # chosen on the validation set before the test set is sampled
        val = PairDataset(args.val_data, args.variables, lag=args.lag, skip=args.skip)
        sampler, selection = choose_sampler(models["diffusion"], val, args, HIGH_K[spectrum])
        print(selection_table(selection, HIGH_K[spectrum]), flush=True)
    else:
        sampler, selection = main_sampler(args), None
    cases = held_out_cases(test.to(models["diffusion"].device), args.cases, args.tile is not None)
    truth, mask = cases.target.cpu().numpy(), test.members[0].mask
    channels, dx = dataset.spec.channels, float(np.diff(test.members[0].x[:2])[0])
    preds = {obj: predict(tr, cases, args.members, sampler, args.seed + 1)[0] for obj, tr in models.items()}
    res = {obj: score(p, truth, mask, channels, dx) for obj, p in preds.items()}
    res["spectrum"], res["sampler"], res["selection"] = spectrum, asdict(sampler), selection
    res["nfe"] = nfe_study(models["diffusion"], cases, sampler, args, mask, channels, dx, HIGH_K[spectrum])
    res["denoise"] = denoise_study(models["diffusion"], cases, mask, channels)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    res["timing"] = {dev: {obj: timing(tr, dataset, cases, dev, sampler, args.members) for obj, tr in models.items()}
                     for dev in devices}
    res["timing"]["during_fit"] = {obj: {"train_samples_per_s": tr.throughput, "device": str(tr.device)}
                                   for obj, tr in models.items()}
    res["figures"] = figures(out, truth, preds["diffusion"], preds["mse"][:1], mask, channels, dx, res["spectrum"])
    res["verdict"] = verdict(res)
    res["config"] = {k: v for k, v in vars(args).items()}
    res["data"] = {"train": train_files, "test": test_files, "rejected": dataset.rejected + test.rejected,
                   "synthetic_stand_in": bool(args.synthetic)}
    res["wall_s"] = time.perf_counter() - t_start
    targets = ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in res["verdict"].items())
    report = ((selection_table(selection, HIGH_K[spectrum]) + "\n\n" if selection else "")
              + f"sampler: {sampler}\n\n{table(res)}\ntargets: {targets}")
    print(report)
    (out / "table.txt").write_text(f"python {' '.join(sys.argv)}\n\n{report}\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
