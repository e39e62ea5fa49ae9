"""Plot a gyre run: KE time series (from <exp>_diag.nc) and a relative-vorticity snapshot (from <exp>_fields.nc).

usage: python gyre/tools/plot_gyre.py RUNDIR [--exp gyre] [--out gyre/] [--record -1] [--skip-days 0]
Writes gyre_ke.png and gyre_vorticity.png (small PNGs, meant to be committed).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import netCDF4  # noqa: E402
import numpy as np  # noqa: E402


def vorticity(u: np.ndarray, v: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Relative vorticity at F points (ny-1, nx-1) of C-grid u, v given as (ny, nx)."""
    return (v[:-1, 1:] - v[:-1, :-1]) / dx - (u[1:, :-1] - u[:-1, :-1]) / dy


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("rundir", type=Path)
    ap.add_argument("--exp", default="gyre")
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--record", type=int, default=-1, help="record of the fields file to show")
    ap.add_argument("--skip-days", type=float, default=0.0, help="days of spin-up drawn in grey")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with netCDF4.Dataset(args.rundir / f"{args.exp}_diag.nc") as ds:
        days = ds["time"][:] / 86400.0
        ke = ds["ke"][:] / 1e15
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=100)
    spin = days < args.skip_days
    ax.plot(days[spin] / 365.0, ke[spin], color="0.6", lw=0.8, label="spin-up")
    ax.plot(days[~spin] / 365.0, ke[~spin], color="C0", lw=0.8, label="eddying")
    ax.set_xlabel("years")
    ax.set_ylabel("KE (PJ)")
    ax.set_title("gyre: kinetic energy of the upper layer")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "gyre_ke.png")

    with netCDF4.Dataset(args.rundir / f"{args.exp}_fields.nc") as ds:
        ds.set_auto_mask(False)
        u, v = ds["u"][args.record], ds["v"][args.record]
        t = ds["time"][args.record] / 86400.0 / 365.0
        dx, dy = float(ds.dx), float(ds.dy)
        x, y = ds["x"][:] / 1e3, ds["y"][:] / 1e3
        mask = ds["mask"][:]
        f0 = float(ds.f0)
    zeta = vorticity(u, v, dx, dy) / f0
    zeta = np.where((mask[:-1, :-1] * mask[1:, 1:] * mask[1:, :-1] * mask[:-1, 1:]) > 0, zeta, np.nan)
    lim = np.nanpercentile(np.abs(zeta), 99.5)
    fig, ax = plt.subplots(figsize=(4.6, 4), dpi=100)
    im = ax.pcolormesh(x[:-1] + dx / 2e3, y[:-1] + dy / 2e3, zeta, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="auto")
    ax.set_aspect("equal")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_title(f"relative vorticity / f0, year {t:.1f}")
    fig.colorbar(im, ax=ax, shrink=0.85)
    fig.tight_layout()
    fig.savefig(args.out / "gyre_vorticity.png")
    print(f"wrote {args.out / 'gyre_ke.png'} and {args.out / 'gyre_vorticity.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
