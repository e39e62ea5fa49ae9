"""Score a samples file (``oceanbridge sample``) against the data file it came from.

Per channel: ensemble-mean RMSE, fair CRPS, spread/skill, rank histogram, radially
averaged spectra and their upper-half ratio; per file: physical diagnostics (kinetic
energy, volume, heat content) of members against truth. Results go to a CF netCDF
file, a JSON file and PNG figures.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from . import metrics as M
from .data import base_variables, read_member
from .ncio import atomic_write, cf_attrs
from .plots import plot_fields, plot_rank_histogram, plot_spectra

__all__ = ["SampleFile", "read_samples", "evaluate", "write_evaluation"]

log = logging.getLogger(__name__)
CHANNEL_ATTR = "oceanbridge_channel"  # marks sample variables and names their channel


@dataclass
class SampleFile:
    members: dict[str, np.ndarray]  # channel -> (M, T, ny, nx), land NaN
    target_record: np.ndarray  # (T,) index of the true record in the data file, -1 if none
    mask: np.ndarray
    dx: float
    dy: float
    attrs: dict


def read_samples(path: str | Path) -> SampleFile:
    with netCDF4.Dataset(path) as ds:
        members = {v.getncattr(CHANNEL_ATTR): np.ma.filled(v[:].astype(float), np.nan)
                   for v in ds.variables.values() if CHANNEL_ATTR in v.ncattrs() and v.dimensions[0] == "member"}
        if not members:
            raise ValueError(f"{path} holds no sample variables (is it an 'oceanbridge sample' output?)")
        x, y = np.asarray(ds["x"][:]), np.asarray(ds["y"][:])
        return SampleFile(members, np.asarray(ds["target_record"][:]), np.asarray(ds["mask"][:]),
                          float(x[1] - x[0]) if len(x) > 1 else 1.0, float(y[1] - y[0]) if len(y) > 1 else 1.0,
                          {k: ds.getncattr(k) for k in ds.ncattrs()})


def _truth(data_file: str, samples: SampleFile) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """True fields matching the samples; for generated states (no target record), the
    file's records serve as a climatological reference."""
    member = read_member(data_file, base_variables(samples.members))
    missing = set(samples.members) - set(member.channels)
    if missing or member.mask.shape != samples.mask.shape:
        raise ValueError(f"samples have channels {list(samples.members)} on {samples.mask.shape[0]}x"
                         f"{samples.mask.shape[1]}, data file {data_file} has {list(member.channels)} on "
                         f"{member.mask.shape[0]}x{member.mask.shape[1]}")
    paired = bool(np.all(samples.target_record >= 0))
    records = samples.target_record if paired else slice(None)
    truth = {c: member.fields[records, member.channels.index(c)] for c in samples.members}
    return truth, member.mask


def evaluate(data_file: str, samples: SampleFile) -> dict:
    """All scores as a nested dict of plain floats/lists (JSON-ready)."""
    truth, mask = _truth(data_file, samples)
    paired = bool(np.all(samples.target_record >= 0))
    out = {"paired": paired, "members": int(next(iter(samples.members.values())).shape[0]), "channels": {}}
    for c, ens in samples.members.items():
        ens = np.nan_to_num(ens)
        if paired:
            scores = M.summarize(ens, truth[c], mask, samples.dx, samples.dy)
            scores["rank_histogram"] = M.rank_histogram(ens, truth[c], mask).tolist() if ens.shape[0] > 1 else []
        else:  # generation: distributions only (no pointwise truth)
            scores = {"high_k_ratio": M.high_k_ratio(ens, truth[c], samples.dx, samples.dy, mask),
                      "mean_bias": float(np.mean(ens[:, :, mask > 0]) - np.mean(truth[c][:, mask > 0])),
                      "std_ratio": float(np.std(ens[:, :, mask > 0]) / max(np.std(truth[c][:, mask > 0]), 1e-300))}
        k, e_pred = M.power_spectrum(ens, samples.dx, samples.dy, mask)
        _, e_true = M.power_spectrum(truth[c], samples.dx, samples.dy, mask)
        scores["spectrum"] = {"k": k.tolist(), "pred": e_pred.tolist(), "true": e_true.tolist()}
        out["channels"][c] = scores
    out["physics"] = _physics(samples, truth, mask)
    return out


