"""``oceanbridge spinup-start``: members start from generated states (ln_obr_spinup), run a model year, and are
judged against a control; a config that cannot start stops before the launch, naming the key or file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import netCDF4
import numpy as np
import pytest
from worker_fixtures import REPO, write_config

CHANNELS = ("ssh", "u", "v", "temp")
N = 16
WET = {name: np.ones((N, N), bool) for name in CHANNELS}
WET["u"][:, -1] = False  # u on the eastern wall (gyre/README.md, grid indexing)
WET["v"][-1, :] = False  # v on the northern wall
DT = 2400.0  # s: 13140 steps a model year
THETA = 0.12  # θ*: [[parameters]] values


def spinup_config(run_dir, *, modes=("spinup",), checkpoint: str | None = "generator.pt", steps: int = 8):
    """One gyre member at θ* (16 x 16, 36 fields records a model year) in the spinup mode, from a tiny generator."""
    config = write_config(run_dir, steps=steps, freq=365, n=N, members=1, modes=modes, spinup="spinup" in modes,
                          timeout=120.0)
    extra = "" if checkpoint is None else f'\n[worker.spinup]\ncheckpoint = "{checkpoint}"\nnum_steps = 2\n'
    text = config.read_text().replace("[model]", extra + "\n[model]").replace("dt = 1200.0", f"dt = {DT}")
    config.write_text(text.replace("high = 0.15\n", f"high = 0.15\nvalues = [{THETA}]\n"))
    return config


def oceanbridge(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMPI_MCA_mpi_yield_when_idle": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "deploy.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)


def control_run(folder, gyre_exe) -> "os.PathLike":
    """A physical run from rest at θ* for two model years (the control's interannual std needs two)."""
    sys.path.insert(0, str(REPO / "gyre" / "tools"))
    import gyrerun
    nml = {"namrun": {"rn_dt": DT, "nn_itend": 2 * 13140, "nn_write": 365, "nn_diag": 365, "nn_stock": 0},
           "namdom": {"nn_nx": N, "nn_ny": N, "rn_dx": 30000.0, "rn_dy": 30000.0},
           "namphys": {"rn_tau0": THETA}}
    gyrerun.make_rundir(folder, nml)
    res = gyrerun.run_gyre(folder, 1, timeout=240)
    assert res.returncode == 0, res.output[-3000:]
    return folder / "gyre_fields.nc"


def test_members_start_from_generated_states_and_are_judged(tmp_path, gyre_exe):
    from test_worker_spinup import tiny_generator

    from bridge.config.config import load_config
    from bridge.worker.spinup_report import METRICS, annual, judge
    from deploy.spinup_start import report
    from models.ocean_metrics import evaluate_file

    run = tmp_path / "run"
    tiny_generator(run / "generator.pt", n=N)
    config = spinup_config(run)  # 8 steps: --years and --samples override the run length and the members
    control = control_run(tmp_path / "control", gyre_exe)
    res = oceanbridge("spinup-start", config, "--years", 1, "--samples", 2, "--control", control, "--control-years", 2)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert "model yr" in res.stderr  # the progress bar
    assert "member 'gyre_1': generated initial state sent at step 0" in res.stdout + res.stderr
    print(res.stdout)

    summary = json.loads((run / "spinup_start.json").read_text())
    assert set(summary["members"]) == {"gyre_1", "gyre_2"}
    assert summary["members"]["gyre_2"]["theta"] == {"tau0": THETA}
    assert summary["years"] == pytest.approx(1.0)
    with netCDF4.Dataset(run / "initial.nc") as ini:  # the generated states, CF
        ini.set_auto_mask(False)
        assert ini.Conventions == "CF-1.8"
        assert ini["x"].units == ini["y"].units == "m" and ini["time"].standard_name == "time"
        assert ini["ssh_initial"].units == "m" and ini["ssh_initial"].standard_name == "sea_surface_height_above_geoid"
        assert "generated" in ini["temp_initial"].long_name
        assert ini.members.split() == ["gyre_1", "gyre_2"]
        sent = {name: ini[f"{name}_initial"][:, 0] for name in CHANNELS}
    assert not np.array_equal(sent["ssh"][0], sent["ssh"][1])  # a sample each
    for k, member in enumerate(("gyre_1", "gyre_2")):
        fields = run / f"member_{k + 1}" / "gyre_fields.nc"
        with netCDF4.Dataset(fields) as oce:  # the member started from its generated state, bit for bit
            oce.set_auto_mask(False)
            assert oce["step"][0] == 0 and oce["step"][-1] == 13140
            for name in CHANNELS:
                np.testing.assert_array_equal(oce[name][0][WET[name]], sent[name][k][WET[name]], err_msg=name)
        offline = evaluate_file(fields, METRICS)
        with netCDF4.Dataset(run / f"metrics_{member}.nc") as ds:  # CF time series of the member's own output
            assert ds.Conventions == "CF-1.8" and ds.featureType == "timeSeries"
            assert ds["time"].standard_name == "time" and ds["time"].units == offline.time_units
            np.testing.assert_array_equal(ds["time"][:], offline.time)
            for m in METRICS:
                assert ds[m].units and ds[m].long_name
                np.testing.assert_array_equal(ds[m][:], offline.series[m], err_msg=m)
        # the offsets printed and stored: the member's annual means against the control's
        ctl = annual(control)
        want = judge(annual(fields), {m: v[-2:] for m, v in ctl.items()})
        got = summary["members"][member]["scores"]
        for m in METRICS:
            assert got[m]["offset"] == pytest.approx(want[m]["offset"], rel=1e-12), m
            assert f"{got[m]['offset']:.2f}" in res.stdout
    for png in ("spinup_states.png", "spinup_metrics.png"):
        assert (run / png).stat().st_size > 10_000
    assert "offset from the control" in res.stdout and "within 2 std" in res.stdout

    # without a control: the generated state beside the member's after the run, the start -> end table
    cfg = load_config(run / "spinup_start.toml")
    (run / "spinup_states.png").unlink()
    plain = report(cfg)
    assert plain["control"] is None and "scores" not in plain["members"]["gyre_1"]
    assert (run / "spinup_states.png").stat().st_size > 10_000


@pytest.mark.parametrize("case, needle", [
    ("modes", "[worker] modes ['train'] lacks 'spinup'"),
    ("unset", "[worker] modes has 'spinup' but [worker.spinup] checkpoint is not set"),
    ("missing", "[worker.spinup] checkpoint {run}/nowhere.pt: file not found"),
    ("control", "--control {run}/no_control.nc: file not found"),
])
def test_a_config_that_cannot_start_stops_before_the_launch(tmp_path, case, needle):
    from test_worker_spinup import tiny_generator
    run = tmp_path / "run"
    tiny_generator(run / "generator.pt", n=N)
    config = {"modes": lambda: spinup_config(run, modes=("train",)),
              "unset": lambda: spinup_config(run, checkpoint=None),
              "missing": lambda: spinup_config(run, checkpoint="nowhere.pt"),
              "control": lambda: spinup_config(run)}[case]()
    args = ("--control", run / "no_control.nc") if case == "control" else ()
    res = oceanbridge("spinup-start", config, *args, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle.format(run=run) in res.stderr, res.stderr
    assert not (run / "member_1").exists() and not (run / "namelist_cfg").exists()  # no preprod, no launch
    assert not (run / "gyre_fields.nc").exists()
