"""`oceanbridge train | sample | evaluate` end to end on tiny synthetic files."""
import json

import netCDF4
import numpy as np
import pytest

from deploy.cli import main as oceanbridge
from models.synthetic import write_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    a = write_tiny(d / "a.nc", nt=10, nan_records=(4,))
    b = write_tiny(d / "b.nc", nt=10, tau0=0.3, seed=2)
    ck = d / "ck.pt"
    common = ["--variables", "ssh", "u", "v", "temp", "--out", str(ck), "--channels", "8", "--channel-mult", "1,2",
              "--batch-size", "4", "--threads", "2", "--no-progress"]
    rc_train = oceanbridge(["train", "--data", str(a), str(b), "--steps", "4", *common])
    rc_resume = oceanbridge(["train", "--data", str(a), str(b), "--steps", "6", "--resume", *common])
    samples = d / "samples.nc"
    rc_sample = oceanbridge(["sample", "--checkpoint", str(ck), "--data", str(b), "--out", str(samples),
                             "--records", "0:5", "--members", "3", "--num-steps", "3", "--no-progress"])
    rc_eval = oceanbridge(["evaluate", "--data", str(b), "--samples", str(samples), "--out", str(d / "eval"),
                           "--json", str(d / "scores.json")])
    return d, (rc_train, rc_resume, rc_sample, rc_eval)


def test_all_verbs_succeed(run):
    assert run[1] == (0, 0, 0, 0)


def test_samples_file_is_cf(run):
    d, _ = run
    with netCDF4.Dataset(d / "samples.nc") as ds:
        assert ds.Conventions.startswith("CF")
        assert ds["ssh"].dimensions == ("member", "time", "y", "x")
        assert ds["ssh"].standard_name == "sea_surface_height_above_geoid" and ds["ssh"].units == "m"
        assert ds["u"].units == "m s-1" and ds["temp"].units == "degC"
        assert ds["time"].units.startswith("seconds since") and ds["time"].calendar == "noleap"
        assert ds["ssh_std"].cell_methods == "member: standard_deviation"
        assert int(ds.nfe_per_sample) == 5 and ds.dimensions["member"].size == 3
        assert list(ds["target_record"][:]) == [1, 2, 3, 4, 5]
        ssh = ds["ssh"][:]
        assert np.ma.is_masked(ssh) and ssh.mask[0, 0, 0, 0]  # land corner holds _FillValue
        assert np.isfinite(ssh.compressed()).all()


def test_evaluation_outputs(run):
    d, _ = run
    scores = json.loads((d / "scores.json").read_text())
    assert set(scores["channels"]) == {"ssh", "u", "v", "temp"}
    for s in scores["channels"].values():
        assert s["rmse"] > 0 and s["crps"] > 0 and s["spread_skill"] > 0 and sum(s["rank_histogram"]) > 0
    assert "kinetic_energy_ratio" in scores["physics"]
    with netCDF4.Dataset(d / "eval" / "evaluation.nc") as ds:
        assert ds["rmse_ssh"].units == "m" and ds["wavenumber_ssh"].units == "m-1"
    pngs = sorted(p.name for p in (d / "eval").glob("*.png"))
    assert "spectrum_ssh.png" in pngs and "rank_histogram_temp.png" in pngs


