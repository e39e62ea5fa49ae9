"""The generate mode's equilibrium watch: which members' states count as equilibrated (synthetic states)."""
from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from bridge.worker.equilibrium import EquilibriumWatch, check_metric_names
from models.equilibrium import EquilibriumConfig
from models.ocean_metrics import YEAR, Grid, Physics, heat_content

CHANNELS = ("ssh", "u", "v", "temp")
PER_YEAR = 4  # states per model year (dt = a quarter year)


def state(rng, temp: float) -> np.ndarray:
    x = np.zeros((4, 6, 8))
    x[0] = 0.01 * rng.standard_normal((6, 8))
    x[3] = temp + 0.05 * rng.standard_normal((6, 8))
    return x


def watch(config=EquilibriumConfig(window_years=3, horizon_years=3.0, factor=2.0, persist_years=1)):
    grid, physics = Grid(1.0e4, 1.0e4, np.ones((6, 8))), Physics(h0=500.0, gprime=0.02)
    return EquilibriumWatch(("steady", "drifting"), ("heat",), config, grid, {"steady": physics, "drifting": physics},
                            CHANNELS, YEAR / PER_YEAR)


def feed(w, years: int, seed: int = 0):
    """States of both members: 'steady' noisy about 10 degC, 'drifting' warming by 1 degC a year; the flags."""
    rng = np.random.default_rng(seed)
    flags = {"steady": [], "drifting": []}
    for kt in range(years * PER_YEAR):
        flags["steady"].append(w.add("steady", kt, state(rng, 10.0)))
        flags["drifting"].append(w.add("drifting", kt, state(rng, 10.0 + kt / PER_YEAR)))
    return flags


def test_a_steady_member_qualifies_after_a_full_window_and_a_drifting_one_never():
    w = watch()
    flags = feed(w, 6)
    # years 0-2 close at the first state of year 3: the window is full, the steady member passes
    assert w.qualified() == {"steady": 3, "drifting": None}
    assert flags["steady"] == [False] * (3 * PER_YEAR) + [True] * (3 * PER_YEAR)
    assert not any(flags["drifting"])


def test_passes_must_persist():
    """With two windows in a row required, the steady member qualifies one year later (years 0-2 and 1-3)."""
    w = watch(EquilibriumConfig(window_years=3, horizon_years=3.0, factor=100.0, persist_years=2))
    flags = feed(w, 6)
    assert w.qualified() == {"steady": 4, "drifting": None}
    assert flags["steady"] == [False] * (4 * PER_YEAR) + [True] * (2 * PER_YEAR)


def test_annual_means_are_the_means_of_the_states_metrics():
    w = watch()
    rng = np.random.default_rng(5)
    states = [state(rng, 10.0 + k) for k in range(2 * PER_YEAR + 1)]
    for kt, x in enumerate(states):
        w.add("steady", kt, x)
    grid, physics = w.grid, w.physics["steady"]
    heat = [float(heat_content(x[0], x[3], grid, physics)) for x in states]
    rec = w.records["steady"]
    assert rec.years == [0, 1]
    np.testing.assert_allclose([m[0] for m in rec.means], [np.mean(heat[:4]), np.mean(heat[4:8])], rtol=1e-12)


