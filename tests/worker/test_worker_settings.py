"""The worker's config sections: validated on creation, unknown names raise naming file, section, key."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from worker_fixtures import write_config

from bridge.config.config import load_config
from bridge.worker.settings import settings_markdown, worker_settings
from bridge.worker.tunnel import Schedule, channel_names
from models.settings import ConfigError


def settings_of(tmp_path, extra: str = "", **kw):
    return worker_settings(load_config(write_config(tmp_path, extra=extra, **kw)))


def test_defaults_and_values(tmp_path):
    s = settings_of(tmp_path)
    assert s.train.batch_size == 4 and s.buffer.kind == "reservoir" and s.buffer.capacity == 64
    assert s.model.model_channels == 8 and s.model.channel_mult == (1, 2)
    assert s.ensemble.levels == (0.1, 0.5, 0.9)


def test_unknown_key_names_file_section_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"deploy.toml: \[model\] unknown key 'widht'"):
        settings_of(tmp_path, extra="widht = 3")


def test_unknown_worker_section(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "\n[worker.trian]\nlr = 1e-3\n")
    with pytest.raises(ConfigError, match=r"unknown section \[worker.trian\]"):
        worker_settings(load_config(path))


def test_bad_value_and_bad_choice(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('kind = "reservoir"', 'kind = "lifo"'))
    with pytest.raises(ConfigError, match=r"\[worker.buffer\] key 'kind' has invalid value 'lifo'"):
        worker_settings(load_config(path))


def test_spinup_needs_a_generator_checkpoint(tmp_path):
    path = write_config(tmp_path, modes=("train",))
    cfg = load_config(path)
    object.__setattr__(cfg.worker, "modes", ("train", "spinup"))
    with pytest.raises(ConfigError, match=r"\[worker.spinup\] checkpoint is not set"):
        worker_settings(cfg)


def test_schedule_follows_the_gyre_protocol(tmp_path):
    cfg = load_config(write_config(tmp_path, steps=12, freq=4, emulate=True, modes=("train", "emulate")))
    s = Schedule.from_config(cfg)
    assert list(s.steps) == list(range(0, 13))
    assert s.state_steps() == [0, 4, 8, 12]
    assert [kt for kt in s.steps if s.asks_emulated(kt)] == [4, 8, 12]
    assert channel_names(cfg) == ("ssh", "u", "v", "temp")


def test_reference_lists_every_section():
    text = settings_markdown()
    for name in ("[worker.train]", "[worker.buffer]", "[worker.emulate]", "[worker.infer]", "[worker.checkpoint]",
                 "[model]"):
        assert name in text


def test_readme_key_reference_is_current():
    readme = (Path(__file__).parents[2] / "bridge" / "worker" / "README.md").read_text()
    assert settings_markdown() in readme, "regenerate the Keys section of bridge/worker/README.md"


def test_emulator_period_must_match_the_state_period(tmp_path):
    path = write_config(tmp_path, freq=4, emulate=True, modes=("train", "emulate"))
    path.write_text(path.read_text().replace('direction = "worker_to_ocean"\nfreq = 4', 'direction = "worker_to_ocean"\nfreq = 8'))
    with pytest.raises(ConfigError, match=r"mode 'emulate' needs the '_emu' fields' freq \(8\)"):
        worker_settings(load_config(path))


def test_transport_side_imports_no_torch_and_starts_no_mpi():
    """The tunnel and the settings (the coupling side) never import torch; importing starts nothing."""
    import subprocess
    import sys
    code = ("import sys, bridge.worker, bridge.worker.tunnel, bridge.worker.settings; "
            "print('torch' in sys.modules, 'mpi4py.MPI' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout.split()
    assert out == ["False", "False"]


def test_infer_mode_needs_parameters_and_an_observation(tmp_path):
    cfg = load_config(write_config(tmp_path, parameters=False))
    object.__setattr__(cfg.worker, "modes", ("train", "infer"))
    with pytest.raises(ConfigError, match=r"'infer' but the config has no \[\[parameters\]\]"):
        worker_settings(cfg)
    cfg = load_config(write_config(tmp_path / "p"))
    object.__setattr__(cfg.worker, "modes", ("train", "infer"))
    with pytest.raises(ConfigError, match=r"\[worker.infer\] observation is not set"):
        worker_settings(cfg)


def test_spectral_whitening_reaches_the_surrogate(tmp_path):
    from bridge.worker.engine import build_trainer
    from models.data import DataSpec

    s = settings_of(tmp_path, extra="spectral_whitening = 1.0")
    spec = DataSpec(channels=("ssh",), params=(), ny=8, nx=8)
    trainer = build_trainer(spec, s, "cpu", use_position=False, lag=1)
    assert trainer.model.config.spectral_whitening == 1.0 and trainer.model.whitener is not None
    plain = build_trainer(spec, settings_of(tmp_path / "plain"), "cpu", use_position=False, lag=1)
    assert plain.model.whitener is None


def test_whiten_state_needs_whitening_and_reaches_the_surrogate(tmp_path):
    from bridge.worker.engine import build_trainer
    from models.data import DataSpec

    with pytest.raises(ConfigError, match=r"\[model\] whiten_state = true needs spectral_whitening > 0"):
        settings_of(tmp_path / "bad", extra="whiten_state = true")
    s = settings_of(tmp_path, extra="spectral_whitening = 0.5\nwhiten_state = true")
    trainer = build_trainer(DataSpec(channels=("ssh",), params=(), ny=8, nx=8), s, "cpu", use_position=False, lag=1)
    assert trainer.model.config.whiten_state and trainer.model.config.spectral_whitening == 0.5


def test_emulator_churn_reaches_the_sampler(tmp_path):
    """The same seed gives the same samples; churn > 0 (Alg. 2) gives other ones than Heun (churn 0)."""
    import numpy as np
    import torch

    from bridge.partition import BoxPartition
    from bridge.worker.engine import Engine, build_trainer
    from bridge.worker.settings import EmulateSettings, ModelSettings, TrainSettings, WorkerSettings
    from models.data import DataSpec

    torch.manual_seed(0)
    settings = WorkerSettings(train=TrainSettings(batch_size=2, norm_warmup_steps=1),
                              model=ModelSettings(model_channels=4, levels=1))
    assert EmulateSettings(churn=5.0).churn == 5.0
    trainer = build_trainer(DataSpec(("ssh",), ("tau0",), 8, 8), settings, "cpu", False, 1)
    engine = Engine(trainer, BoxPartition(8, 8, 0, 0, 8, 8), np.ones((8, 8)), False)
    rng = np.random.default_rng(0)
    engine.train([(0, np.ones(1, np.float32), rng.random((1, 8, 8), np.float32), rng.random((1, 8, 8), np.float32))
                  for _ in range(2)])
    x, theta = rng.random((1, 8, 8)), np.ones(1)
    heun = engine.emulate(x, theta, 2, 4, seed=1)
    assert np.array_equal(heun, engine.emulate(x, theta, 2, 4, seed=1, churn=0.0))
    churned = engine.emulate(x, theta, 2, 4, seed=1, churn=5.0)
    assert np.array_equal(churned, engine.emulate(x, theta, 2, 4, seed=1, churn=5.0))
    assert not np.allclose(churned, heun)
    high = engine.emulate(x, theta, 2, 4, seed=1, churn=5.0, churn_window=(1.0, math.inf))  # churn from sigma 1 up
    assert not np.allclose(high, heun) and not np.allclose(high, churned)
    nowhere = engine.emulate(x, theta, 2, 4, seed=1, churn=5.0, churn_window=(0.0, 0.0))  # no step in the window
    assert np.array_equal(nowhere, heun)


def test_emulator_tiles_of_a_decomposed_grid_share_one_noise_field():
    """Worker ranks emulate with the same seed; each rank's sampler draws its band's cut of one
    whole-grid noise field, so two bands do not start from the same noise."""
    import numpy as np
    import torch

    from bridge.partition import BoxPartition
    from bridge.worker.engine import Engine, build_trainer
    from bridge.worker.settings import ModelSettings, TrainSettings, WorkerSettings
    from models.bands import BandLayout, RankBand
    from models.data import DataSpec

    settings = WorkerSettings(train=TrainSettings(batch_size=2, norm_warmup_steps=1),
                              model=ModelSettings(model_channels=4, levels=1))
    trainer = build_trainer(DataSpec(("ssh",), ("tau0",), 8, 8), settings, "cpu", True, 1)
    drawn = {}

    def record(batch, n, sampler, generator, bands):  # what the sampler would draw first: the latents
        drawn[len(drawn)] = bands.noise(generator)((n, 1, 4, 8), torch.float32, "cpu")
        return torch.zeros((1, n, 1, 4, 8))

    trainer.step = 1  # trained: emulate samples instead of answering with persistence
    trainer.sample = record
    layout = BandLayout(8, 8, [(0, 4), (4, 4)], (4, 8))
    for rank, j0 in enumerate((0, 4)):
        engine = Engine(trainer, BoxPartition(8, 8, 0, j0, 8, 4), np.ones((8, 8)), True,
                        bands=RankBand(layout, rank, timeout_s=1.0))
        engine.emulate(np.zeros((1, 4, 8)), np.ones(1), 2, 4, seed=11)
    whole = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(11))
    assert torch.equal(drawn[0], whole[..., :4, :]) and torch.equal(drawn[1], whole[..., 4:, :])


def test_infer_estimator_key_is_checked(tmp_path):
    from bridge.worker.settings import InferSettings
    from models.settings import from_table

    assert InferSettings().estimator == "nsf"
    where = {"where": "x.toml: [worker.infer]", "base_dir": tmp_path}
    assert from_table(InferSettings, {"estimator": "mixture"}, **where).estimator == "mixture"
    with pytest.raises(ConfigError, match=r"\[worker.infer\] key 'estimator' has invalid value 'flow'"):
        from_table(InferSettings, {"estimator": "flow"}, **where)
