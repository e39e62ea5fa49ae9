"""How a start from a generated state is judged and shown against a physically spun-up control (issue 16).

Shared by ``oceanbridge spinup-start`` (deploy/spinup_start.py) and the study
(benchmarks/bench_spinup.py): the physical metrics' annual means of a gyre fields file, each metric's offset
from the control in units of the control's interannual standard deviation, and the two figures a person
looks at (the generated state beside the reference's, every metric's time series after the restart).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FIELDS = ("ssh", "u", "v", "temp")  # the gyre state, in the generator's channel order
METRICS = ("ke", "heat", "mean_temp", "thickness_var", "psi_max", "psi_min", "wbc_transport")
WITHIN = 2.0  # control standard deviations: the target of a start


def read_state(path: Path, record: int | None = None) -> np.ndarray:
    """(C, ny, nx) state of a gyre restart file, or record ``record`` of a fields file."""
    import netCDF4
    at = (...,) if record is None else (record,)
    with netCDF4.Dataset(path) as ds:
        return np.stack([np.asarray(ds[f][at], dtype=float) for f in FIELDS])


def annual(fields: Path, metrics=METRICS) -> dict[str, np.ndarray]:
    """Annual means of every metric of a gyre fields file, years 1..N (index 0 = the first model year)."""
    from models.ocean_metrics import evaluate_file
    return annual_of(evaluate_file(fields, metrics))


def annual_of(run) -> dict[str, np.ndarray]:
    """Annual means of every series of a ``models.ocean_metrics.RunMetrics``, complete model years counted from its
    first record (which closes the first output interval)."""
    from models.equilibrium import annual_means
    from models.ocean_metrics import seconds_per_unit
    seconds = run.time * seconds_per_unit(run.time_units)
    seconds = seconds - seconds[0] + (seconds[1] - seconds[0] if len(seconds) > 1 else 0.0)
    return {m: annual_means(seconds, values)[1] for m, values in run.series.items()}


def judge(start: dict[str, np.ndarray], control: dict[str, np.ndarray]) -> dict:
    """Per metric of ``control``: offset of the start's mean from the control's, its largest yearly offset and its
    trend, in control std; and the years it needs before every later year stays within WITHIN std."""
    out = {}
    for m in control:
        mean, std = control[m].mean(), max(control[m].std(ddof=1), 1e-12 * max(abs(control[m].mean()), 1e-30))
        z = (start[m] - mean) / std
        outside = np.flatnonzero(np.abs(z) > WITHIN)
        out[m] = {"offset": float(z.mean()), "max_offset": float(np.abs(z).max()),
                  "trend": float(np.polyfit(np.arange(len(z)), z, 1)[0]) if len(z) > 1 else 0.0,
                  "adjust_years": 0 if len(outside) == 0 else int(outside[-1]) + 1}
    return out


def plot_states(path: Path, control: np.ndarray, generated: dict[str, np.ndarray], reference: str = "control") -> None:
    """One column per state, the reference first (its range sets every column's colours), one row per field."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = [(reference, control)] + [(k, v) for k, v in generated.items()]
    fig, axes = plt.subplots(len(FIELDS), len(cols), figsize=(2.6 * len(cols), 2.4 * len(FIELDS)), squeeze=False)
    for r, field in enumerate(FIELDS):
        lim = np.nanmax(np.abs(control[r])) or 1.0
        for c, (name, state) in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(state[r], origin="lower", cmap="RdBu_r" if field != "temp" else "viridis",
                      vmin=-lim if field != "temp" else np.nanmin(control[r]), vmax=lim if field != "temp"
                      else np.nanmax(control[r]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(field)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_metrics(path: Path, control: dict | None, starts: dict[str, dict], times: dict | None = None) -> None:
    """Every metric of ``starts`` ({start: {metric: series}}) after the restart, one panel each, with the band
    of the control's mean ± WITHIN std (``control``: {metric: annual means}, or None: no band). Without
    ``times`` the series are annual means drawn at years 1..N, the control's own years beside them; with
    ``times`` ({start: model years after the restart}) each start is drawn on its own time axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = list(next(iter(starts.values())))
    fig, axes = plt.subplots(2, (len(metrics) + 1) // 2, figsize=(3.4 * ((len(metrics) + 1) // 2), 6.0))
    for ax, m in zip(axes.flat, metrics):
        if control is not None:
            mean, std = control[m].mean(), control[m].std(ddof=1)
            ax.axhspan(mean - WITHIN * std, mean + WITHIN * std, color="0.85", label=f"control ± {WITHIN:g} std")
            if times is None:
                years = np.arange(1, len(control[m]) + 1)
                ax.plot(years, control[m], "k-", lw=2, label="control")
        for name, series in starts.items():
            x = np.arange(1, len(series[m]) + 1) if times is None else times[name]
            ax.plot(x, series[m], lw=1, label=name)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("model year after restart")
    axes.flat[0].legend(fontsize=6)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