def test_sample_refuses_mismatched_data(run, tmp_path, capsys):
    d, _ = run
    other = write_tiny(tmp_path / "other.nc", nt=4, ny=8, nx=8, variables=("ssh",))
    rc = oceanbridge(["sample", "--checkpoint", str(d / "ck.pt"), "--data", str(other), "--out",
                      str(tmp_path / "x.nc"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "checkpoint" in err and "expects variables ['ssh', 'u', 'v', 'temp'] on 12x16" in err
    assert "other.nc has variables ['ssh'] on 8x8" in err


def test_sample_refuses_grid_mismatch_naming_both(run, tmp_path, capsys):
    d, _ = run
    other = write_tiny(tmp_path / "grid.nc", nt=4, ny=8, nx=8)
    rc = oceanbridge(["sample", "--checkpoint", str(d / "ck.pt"), "--data", str(other), "--out",
                      str(tmp_path / "x.nc"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint" in err and "on 12x16" in err and "on 8x8" in err and "grid.nc" in err


def test_resume_refuses_data_without_the_checkpoint_variables(run, tmp_path, capsys):
    d, _ = run
    other = write_tiny(tmp_path / "ssh_only.nc", nt=4, variables=("ssh",))
    rc = oceanbridge(["train", "--data", str(other), "--out", str(d / "ck.pt"), "--resume", "--steps", "7",
                      "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "expects variables ['ssh', 'u', 'v', 'temp']" in err and "has variables ['ssh']" in err


def test_rollout_and_help(run, tmp_path, capsys):
    d, _ = run
    out = tmp_path / "roll.nc"
    rc = oceanbridge(["sample", "--checkpoint", str(d / "ck.pt"), "--data", str(d / "b.nc"), "--out", str(out),
                      "--rollout", "3", "--records", "7", "--members", "2", "--num-steps", "2", "--no-progress"])
    assert rc == 0
    with netCDF4.Dataset(out) as ds:
        assert list(ds["target_record"][:]) == [8, 9, -1]  # beyond the file: no truth
    with pytest.raises(SystemExit):
        oceanbridge(["train", "--help"])
    assert "usage: oceanbridge train" in capsys.readouterr().out


def test_tile_training_then_whole_grid_sampling(run, tmp_path):
    d, _ = run
    ck, out = tmp_path / "tile.pt", tmp_path / "tile.nc"
    assert oceanbridge(["train", "--data", str(d / "b.nc"), "--variables", "ssh", "temp", "--out", str(ck),
                        "--tile", "8", "--steps", "2", "--channels", "8", "--channel-mult", "1,2", "--batch-size", "4",
                        "--no-progress"]) == 0
    assert oceanbridge(["sample", "--checkpoint", str(ck), "--data", str(d / "b.nc"), "--out", str(out),
                        "--records", "0:2", "--members", "2", "--num-steps", "2", "--no-progress"]) == 0
    with netCDF4.Dataset(out) as ds:
        assert ds["temp"].shape == (2, 2, 12, 16)


def test_generation_task_end_to_end(run, tmp_path, capsys):
    d, _ = run
    ck, out = tmp_path / "gen.pt", tmp_path / "gen.nc"
    assert oceanbridge(["train", "--task", "generate", "--data", str(d / "a.nc"), str(d / "b.nc"), "--variables",
                        "ssh", "temp", "--out", str(ck), "--steps", "2", "--channels", "8", "--channel-mult", "1,2",
                        "--batch-size", "4", "--no-progress"]) == 0
    assert oceanbridge(["sample", "--checkpoint", str(ck), "--data", str(d / "b.nc"), "--out", str(out),
                        "--members", "3", "--num-steps", "2", "--theta", "tau0=0.2", "--no-progress"]) == 0
    with netCDF4.Dataset(out) as ds:
        assert ds["ssh"].shape == (3, 1, 12, 16) and list(ds["target_record"][:]) == [-1]
        assert json.loads(ds.parameters_used)["tau0"] == pytest.approx(0.2)
    capsys.readouterr()
    assert oceanbridge(["evaluate", "--data", str(d / "b.nc"), "--samples", str(out), "--out", str(tmp_path / "ev")]) == 0
    assert "std_ratio" in capsys.readouterr().out  # distribution scores: no pointwise truth for generated states


def test_whitened_training_then_sampling(run, tmp_path):
    """--whiten trains a whitened surrogate; the checkpoint says so and sampling gives finite fields."""
    import torch

    d, _ = run
    ck, out = tmp_path / "white.pt", tmp_path / "white.nc"
    assert oceanbridge(["train", "--data", str(d / "b.nc"), "--variables", "ssh", "temp", "--out", str(ck),
                        "--whiten", "1", "--steps", "2", "--channels", "8", "--channel-mult", "1,2",
                        "--batch-size", "4", "--no-progress"]) == 0
    assert torch.load(ck, weights_only=True)["surrogate_config"]["spectral_whitening"] == 1.0
    assert oceanbridge(["sample", "--checkpoint", str(ck), "--data", str(d / "b.nc"), "--out", str(out),
                        "--records", "0:2", "--members", "2", "--num-steps", "2", "--no-progress"]) == 0
    with netCDF4.Dataset(out) as ds:
        assert ds["ssh"].shape == (2, 2, 12, 16) and np.isfinite(ds["ssh"][:]).all()
