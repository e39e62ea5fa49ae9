"""How chaotic is a gyre configuration: spin-up, then twin runs from the same state, one with a small ssh bump.

usage: python gyre/tools/twin.py WORKDIR [--set namphys.rn_ahm=20 ...] [--spinup-days 730] [--twin-days 180]
       [--eps 1e-4] [--restart FILE] [--json PATH]

1. spin-up: `--spinup-days` from rest (or from `--restart`, e.g. a spun-up state of a neighbouring configuration),
   daily diagnostics, a restart at the end;
2. twins: control and perturbed (`--eps` metres added to ssh at the basin's centre) for `--twin-days`, fields
   daily, the two runs side by side;
3. figures (printed as one table row, and with `--json` written as a dict):
   - `efold_days`: e-folding time of the rms ssh difference, a least-squares fit of log(diff) from its minimum
     (after the bump's gravity waves have left) to the first day it reaches a tenth of its saturated value
     (sqrt(2) x the rms ssh anomaly of the control run) or the end;
   - `ke_cv`: std/mean of the kinetic energy over the second half of the spin-up and the control run;
   - `noise`: the grid-noise measure, the fraction of the enstrophy (DCT spectrum of the relative vorticity,
     mean over the control's last 30 days) above 2/3 of the largest wavenumber;
   - `hmin` (m): the thinnest layer over the same window; `cfl`: the flow's largest CFL number (gyre's own);
   - `steps_per_s`: the spin-up's time loop (gyre's own timer; depends on the load of the machine).
Namelist values given with --set are parsed as Python literals (numbers, True/False, quoted strings).
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import gyrerun

log = logging.getLogger("gyre.twin")
DAY = 86400.0
HIGH_K = 2.0 / 3.0            # the "highest wavenumbers": above 2/3 of the grid's largest


def parse_sets(items: list[str]) -> dict[str, dict]:
    """['namphys.rn_ahm=20', ...] -> {'namphys': {'rn_ahm': 20}}; a malformed item raises naming it."""
    blocks: dict[str, dict] = {}
    for item in items:
        m = re.fullmatch(r"(\w+)\.([\w(),:]+)=(.+)", item)
        if not m:
            raise ValueError(f"--set {item!r}: expected BLOCK.VARIABLE=VALUE, e.g. namphys.rn_ahm=20")
        try:
            value = ast.literal_eval(m.group(3))
        except (ValueError, SyntaxError):
            value = m.group(3)
        blocks.setdefault(m.group(1), {})[m.group(2)] = value
    return blocks


def merged(base: dict[str, dict], extra: dict[str, dict]) -> dict[str, dict]:
    """base updated block by block with extra (new dicts, the inputs are left alone)."""
    out = {b: dict(v) for b, v in base.items()}
    for block, values in extra.items():
        out.setdefault(block, {}).update(values)
    return out


def steps_per_day(cfg: dict[str, dict]) -> int:
    """Time steps per day of a configuration (rn_dt from it, else from namelist_ref)."""
    dt = cfg.get("namrun", {}).get("rn_dt", reference("namrun", "rn_dt"))
    spd = DAY / float(dt)
    if abs(spd - round(spd)) > 1e-9:
        raise ValueError(f"&namrun rn_dt = {dt} s does not divide a day: the twin protocol needs daily outputs")
    return int(round(spd))


def reference(block: str, var: str) -> float:
    """A numeric default of namelist_ref."""
    text = gyrerun.NAMELIST_REF.read_text()
    sect = re.search(rf"&{block}\b(.*?)\n/", text, re.S)
    m = sect and re.search(rf"^\s*{var}\s*=\s*([-+.\deE]+)", sect.group(1), re.M)
    if not m:
        raise KeyError(f"namelist_ref: &{block} {var} not found")
    return float(m.group(1))


def run(rundir: Path, cfg: dict[str, dict], timeout: float) -> str:
    """One 1-rank gyre run; its standard output (a failed run raises with it)."""
    res = gyrerun.run_gyre(gyrerun.make_rundir(rundir, cfg), 1, timeout=timeout)
    if res.returncode != 0 or "gyre: normal end" not in res.stdout:
        raise RuntimeError(f"gyre failed in {rundir} (rc={res.returncode}):\n{res.output[-3000:]}")
    return res.stdout


def timing(stdout: str) -> tuple[float, float]:
    """(steps/s, largest CFL number) printed by gyre at its end."""
    sps = float(re.search(r"steps in [\d.]+ s = ([\d.]+) steps/s", stdout).group(1))
    cfl = float(re.search(r"largest CFL number of the flow:\s*([\d.]+)", stdout).group(1))
    return sps, cfl


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (n, n) (mirror-extended field: no periodic wrap of the closed basin)."""
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    d = np.cos(np.pi * (i + 0.5) * k / n) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def high_k_enstrophy(u: np.ndarray, v: np.ndarray) -> float:
    """Fraction of the enstrophy above HIGH_K of the largest wavenumber, for C-grid (nt, ny, nx) velocities."""
    zeta = (v[:, :-1, 1:] - v[:, :-1, :-1]) - (u[:, 1:, :-1] - u[:, :-1, :-1])     # dx = dy units: a ratio
    zeta = zeta - zeta.mean(axis=(-2, -1), keepdims=True)
    ny, nx = zeta.shape[-2:]
    power = ((dct_matrix(ny) @ zeta @ dct_matrix(nx).T) ** 2).mean(axis=0)
    kmag = np.hypot(*np.meshgrid(np.arange(nx) / nx, np.arange(ny) / ny, indexing="xy"))
    return float(power[kmag > HIGH_K].sum() / power.sum())