def test_state_round_trip_and_netcdf(tmp_path):
    w = watch()
    feed(w, 5)
    again = watch()
    again.load_state_dict(w.state_dict())
    assert again.qualified() == w.qualified()
    assert again.records["drifting"].means == w.records["drifting"].means
    path = w.write(tmp_path / "equilibrium.nc")
    with netCDF4.Dataset(path) as ds:
        assert ds.Conventions == "CF-1.8" and ds["heat"].units == "J"
        assert list(ds["qualified_year"][:]) == [3, -1]
        assert ds["heat"].shape == (2, 4)  # two members, the four closed years
        np.testing.assert_allclose(ds["time"][:] / YEAR, [0.5, 1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match="equilibrium metrics"):
        other = EquilibriumWatch(("steady",), ("ke",), w.config, w.grid, w.physics, CHANNELS, w.dt)
        other.load_state_dict(w.state_dict())


@pytest.mark.parametrize("names, channels, needle", [
    (("bogus",), CHANNELS, "bogus"),
    (("eke",), CHANNELS, "window of states"),
    (("ke",), ("ssh", "temp"), "needs the field(s) ['u', 'v']"),
])
def test_bad_metric_names_are_named(names, channels, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        check_metric_names(names, channels)


# ----------------------------------------------------------------------------- end to end on the gyre
def test_generate_mode_learns_from_equilibrated_states_only(tmp_path, gyre_exe):
    """Two gyre members spin up from rest and stream daily states; each member's states join the generator's
    training set from the year its detector passes (a lenient detector: 3-year window), and the worker writes
    a 'generate' diffusion surrogate and its MSE baseline, trained on the same batches."""
    import json

    import torch
    from test_worker_process import job
    from worker_fixtures import write_config

    from bridge.mpirun import run_mpirun
    from models.equilibrium import annual_means
    from models.ocean_metrics import evaluate_file, seconds_per_unit
    from models.train import Trainer

    dt, day, years = 2400.0, 36, 3  # s; steps per day; years before the detector can pass
    steps = years * 365 * day + 40 * day
    config = write_config(tmp_path, steps=steps, freq=day, n=16, members=2, modes=("generate",), extra="""
[worker.generate]
metrics = "heat,thickness_var,psi_max"
window_years = 3
horizon_years = 0.1
factor = 100.0
persist_years = 1
""")
    config.write_text(config.read_text().replace("dt = 1200.0", f"dt = {dt}").replace("timeout = 60.0",
                                                                                        "timeout = 120.0"))
    cmd, run_dir, env = job(config)
    res = run_mpirun(cmd, timeout=300, cwd=run_dir, env=env)
    assert res.returncode == 0, res.stdout
    for member in ("gyre_1", "gyre_2"):
        assert f"member '{member}' equilibrated after model year 2" in res.stdout, res.stdout
    summary = json.loads((tmp_path / "worker_summary.json").read_text())
    assert summary["equilibrium"] == {"gyre_1": 3, "gyre_2": 3}
    after = len([kt for kt in range(0, steps + 1, day) if kt * dt >= years * YEAR])  # states of year 3 on
    assert summary["buffer"]["n_put"] == 2 * after  # only equilibrated states were offered
    generator, baseline = Trainer.load(tmp_path / "generator.pt"), Trainer.load(tmp_path / "generator_mse.pt")
    assert generator.model.config.task == baseline.model.config.task == "generate"
    assert (generator.model.config.objective, baseline.model.config.objective) == ("diffusion", "mse")
    assert generator.step == baseline.step == summary["train_steps"] > 0  # the same budget
    # the streamed annual means are those of the member's own output, computed offline
    run = evaluate_file(tmp_path / "member_1" / "gyre_fields.nc", ["heat", "psi_max"])
    seconds = run.time * seconds_per_unit(run.time_units)
    with netCDF4.Dataset(tmp_path / "equilibrium.nc") as ds:
        assert list(ds["qualified_year"][:]) == [3, 3]
        for name in ("heat", "psi_max"):
            _, offline = annual_means(seconds, run.series[name])
            np.testing.assert_allclose(ds[name][0, :years], offline[:years], rtol=1e-10, err_msg=name)
    state = torch.load(tmp_path / "worker_ckpt.pt", weights_only=True)
    assert {"part:baseline", "part:equilibrium"} <= set(state)
    # the generator samples a state for a new θ, as [worker.spinup] and bench_spinup use it (a member starting
    # from such a state: tests/worker/test_worker_spinup.py; the study: benchmarks/bench_spinup.py)
    from models.data import Batch
    from models.sampling import SamplerConfig
    cond = Batch(None, None, torch.tensor([[0.12]]), torch.ones(1, 1, 16, 16), None)
    x = generator.ema.sample(cond, 2, SamplerConfig(num_steps=4), torch.Generator().manual_seed(0))
    assert x.shape == (1, 2, 4, 16, 16) and torch.isfinite(x).all()
