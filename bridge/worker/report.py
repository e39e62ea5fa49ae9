"""Scores and figures of an emulation run (``emulated.nc``): the diffusion samples the
worker sent, an MSE baseline from the same starts, persistence, and the ocean's own
steps as truth.  Used by ``oceanbridge demo``; no MPI here.
"""
from __future__ import annotations

import logging
from pathlib import Path

import netCDF4
import numpy as np

from models import metrics
from models.plots import plot_fields, plot_series, plot_spectra

log = logging.getLogger(__name__)
# Spectra of closed basins (the gyre, NEMO GYRE): the FFT would wrap the walls around into jumps, the DCT does
# not (models/metrics.py, power_spectrum; the surrogate benchmark scores the gyre the same way)
SPECTRUM = "dct"


STEP_ARRAYS = ("emulated", "ocean", "start", "mean", "spread", "crps")  # (K, T, C, ny, nx) arrays of emulated.nc


def read_emulation(path: Path, channels) -> dict:
    """{suffix: (K, T, C, ny, nx)} plus 'steps', 'mask', 'members', 'dx', 'dy'."""
    out: dict = {}
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        for suffix in STEP_ARRAYS:
            if f"{channels[0]}_{suffix}" in ds.variables:
                out[suffix] = np.stack([ds[f"{c}_{suffix}"][:] for c in channels], axis=2).astype(np.float64)
        out["steps"] = ds["step"][:]
        out["mask"] = ds["mask"][:].astype(bool)
        out["members"] = ds.getncattr("members").split()
        x, y = ds["x"][:], ds["y"][:]
        out["dx"] = float(x[1] - x[0]) if len(x) > 1 else 1.0
        out["dy"] = float(y[1] - y[0]) if len(y) > 1 else 1.0
    return out


SCORE_LABELS = {  # the keys of a ``scores`` row, in the order a report shows them
    "crps_diffusion": "CRPS diffusion", "crps_mse": "CRPS MSE baseline",
    "rmse_diffusion": "RMSE diffusion (one sample)", "rmse_mse": "RMSE MSE baseline",
    "rmse_persistence": "RMSE persistence",
    "highk_diffusion": "high-k ratio diffusion", "highk_mse": "high-k ratio MSE baseline",
    "spread_skill": "spread/skill diffusion",
}

CAPTIONS = {  # what to look at in each figure of ``figures``, by the last word of its file name
    "change": "{var}, one coupling period's change: the diffusion sample should carry the truth's small "
              "features; the MSE baseline shows what a conditional mean smooths away.",
    "state": "{var}, the state after the step: the diffusion sample should be hard to tell from the ocean's.",
    "spread": "{var}, where the diffusion samples disagree (their error bar), next to the spread over the "
              "ocean members (the parameters' effect).",
    "spectra": "{var}, spectra of the step's change: in the shaded high-k band the diffusion curve should "
               "follow the truth, and a curve below it is small-scale energy lost (the high-k ratio).",
    "days": "Every variable's spread/skill and high-k ratio on each emulated day (dashed: 1, the truth): in "
            "the closed loop each day starts from the state the emulator sent the day before, so a decay "
            "shows the ocean answering emulated states in a way the surrogate did not learn.",
}


def caption(png: Path) -> str:
    """The line a report prints under a figure written by ``figures``."""
    var, kind = png.stem.rsplit("_", 1)
    return CAPTIONS[kind].format(var=var)


def rmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((a - b) ** 2)[..., mask])))


