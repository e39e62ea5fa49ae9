"""The demo's report: scores of the emulation phase, their comparisons and targets, netCDF and PNG
files, the summary table."""
from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np

from bridge.worker.demo_baseline import predict
from bridge.worker.demo_targets import evaluate, verdicts
from bridge.worker.report import caption, figures, read_emulation, scores
from bridge.worker.settings import worker_settings
from bridge.worker.tunnel import channel_names
from models.ncio import write_fields


def report(cfg, baseline, out: Path, train: dict, emu: dict, timings: dict) -> dict:
    s = worker_settings(cfg)
    channels = channel_names(cfg)
    run_dir = cfg.run.run_dir
    for name in (s.emulate.output, s.ensemble.output):
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, out / name)
    em = read_emulation(run_dir / s.emulate.output, channels)
    mse = predict(baseline, em["start"], em["mask"])
    ny, nx = em["mask"].shape
    write_fields(out / "mse_baseline.nc", {c: mse[0, :, i] for i, c in enumerate(channels)}, em["mask"].astype("i1"),
                 (np.arange(nx) + 0.5) * em["dx"], (np.arange(ny) + 0.5) * em["dy"], em["steps"] * cfg.run.dt,
                 attrs={"title": "oceanbridge demo: MSE baseline predictions of member 1 from the emulator's starts"})
    ens_std = _last_ensemble_std(out / s.ensemble.output, channels)
    pngs = figures(em, mse, channels, out / "figures", ens_std, s.emulate.samples)
    table = scores(em, mse, channels, s.emulate.samples)
    ocean_days = cfg.run.dt / 86400
    return {
        "setup": {"grid": f"{cfg.ocean.nx}x{cfg.ocean.ny}", "members": cfg.ocean.members,
                  "ocean ranks per member": cfg.ocean.ranks, "worker ranks": cfg.worker.ranks,
                  "coupling period (days)": cfg.fields[0].freq * ocean_days},
        "online training": {
            "states received": train["counters"]["received"], "NaN states rejected": train["counters"]["rejected"],
            "pairs offered to the buffer": train["counters"]["pairs"], "buffer": train["buffer"],
            "optimizer steps": train["train_steps"],
            "optimizer steps while coupled": train["coupled"].get("train_steps"),
            "loss (first 20%)": train["loss_first"],
            "loss (last 20%)": train["loss_last"],
            "worker time training while coupled": train["coupled"]["train_fraction"],
            "worker time training, whole run": train["train_fraction"]},
        "emulation": {"emulated states sent": emu["counters"]["emulated"],
                      "optimizer steps (online, continued)": emu["train_steps"],
                      "worker time sampling + training": emu["busy_fraction"]},
        **{f"scores {c}": row for c, row in table.items()},
        "what beat what": verdicts(table),
        "targets": evaluate(table),
        "files": {"netCDF": sorted(p.name for p in out.glob("*.nc")), "figures": len(pngs)},
        "figures": [{"file": p.relative_to(out).as_posix(), "caption": caption(p)} for p in pngs],
    }


def _last_ensemble_std(path: Path, channels) -> np.ndarray | None:
    if not path.is_file():
        return None
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return np.stack([ds[f"{c}_std"][-1] for c in channels])
