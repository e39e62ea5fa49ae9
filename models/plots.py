"""PNG figures (matplotlib, Agg backend: no display needed on compute nodes)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

__all__ = ["plot_fields", "plot_spectra", "plot_rank_histogram"]


def plot_fields(path: str | Path, panels: list[tuple[str, np.ndarray]], mask=None, title: str = "",
                cmap: str = "RdBu_r", symmetric: bool = False) -> Path:
    """One row of maps sharing a colour scale; land shown grey."""
    data = [np.ma.masked_where(np.broadcast_to(mask == 0, a.shape), a) if mask is not None else a
            for _, a in panels]
    lo = min(float(np.ma.min(a)) for a in data)
    hi = max(float(np.ma.max(a)) for a in data)
    if symmetric:
        lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.2), squeeze=False)
    for ax, (name, _), a in zip(axes[0], panels, data):
        ax.set_facecolor("0.6")
        im = ax.imshow(a, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_spectra(path: str | Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "",
                 k_nyq: float | None = None, k_units: str = "cycles m-1") -> Path:
    """Log-log radially averaged spectra; the band of ``high_k_ratio`` is shaded."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for label, (k, e) in curves.items():
        ok = (k > 0) & (e > 0)
        ax.loglog(k[ok], e[ok], label=label, lw=1.5 if "true" in label.lower() else 1.0)
    if k_nyq:
        ax.axvspan(k_nyq / 2, k_nyq, color="0.9", zorder=0, label="upper half (ratio band)")
    ax.set_xlabel(f"wavenumber ({k_units})")
    ax.set_ylabel("energy per band")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_series(path: str | Path, x: np.ndarray, panels: dict[str, dict[str, np.ndarray]], xlabel: str,
                title: str = "", reference: float | None = None) -> Path:
    """One panel per entry of ``panels`` ({panel title: {curve label: y}}), y against ``x`` on a log axis,
    with a dashed line at ``reference`` (the truth's value) when given."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels.items()):
        for label, y in curves.items():
            ax.semilogy(x, y, marker=".", label=label)
        if reference is not None:
            ax.axhline(reference, color="k", ls="--", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_rank_histogram(path: str | Path, counts: np.ndarray, title: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(4, 3))
    freq = counts / max(counts.sum(), 1)
    ax.bar(np.arange(len(counts)), freq, color="tab:blue")
    ax.axhline(1 / len(counts), color="k", ls="--", lw=1, label="calibrated")
    ax.set_xlabel("rank of truth among members")
    ax.set_ylabel("frequency")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