def efold_days(days: np.ndarray, diff: np.ndarray, saturated: float) -> float:
    """e-folding time (days) of diff(days): log-linear fit from its minimum to a tenth of saturation."""
    i0 = int(np.argmin(diff[: max(len(diff) // 2, 2)]))
    above = np.nonzero(diff[i0:] > 0.1 * saturated)[0]
    i1 = i0 + (int(above[0]) if len(above) else len(diff) - 1 - i0)
    if i1 - i0 < 3:
        return float("nan")
    slope = np.polyfit(days[i0:i1 + 1], np.log(diff[i0:i1 + 1]), 1)[0]
    return float(1.0 / slope) if slope > 0 else float("inf")


def twin(workdir: Path, sets: dict[str, dict], spinup_days: float, twin_days: float, eps: float,
         restart: Path | None = None, timeout: float = 3600) -> dict:
    """Run the protocol in workdir and return its figures (see the module docstring)."""
    workdir = Path(workdir)
    spd = steps_per_day(sets)
    nspin, ntwin = int(round(spinup_days * spd)), int(round(twin_days * spd))
    spin_cfg = merged(sets, {"namrun": {"nn_itend": nspin, "nn_diag": spd, "nn_write": 0, "nn_stock": 0}})
    if restart is not None:
        m = re.search(r"_(\d+)_restart", Path(restart).name)
        if not m:
            raise ValueError(f"--restart {restart}: expected a gyre restart named <exp>_<step>_restart.nc")
        kr = int(m.group(1))
        spin_cfg = merged(spin_cfg, {"namrun": {"ln_rstart": True, "cn_ocerst_in": "start", "nn_itend": kr + nspin}})
        (workdir / "spin").mkdir(parents=True, exist_ok=True)
        shutil.copy(restart, workdir / "spin" / "start.nc")
    log.info("spin-up: %d steps in %s", nspin, workdir / "spin")
    spin_out = run(workdir / "spin", spin_cfg, timeout)
    rst = sorted((workdir / "spin").glob("gyre_*_restart.nc"))[-1]
    kt0 = int(re.search(r"gyre_(\d+)_restart", rst.name).group(1))
    twin_cfg = merged(sets, {"namrun": {"ln_rstart": True, "cn_ocerst_in": "start", "nn_itend": kt0 + ntwin,
                                        "nn_write": spd, "nn_diag": spd, "nn_stock": 0}})
    for name in ("control", "perturbed"):
        (workdir / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(rst, workdir / name / "start.nc")
    _bump(workdir / "perturbed" / "start.nc", eps)
    log.info("twins: %d steps each from step %d", ntwin, kt0)
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda n: run(workdir / n, twin_cfg, timeout), ("control", "perturbed")))
    return _figures(workdir, spin_out, outs[0], spinup_days)


def _bump(path: Path, eps: float) -> None:
    """Add eps metres to ssh at the centre point of a restart."""
    import netCDF4
    with netCDF4.Dataset(path, "a") as ds:
        ny, nx = ds["ssh"].shape[-2:]
        ds["ssh"][..., ny // 2, nx // 2] = ds["ssh"][..., ny // 2, nx // 2] + eps


def _figures(workdir: Path, spin_out: str, control_out: str, spinup_days: float) -> dict:
    ctl, per = (gyrerun.read_fields(workdir / n / "gyre_fields.nc") for n in ("control", "perturbed"))
    ocean = ctl["mask"] > 0
    days = (ctl["time"] - ctl["time"][0]) / DAY
    diff = np.sqrt(np.mean((ctl["ssh"] - per["ssh"])[:, ocean] ** 2, axis=1))
    anom = ctl["ssh"][:, ocean] - ctl["ssh"][:, ocean].mean(axis=0)
    saturated = float(np.sqrt(2.0 * np.mean(anom ** 2)))
    sdiag, cdiag = (gyrerun.read_fields(workdir / n / "gyre_diag.nc") for n in ("spin", "control"))
    late = sdiag["time"] >= sdiag["time"][-1] - spinup_days / 2 * DAY
    ke = np.concatenate([sdiag["ke"][late], cdiag["ke"]])
    hmin = float(min(sdiag["hmin"][late].min(), cdiag["hmin"].min()))
    sps, cfl_spin = timing(spin_out)
    cfl = max(cfl_spin, timing(control_out)[1])
    return {"efold_days": efold_days(days, np.maximum(diff, 1e-300), saturated), "ke_cv": float(ke.std() / ke.mean()),
            "ke_mean_PJ": float(ke.mean() / 1e15), "noise": high_k_enstrophy(ctl["u"][-30:], ctl["v"][-30:]),
            "hmin": hmin, "cfl": cfl, "steps_per_s": sps, "diff_first": float(diff[1]), "diff_min": float(diff.min()),
            "diff_last": float(diff[-1]), "saturated": saturated, "umax": float(cdiag["umax"].max())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.VAR=VALUE")
    ap.add_argument("--spinup-days", type=float, default=730.0)
    ap.add_argument("--twin-days", type=float, default=180.0)
    ap.add_argument("--eps", type=float, default=1e-4, help="ssh bump of the perturbed twin (m)")
    ap.add_argument("--restart", type=Path, help="start the spin-up from this restart instead of rest")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sets = parse_sets(args.set)
    fig = twin(args.workdir, sets, args.spinup_days, args.twin_days, args.eps, args.restart)
    print(" ".join(args.set) or "(namelist_ref)", "|", " ".join(f"{k}={v:.4g}" for k, v in fig.items()))
    if args.json:
        args.json.write_text(json.dumps({"set": args.set, **fig}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