def mae(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error over the ocean points: the CRPS of a deterministic forecast."""
    return float(np.mean(np.abs(a - b)[..., mask]))


def scores(em: dict, mse_pred: np.ndarray | None, channels, n_samples: int) -> dict:
    """Per channel: RMSE of the diffusion sample, of the MSE baseline and of persistence against
    the ocean's step; CRPS of the diffusion samples (the fair CRPS the worker wrote, over the ocean
    points) and of the MSE baseline (its MAE: the CRPS of a deterministic forecast); spread/skill
    of the samples; high-wavenumber energy ratios."""
    mask, dx, dy = em["mask"], em["dx"], em["dy"]
    table = {}
    for c, name in enumerate(channels):
        truth, sample, start = em["ocean"][:, :, c], em["emulated"][:, :, c], em["start"][:, :, c]
        row = {"rmse_diffusion": rmse(sample, truth, mask), "rmse_persistence": rmse(start, truth, mask),
               "highk_diffusion": metrics.high_k_ratio(sample - start, truth - start, dx, dy, mask, SPECTRUM)}
        if "crps" in em:
            row["crps_diffusion"] = float(np.mean(em["crps"][:, :, c][..., mask]))
        if mse_pred is not None:
            row["rmse_mse"] = rmse(mse_pred[:, :, c], truth, mask)
            row["crps_mse"] = mae(mse_pred[:, :, c], truth, mask)
            row["highk_mse"] = metrics.high_k_ratio(mse_pred[:, :, c] - start, truth - start, dx, dy, mask, SPECTRUM)
        if "spread" in em and n_samples > 1:
            spread = np.sqrt(np.mean((em["spread"][:, :, c] ** 2)[..., mask]) * n_samples / (n_samples - 1))
            skill = rmse(em["mean"][:, :, c], truth, mask)
            row["spread_skill"] = float(np.sqrt((n_samples + 1) / n_samples) * spread / max(skill, 1e-30))
        table[name] = row
    return table


def daily_scores(em: dict, channels, n_samples: int) -> dict:
    """{channel: {score: [value on each emulator step]}} of the diffusion samples (``scores`` of one step at a
    time): the emulation phase is a closed loop, and these show how the scores move as it goes on."""
    days = [scores({k: v[:, t:t + 1] if k in STEP_ARRAYS else v for k, v in em.items()}, None, channels, n_samples)
            for t in range(em["emulated"].shape[1])]
    keys = [k for k in ("spread_skill", "highk_diffusion") if k in days[0][channels[0]]]
    return {c: {k: [day[c][k] for day in days] for k in keys} for c in channels}


def plot_days(path: Path, em: dict, channels, n_samples: int) -> Path:
    daily = daily_scores(em, channels, n_samples)
    days = np.arange(1, em["emulated"].shape[1] + 1)
    panels = {SCORE_LABELS[k]: {c: np.asarray(daily[c][k]) for c in channels} for k in daily[channels[0]]}
    return plot_series(path, days, panels, "emulated day", "scores of the diffusion samples, day by day", 1.0)


def figures(em: dict, mse_pred: np.ndarray | None, channels, out: Path, ensemble_std: np.ndarray | None,
            n_samples: int = 1) -> list[Path]:
    """Maps (truth, diffusion sample, MSE baseline, spread) of the last step of member 1, and the
    spectra of the one-step change (truth, diffusion, MSE) of every channel."""
    out.mkdir(parents=True, exist_ok=True)
    mask, dx, dy, written = em["mask"], em["dx"], em["dy"], []
    kt = int(em["steps"][-1])
    for c, name in enumerate(channels):
        start = em["start"][0, -1, c]
        panels = [("ocean's own step (truth)", em["ocean"][0, -1, c] - start),
                  ("diffusion sample", em["emulated"][0, -1, c] - start)]
        if mse_pred is not None:
            panels.append(("MSE baseline", mse_pred[0, -1, c] - start))
        written.append(plot_fields(out / f"{name}_change.png", panels, mask, symmetric=True,
                                   title=f"{name}: change over one coupling period, member 1, step {kt}"))
        state = [("ocean (truth)", em["ocean"][0, -1, c]), ("diffusion sample", em["emulated"][0, -1, c])]
        written.append(plot_fields(out / f"{name}_state.png", state, mask, cmap="viridis",
                                   title=f"{name} at step {kt}, member 1"))
        if "spread" in em:
            spread = [("diffusion spread", em["spread"][0, -1, c])]
            if ensemble_std is not None:
                spread.append(("spread over the ocean members", ensemble_std[c]))
            written.append(plot_fields(out / f"{name}_spread.png", spread, mask, cmap="magma",
                                       title=f"{name}: standard deviations at step {kt}"))
        start_all = em["start"][:, :, c]
        curves = {"truth": metrics.power_spectrum(em["ocean"][:, :, c] - start_all, dx, dy, mask, SPECTRUM),
                  "diffusion": metrics.power_spectrum(em["emulated"][:, :, c] - start_all, dx, dy, mask, SPECTRUM)}
        if mse_pred is not None:
            curves["MSE baseline"] = metrics.power_spectrum(mse_pred[:, :, c] - start_all, dx, dy, mask, SPECTRUM)
        written.append(plot_spectra(out / f"{name}_spectra.png", curves, k_nyq=0.5 / dx,
                                    title=f"{name}: spectrum of the one-step change"))
    written.append(plot_days(out / "emulation_days.png", em, channels, n_samples))
    return written
