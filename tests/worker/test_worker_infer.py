"""The worker's infer mode in a real MPMD job with the embedded gyre.

K = 6 gyre members with wind-stress amplitudes tau0 drawn by Latin hypercube
from the prior box [0.05, 0.2] N m-2 stream their states to one worker in
``train`` + ``infer`` mode.  The observation is a held-out gyre run with
tau0 = 0.08 (not a member), whose last state is given with its true tau0 as a
global attribute.  The drag is strong (e-folding 0.6 day) so that the states
of the 5-day runs are near their wind-driven equilibrium, whose amplitude
identifies tau0.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from worker_fixtures import REPO, launch, write_config

from bridge.config.config import load_config
from bridge.config.ensemble import read_parameters_csv
from bridge.worker.settings import worker_settings
from models.settings import ConfigError

N, STEPS, FREQ, MEMBERS, TRUTH = 32, 360, 6, 6, 0.08
LOW, HIGH = 0.05, 0.2
PHYSICS = "&namphys\n   rn_rdrag = 2.e-5\n   rn_trelax = 2.\n/\n"
INFER = f"""
[worker.infer]
observation = "obs/gyre_fields.nc"
samples = 1000
min_steps = 800
norm_warmup_steps = 200

[[parameters]]
name = "tau0"
block = "namphys"
var = "rn_tau0"
low = {LOW}
high = {HIGH}
units = "N m-2"
"""


def observe(folder: Path, tau0: float) -> Path:
    """A held-out gyre run with the members' physics; its last state with the true tau0 attached."""
    sys.path.insert(0, str(REPO / "gyre" / "tools"))
    from gyrerun import make_rundir, namelist_text, run_gyre
    blocks = {"namrun": {"nn_itend": STEPS, "nn_write": STEPS, "nn_diag": 0, "ln_rst_end": False},
              "namdom": {"nn_nx": N, "nn_ny": N, "rn_dx": 30000.0, "rn_dy": 30000.0}}
    rundir = make_rundir(folder, raw_cfg=namelist_text(blocks) + PHYSICS.replace("&namphys", f"&namphys\n   rn_tau0 = {tau0}"))
    res = run_gyre(rundir, 1, timeout=120)
    assert res.returncode == 0, res.output
    path = rundir / "gyre_fields.nc"
    with netCDF4.Dataset(path, "a") as ds:
        ds.setncattr("tau0", tau0)
    return path


def infer_config(run_dir: Path, worker_ranks: int = 1) -> Path:
    config = write_config(run_dir, steps=STEPS, freq=FREQ, n=N, members=MEMBERS, modes=("train", "infer"),
                          parameters=False, extra=INFER, worker_ranks=worker_ranks)
    template = run_dir / "template_cfg"
    template.write_text(template.read_text() + PHYSICS)
    text = config.read_text().replace("capacity = 64", "capacity = 512").replace("batch_size = 4", "batch_size = 8")
    config.write_text(text)
    return config


@pytest.fixture(scope="module")
def inferred(tmp_path_factory, gyre_exe) -> Path:
    run_dir = tmp_path_factory.mktemp("infer")
    observe(run_dir / "obs", TRUTH)
    res = launch(infer_config(run_dir), timeout=400)
    assert res.returncode == 0, res.stdout
    (run_dir / "launch.log").write_text(res.stdout)
    return run_dir