def _physics(samples: SampleFile, truth: dict, mask: np.ndarray) -> dict:
    """Domain integrals of members vs truth (time-mean over the evaluated records)."""
    area, ens = samples.dx * samples.dy, {c: np.nan_to_num(a) for c, a in samples.members.items()}
    out = {}
    if "u" in ens and "v" in ens:
        ke_pred = M.kinetic_energy(ens["u"], ens["v"], mask, area).mean()
        out["kinetic_energy_ratio"] = float(ke_pred / max(M.kinetic_energy(truth["u"], truth["v"], mask, area).mean(), 1e-300))
    if "ssh" in ens:
        out["volume_anomaly_error_m3"] = float(M.volume_anomaly(ens["ssh"], mask, area).mean()
                                               - M.volume_anomaly(truth["ssh"], mask, area).mean())
    for name in ("temp", "sst"):
        if name in ens:
            out["heat_content_error_J_per_m"] = float(M.heat_content(ens[name], mask, area).mean()
                                                      - M.heat_content(truth[name], mask, area).mean())
    return out


def write_evaluation(results: dict, samples: SampleFile, out_dir: str | Path, source: dict) -> list[Path]:
    """evaluation.nc (CF), evaluation.json and PNG figures in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_write_nc(results, out_dir / "evaluation.nc", source)]
    written.append(atomic_write(out_dir / "evaluation.json",
                                lambda tmp: Path(tmp).write_text(json.dumps(results, indent=1))))
    for c, scores in results["channels"].items():
        s = scores["spectrum"]
        k = np.asarray(s["k"])
        written.append(plot_spectra(out_dir / f"spectrum_{_safe(c)}.png",
                                    {"true": (k, np.asarray(s["true"])), "samples": (k, np.asarray(s["pred"]))},
                                    title=f"{c}: high-k ratio {scores['high_k_ratio']:.2f}",
                                    k_nyq=0.5 / max(samples.dx, samples.dy)))
        if scores.get("rank_histogram"):
            written.append(plot_rank_histogram(out_dir / f"rank_histogram_{_safe(c)}.png",
                                               np.asarray(scores["rank_histogram"]), title=c))
        ens = samples.members[c]
        panels = [(f"member {i}", ens[i, 0]) for i in range(min(3, ens.shape[0]))]
        written.append(plot_fields(out_dir / f"samples_{_safe(c)}.png", panels, samples.mask, title=c))
    return written


def _safe(name: str) -> str:
    return name.replace("@", "_z")


def _write_nc(results: dict, path: Path, source: dict) -> Path:
    def write(tmp: str) -> None:
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.setncatts({"Conventions": "CF-1.8", "title": "oceanbridge surrogate evaluation",
                          **{k: str(v) for k, v in source.items()}})
            for c, scores in results["channels"].items():
                units = cf_attrs(c).get("units", "1")
                name = _safe(c)
                for key, value in scores.items():
                    if isinstance(value, float):
                        var = ds.createVariable(f"{key}_{name}", "f8", ())
                        var.setncatts({"long_name": f"{key.replace('_', ' ')} of {c}",
                                       "units": units if key in ("rmse", "crps", "spread", "skill", "mean_bias")
                                       else "1"})
                        var.assignValue(value)
                spec = scores["spectrum"]
                dim = f"wavenumber_{name}"
                ds.createDimension(dim, len(spec["k"]))
                kv = ds.createVariable(dim, "f8", (dim,))
                kv.setncatts({"long_name": "radial wavenumber", "units": "m-1",
                              "comment": "cycles per metre (1 / wavelength)"})
                kv[:] = spec["k"]
                for which in ("true", "pred"):
                    e = ds.createVariable(f"spectrum_{name}_{which}", "f8", (dim,))
                    e.setncatts({"long_name": f"radially summed power spectrum of {c} ({which})",
                                 "units": f"({units})2"})
                    e[:] = spec[which]
                if scores.get("rank_histogram"):
                    ds.createDimension(f"rank_{name}", len(scores["rank_histogram"]))
                    r = ds.createVariable(f"rank_histogram_{name}", "i8", (f"rank_{name}",))
                    r.setncatts({"long_name": f"rank histogram of {c} truth among members", "units": "1"})
                    r[:] = scores["rank_histogram"]
            for key, value in results["physics"].items():
                var = ds.createVariable(key, "f8", ())
                var.setncatts({"long_name": key.replace("_", " "),
                               "units": "m3" if key.endswith("m3") else "J m-1" if "J" in key else "1"})
                var.assignValue(value)
    return atomic_write(path, write)
