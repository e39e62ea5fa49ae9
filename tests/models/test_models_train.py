"""Trainer: resume, atomic checkpoints, bad input, online use, sampling API."""
import logging
import os

import pytest
import torch

from models.data import Batch, PairDataset
from models.sampling import SamplerConfig
from models.surrogate import Surrogate, SurrogateConfig
from models.synthetic import write_tiny
from models.train import TrainConfig, Trainer

VARS = ["ssh", "temp"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return [str(write_tiny(d / "a.nc", nt=10, nan_records=(3,))), str(write_tiny(d / "b.nc", nt=10, tau0=0.3, seed=1))]


@pytest.fixture
def dataset(files):
    return PairDataset(files, VARS, lag=1)


def make_trainer(spec, objective="diffusion", **train):
    cfg = SurrogateConfig(spec, objective=objective, model_channels=8, channel_mult=(1, 2))
    return Trainer(Surrogate(cfg), TrainConfig(**{"batch_size": 4, "device": "cpu", **train}))


def assert_same_state(a: Trainer, b: Trainer):
    for key in ("model", "ema"):
        sa, sb = a.state_dict()[key], b.state_dict()[key]
        for name in sa:
            if isinstance(sa[name], torch.Tensor):
                assert torch.equal(sa[name], sb[name]), f"{key}.{name}"
    assert a.step == b.step


def test_nan_samples_in_files_are_rejected_and_counted(dataset, caplog):
    # record 3 of a.nc has a NaN: pairs (2->3) and (3->4) go, 9 + 9 - 2 = 16 remain
    assert dataset.rejected == 2 and len(dataset) == 16
    assert torch.isfinite(dataset.fields[dataset.index[:, 1:]]).all()


def test_resume_gives_identical_continuation(dataset, tmp_path):
    ckpt = tmp_path / "ck.pt"
    first = make_trainer(dataset.spec)
    first.fit(dataset, 3, checkpoint=ckpt, checkpoint_every=3, progress=False)
    first.fit(dataset, 6, progress=False)
    resumed = Trainer.load(ckpt)
    assert resumed.step == 3
    resumed.fit(dataset, 6, progress=False)
    assert_same_state(first, resumed)


def test_interrupted_write_keeps_previous_checkpoint(dataset, tmp_path, monkeypatch):
    ckpt = tmp_path / "ck.pt"
    trainer = make_trainer(dataset.spec)
    trainer.fit(dataset, 2, checkpoint=ckpt, progress=False)
    before = ckpt.read_bytes()

    def crash(obj, f, *a, **k):  # half a file, then the job is killed
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(torch, "save", crash)
    trainer.fit(dataset, 3, progress=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.save(ckpt)
    monkeypatch.undo()
    assert ckpt.read_bytes() == before
    assert Trainer.load(ckpt).step == 2
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temporary left behind


def test_checkpoint_and_data_mismatch_name_both(dataset, tmp_path):
    trainer = make_trainer(dataset.spec)
    trainer.fit(dataset, 1, progress=False)
    other = str(write_tiny(tmp_path / "small.nc", nt=4, ny=8, nx=8, variables=("ssh",)))
    small = PairDataset([other], ["ssh"])
    with pytest.raises(ValueError, match=r"expects variables \['ssh', 'temp'\] on 12x16.*has variables \['ssh'\] on 8x8"):
        trainer.fit(small, 2, progress=False)
    wrong = make_trainer(small.spec)
    with pytest.raises(ValueError, match=r"checkpoint expects .*\['ssh', 'temp'\].*this model has .*\['ssh'\]"):
        wrong.load_state_dict(trainer.state_dict())


def test_files_with_different_grids_or_missing_variables_are_refused(files, tmp_path):
    other = str(write_tiny(tmp_path / "c.nc", nt=4, ny=8, nx=8))
    with pytest.raises(ValueError, match=r"12x16.*8x8"):
        PairDataset([files[1], other], VARS)
    with pytest.raises(ValueError, match=r"variable 'sst' not in data file .*b.nc.*'ssh'"):
        PairDataset([files[1]], ["sst"])


def test_online_steps_screen_nan_and_freeze_statistics(dataset, caplog):
    trainer = make_trainer(dataset.spec, norm_warmup_steps=2)
    batch = dataset.batch(torch.arange(4))
    batch.target[1, 0, 5, 5] = float("nan")
    with caplog.at_level(logging.WARNING):
        stats = trainer.train_step(batch)
    assert trainer.rejected == 1 and "rejected 1 sample" in caplog.text
    assert stats is not None and torch.isfinite(torch.tensor(stats["loss"]))
    assert trainer.model.norm_x.count[0] == 2 * 3 * dataset.mask.sum()  # 3 clean samples, target + state
    trainer.train_step(dataset.batch(torch.arange(4, 8)))
    frozen = trainer.model.norm_x.count.clone()
    trainer.train_step(dataset.batch(torch.arange(8, 12)))
    assert bool(trainer.model.norm_x.frozen) and torch.equal(trainer.model.norm_x.count, frozen)
    batch.target[:] = float("nan")
    assert trainer.train_step(batch) is None and trainer.rejected == 5


def test_on_freeze_runs_once_before_the_freezing_steps_loss_and_reaches_the_ema(dataset):
    """Data-parallel ranks pool their statistics in this hook: the step that freezes them, and the EMA
    the samples come from, must already use what the hook left."""
    trainer = make_trainer(dataset.spec, norm_warmup_steps=2)
    calls = []

    def pooled(model):
        calls.append(trainer.step)
        model.norm_x.running_mean.fill_(3.0)  # stands in for the statistics of every rank's tile

    trainer.on_freeze = pooled
    for k in range(4):
        trainer.train_step(dataset.batch(torch.arange(4 * k, 4 * k + 4)))
    assert calls == [1]  # at the second step (step + 1 >= norm_warmup_steps), once
    assert torch.all(trainer.model.norm_x.running_mean == 3.0)
    assert torch.all(trainer.ema.norm_x.running_mean == 3.0)


def test_mse_training_reduces_loss(dataset):
    torch.manual_seed(0)
    trainer = make_trainer(dataset.spec, objective="mse", lr=3e-3, lr_warmup_steps=5)
    history = trainer.fit(dataset, 80, progress=False)
    first = sum(h["loss"] for h in history[:10]) / 10
    last = sum(h["loss"] for h in history[-10:]) / 10
    assert last < 0.7 * first


def test_sample_api_shapes_land_and_determinism(dataset):
    trainer = make_trainer(dataset.spec)
    trainer.fit(dataset, 2, progress=False)
    cond = dataset.batch(torch.arange(3))
    sampler = SamplerConfig(num_steps=3)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    out = trainer.sample(cond, n=4, sampler=sampler, generator=g())
    assert out.shape == (3, 4, 2, 12, 16) and torch.isfinite(out).all()
    land = dataset.mask[0, 0] == 0
    assert torch.all(out[..., land] == trainer.model.config.fill_value)
    assert torch.equal(out, trainer.sample(cond, n=4, sampler=sampler, generator=g()))
    assert not torch.allclose(out[:, 0], out[:, 1])  # members differ
    mse = make_trainer(dataset.spec, objective="mse")
    mse.fit(dataset, 2, progress=False)
    det = mse.sample(cond, n=3)
    assert torch.equal(det[:, 0], det[:, 2])


def test_generation_task_without_state(files):
    ds = PairDataset(files, VARS, task="generate")
    trainer = Trainer(Surrogate(SurrogateConfig(ds.spec, task="generate", model_channels=8, channel_mult=(1, 2))),
                      TrainConfig(batch_size=4, device="cpu"))
    trainer.fit(ds, 2, progress=False)
    theta = torch.tensor([[0.1, 500.0]])
    out = trainer.sample(Batch(None, None, theta, ds.mask), n=2, sampler=SamplerConfig(num_steps=2))
    assert out.shape == (1, 2, 2, 12, 16)


def test_tile_training_and_full_domain_sampling(dataset):
    cfg = SurrogateConfig(dataset.spec, use_position=True, model_channels=8, channel_mult=(1, 2))
    trainer = Trainer(Surrogate(cfg), TrainConfig(batch_size=4, tile=8, device="cpu"))
    trainer.fit(dataset, 2, progress=False)
    full = dataset.batch(torch.arange(2))
    full.pos = dataset.full_position()
    assert trainer.sample(full, n=1, sampler=SamplerConfig(num_steps=2)).shape == (2, 1, 2, 12, 16)
    full.pos = None
    with pytest.raises(ValueError, match="grid_position"):
        trainer.sample(full, n=1)


def test_config_validation_names_the_field(dataset):
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="gpu7")
    with pytest.raises(ValueError, match="task"):
        SurrogateConfig(dataset.spec, task="forecast")
    with pytest.raises(ValueError, match="predict_residual"):
        SurrogateConfig(dataset.spec, task="generate", predict_residual=True)
    with pytest.raises(ValueError, match="no field"):
        SurrogateConfig.from_dict({"spec": dataset.spec, "colour": "red"})
    with pytest.raises(ValueError, match="lag"):
        PairDataset([dataset.members[0].path], VARS, lag=0)


def test_resume_with_other_surrogate_settings_names_them(tmp_path):
    """A checkpoint trained with spectral whitening cannot be resumed by a model without it: the error
    names the setting and both values (torch alone would only list tensor keys)."""
    from models.data import DataSpec

    spec = DataSpec(channels=("ssh",), params=(), ny=8, nx=8)
    base = dict(spec=spec, model_channels=8, channel_mult=(1,), num_res_blocks=1)
    saved = Trainer(Surrogate(SurrogateConfig(**base, spectral_whitening=1.0)), TrainConfig(batch_size=2))
    plain = Trainer(Surrogate(SurrogateConfig(**base)), TrainConfig(batch_size=2))
    with pytest.raises(ValueError, match=r"spectral_whitening: checkpoint 1\.0, this model 0\.0"):
        plain.load_state_dict(saved.state_dict())