def test_posterior_file_has_cf_metadata_and_stays_in_the_prior_box(inferred):
    with netCDF4.Dataset(inferred / "posterior.nc") as ds:
        ds.set_auto_mask(False)
        assert ds.Conventions == "CF-1.8" and ds.parameters == "tau0" and ds.training_steps >= 800
        tau0 = ds["tau0"]
        assert tau0.units == "N m-2" and tau0.dimensions == ("sample",) and len(tau0) == 1000
        assert (tau0.valid_min, tau0.valid_max) == (LOW, HIGH)
        s = tau0[:]
        assert LOW <= s.min() and s.max() <= HIGH
        assert ds["tau0_mean"].units == "N m-2" and ds["tau0_mean"].cell_methods == "sample: mean"
        np.testing.assert_allclose(ds["tau0_mean"][...], s.mean())
        np.testing.assert_allclose(ds["tau0_quantile"][:], np.quantile(s, ds["quantile"][:]))
        assert float(ds["tau0_true"][...]) == TRUTH
    assert (inferred / "posterior.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_posterior_is_closer_to_the_truth_than_the_prior(inferred):
    """The numbers are printed for the report (pytest -s)."""
    with netCDF4.Dataset(inferred / "posterior.nc") as ds:
        ds.set_auto_mask(False)
        s = ds["tau0"][:]
        lo, hi = ds["tau0_quantile"][0], ds["tau0_quantile"][-1]  # the 2.5 % and 97.5 % levels
    prior_mean, prior_std = (LOW + HIGH) / 2, (HIGH - LOW) / np.sqrt(12)
    members = sorted(round(row["tau0"], 4) for row in read_parameters_csv(inferred / "parameters.csv").values())
    print(f"\ninfer: truth {TRUTH}, posterior mean {s.mean():.4f} std {s.std():.4f}, 95% [{lo:.4f}, {hi:.4f}]; "
          f"prior mean {prior_mean:.4f} std {prior_std:.4f}; members' tau0 {members}")
    assert abs(s.mean() - TRUTH) < abs(prior_mean - TRUTH)
    assert s.std() < prior_std
    summary = json.loads((inferred / "worker_summary.json").read_text())["posterior"]["tau0"]
    assert summary["mean"] == pytest.approx(float(s.mean()), rel=1e-5) and summary["truth"] == TRUTH


def test_checkpoint_holds_the_posterior_estimator(inferred):
    import torch
    state = torch.load(inferred / "worker_ckpt.pt", weights_only=False)
    assert state["inference"]["format"] == "oceanbridge-npe-1" and state["inference"]["step"] >= 800
    assert state["inference"]["names"] == ["tau0"]


def test_example_deploy_config_is_valid():
    path = REPO / "deploy" / "gyre" / "infer.toml"
    cfg = load_config(path)
    s = worker_settings(cfg)
    assert "infer" in cfg.worker.modes and s.inference.names == tuple(p.name for p in cfg.parameters)


def settings_with(tmp_path, modes=("train", "infer"), infer="", observation=True):
    tmp_path.mkdir(parents=True, exist_ok=True)
    obs = tmp_path / "obs.nc"
    if observation:
        obs.write_bytes(b"")
    text = f'\n[worker.infer]\n{"observation = " + json.dumps(str(obs)) if observation else ""}\n{infer}\n'
    return worker_settings(load_config(write_config(tmp_path, modes=modes, extra=text)))


def test_infer_settings_are_validated(tmp_path):
    s = settings_with(tmp_path, infer="samples = 50\nquantiles = \"0.05,0.95\"")
    assert s.infer.samples == 50 and s.infer.levels == (0.05, 0.95) and s.inference.low == (0.1,)
    assert s.inference.output == tmp_path / "posterior.nc"
    with pytest.raises(ConfigError, match=r"\[worker.infer\] unknown key 'sampels'"):
        settings_with(tmp_path / "a", infer="sampels = 3")
    with pytest.raises(ConfigError, match=r"\[worker.infer\] observation is not set"):
        settings_with(tmp_path / "b", observation=False)
    with pytest.raises(ConfigError, match=r"'infer' but not 'train'"):
        settings_with(tmp_path / "c", modes=("infer",))


def test_offline_verb_trains_on_runs_and_samples_an_observation(tmp_path, capsys):
    """`oceanbridge infer`: runs whose ssh amplitude is θ (plus noise), a masked corner, an observation
    with θ = 1.3 as an attribute; the posterior mean comes within 0.1 of it and its std is far below
    the prior's (0.43)."""
    import torch

    from deploy.cli import main
    from models.ncio import write_fields

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    mask = np.ones((8, 8), "i1")
    mask[:2, :2] = 0
    pattern = np.outer(np.sin(np.linspace(0, np.pi, 8)), np.ones(8))
    x, y = np.arange(8.0), np.arange(8.0)

    def run(path, theta, records, attrs=None):
        ssh = theta * pattern + 0.05 * rng.standard_normal((records, 8, 8))
        write_fields(path, {"ssh": ssh}, mask, x, y, np.arange(records) * 3600.0,
                     params={"tau0": (theta, "N m-2", "wind")}, attrs=attrs)
        return str(path)
    data = [run(tmp_path / f"run{k}.nc", t, 40) for k, t in enumerate(np.linspace(0.55, 1.95, 12))]
    obs = run(tmp_path / "obs.nc", 1.3, 1, attrs={"tau0": 1.3})
    data.append(run(tmp_path / "bad.nc", 1.0, 3))
    with netCDF4.Dataset(data[-1], "a") as ds:
        ds["ssh"][1, 3, 3] = np.nan
    out = tmp_path / "posterior.nc"
    rc = main(["infer", "--data", *data, "--prior", "tau0=0.5:2.0:N m-2", "--observation", obs, "--variables", "ssh",
               "--epochs", "40", "--batch-size", "32", "--lr", "2e-3", "--out", str(out), "--plot", str(tmp_path / "p.png"), "--no-progress"])
    captured = capsys.readouterr()
    printed = captured.out
    assert rc == 0, captured.err
    assert "482 simulations (1 rejected, NaN/inf)" in printed
    with netCDF4.Dataset(out) as ds:
        ds.set_auto_mask(False)
        s = ds["tau0"][:]
        assert ds["tau0"].units == "N m-2" and float(ds["tau0_true"][...]) == 1.3
    assert abs(s.mean() - 1.3) < 0.1 and s.std() < 0.1, (s.mean(), s.std())
    rc = main(["infer", "--data", *data[:2], "--prior", "theta=0:1", "--observation", obs, "--variables", "ssh"])
    assert rc == 2 and "no value of parameter(s) ['theta']" in capsys.readouterr().err


@pytest.mark.slow
def test_two_worker_ranks_write_one_posterior_per_tile(tmp_path, gyre_exe):
    """With [worker] ranks = 2 each rank learns from, and conditions on, its own j-band."""
    observe(tmp_path / "obs", TRUTH)
    config = infer_config(tmp_path, worker_ranks=2)
    res = launch(config, timeout=600)
    assert res.returncode == 0, res.stdout
    for r in (0, 1):
        with netCDF4.Dataset(tmp_path / f"posterior_r{r}.nc") as ds:
            ds.set_auto_mask(False)
            s = ds["tau0"][:]
            assert len(s) == 1000 and LOW <= s.min() and s.max() <= HIGH and ds.training_steps >= 800
        assert (tmp_path / f"posterior_r{r}.png").is_file()
        print(f"\nrank {r}: posterior mean {s.mean():.4f} std {s.std():.4f} (truth {TRUTH})")


def test_checkpoint_round_trip_restores_the_posterior_estimator(tmp_path):
    """save_checkpoint / restore carry the estimator: the restored one samples the same posterior."""
    import torch

    from bridge.partition import BoxPartition
    from bridge.worker.checkpoint import load_checkpoint, restore, save_checkpoint
    from bridge.worker.engine import Engine, build_inference, build_trainer
    from models.buffers import BufferConfig, make_buffer
    from models.data import DataSpec
    from models.ncio import write_fields

    torch.set_num_threads(1)
    n = 8
    grid = np.arange(n, dtype=float)
    write_fields(tmp_path / "obs.nc", {c: np.ones((1, n, n)) for c in ("ssh", "u", "v", "temp")},
                 np.ones((n, n), "i1"), grid, grid, np.zeros(1))
    settings = settings_with(tmp_path, infer=f'observation = "{tmp_path / "obs.nc"}"\nnorm_warmup_steps = 2',
                             observation=False)
    spec, box, mask = DataSpec(("ssh", "u", "v", "temp"), ("tau0",), n, n), BoxPartition.whole(n, n), np.ones((n, n))
    rng = np.random.default_rng(0)
    items = [(0, np.float32([t]), rng.random((4, n, n), np.float32) * t, rng.random((4, n, n), np.float32) * t)
             for t in np.linspace(0.1, 0.15, 6)]

    def worker():
        trainer = build_trainer(spec, settings, "cpu", use_position=False, lag=1)
        return (trainer, make_buffer(BufferConfig(kind="reservoir", capacity=8, watermark=2, seed=0)),
                build_inference(spec, settings, "cpu"))
    trainer, buffer, inference = worker()
    engine = Engine(trainer, box, mask, use_position=False, inference=inference)
    for _ in range(4):
        engine.infer_step(items)
    path = save_checkpoint(tmp_path / "ck.pt", trainer, buffer, {"received": 1}, inference)
    fresh, other, restored = worker()
    restore(load_checkpoint(path), fresh, other, restored)
    Engine(fresh, box, mask, use_position=False, inference=restored)
    assert restored.step == inference.step == 4
    x = engine.inference.observed
    a = inference.npe.build_posterior().sample(20, x, torch.Generator().manual_seed(0))
    b = restored.npe.build_posterior().sample(20, x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
