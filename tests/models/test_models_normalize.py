"""Streaming statistics and their persistence."""
import numpy as np
import pytest
import torch

from models.normalize import Normalizer


def test_welford_streaming_equals_batch():
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[5.0, -3.0, 1e4], scale=[0.1, 2.0, 50.0], size=(97, 3)).T.reshape(3, 97, 1)
    x = torch.tensor(np.transpose(data, (1, 0, 2)))  # (97, 3, 1)
    norm = Normalizer(["a", "b", "c"])
    for chunk in torch.split(x, [1, 10, 3, 50, 33]):  # uneven chunks, one of size 1
        norm.update(chunk)
    flat = x.squeeze(-1).numpy()
    np.testing.assert_allclose(norm.running_mean.numpy(), flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), flat.var(0, ddof=1), rtol=1e-6)
    assert norm.count[0] == 97


def test_masked_fields_only_count_ocean():
    x = torch.randn(6, 2, 8, 8, dtype=torch.float64)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., :3] = 0
    x[..., :3] = 1e6  # land garbage must not enter the statistics
    norm = Normalizer(["ssh", "temp"])
    norm.update(x[:2], mask)
    norm.update(x[2:], mask)
    ocean = x[..., 3:].transpose(0, 1).reshape(2, -1)
    np.testing.assert_allclose(norm.running_mean, ocean.mean(1), rtol=1e-10)
    np.testing.assert_allclose(norm.var, ocean.var(1), rtol=1e-5)
    z = norm.normalize(x.float(), mask)
    assert torch.all(z[..., :3] == 0)
    back = norm.denormalize(z, mask, fill_value=-1.0)
    assert torch.all(back[..., :3] == -1.0)
    assert torch.allclose(back[..., 3:], x[..., 3:].float(), rtol=1e-4, atol=1e-4)


def test_constant_channel_is_not_scaled_to_infinity():
    norm = Normalizer(["tau0", "ahm"])
    norm.update(torch.tensor([[0.1, 1000.0], [0.2, 1000.0], [0.3, 1000.0]]))
    assert norm.std[1] == 1.0 and torch.isfinite(norm.normalize(torch.tensor([[0.2, 1000.0]]))).all()


def test_state_dict_round_trip_and_name_check():
    norm = Normalizer(["ssh", "temp"])
    norm.update(torch.randn(10, 2, 4, 4))
    norm.freeze()
    other = Normalizer(["ssh", "temp"])
    other.load_state_dict(norm.state_dict())
    for name in ("count", "running_mean", "m2", "frozen"):
        assert torch.equal(getattr(norm, name), getattr(other, name))
    with pytest.raises(ValueError, match=r"\['ssh', 'temp'\].*\['ssh'\]"):
        Normalizer(["ssh"]).load_state_dict(norm.state_dict())


def test_unfitted_normalizer_refuses():
    with pytest.raises(RuntimeError, match="fewer than 2"):
        Normalizer(["ssh"]).normalize(torch.zeros(1, 1, 2, 2))
