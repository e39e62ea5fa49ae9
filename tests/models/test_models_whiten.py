"""Spectral whitening (models/whiten.py): DCT, learnt spectrum, exact round trips, the
whitened sampler against an exact denoiser, and backward-compatible checkpoints."""
import math

import pytest
import torch

from models.data import Batch, DataSpec
from models.networks import Cond
from models.normalize import Normalizer
from models.sampling import SamplerConfig, edm_sampler
from models.surrogate import Surrogate, SurrogateConfig, WhitenedDenoiser
from models.whiten import SpectralWhitener, _kmag, dct2, dct_matrix, idct2

N = 16


def red_fields(n_samples: int, ny: int = N, nx: int = N, slope: float = 4.0, seed: int = 0) -> torch.Tensor:
    """(B, 2, ny, nx) fields with DCT power S(k) = (k + 1/32)^-slope (channel 1 twice as large)."""
    gen = torch.Generator().manual_seed(seed)
    amp = (_kmag(ny, nx) + 1 / 32) ** (-slope / 2)
    amp[0, 0] = 0  # zero spatial mean
    coef = torch.randn((n_samples, 2, ny, nx), generator=gen, dtype=torch.float64) * amp
    coef[:, 1] *= 2
    return idct2(coef, dct_matrix(ny, dtype=torch.float64), dct_matrix(nx, dtype=torch.float64))


def test_dct_is_orthonormal_and_a_cosine_is_one_mode():
    d = dct_matrix(12, dtype=torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(12, dtype=torch.float64), atol=1e-12)
    x = torch.cos(math.pi * (torch.arange(12, dtype=torch.float64) + 0.5) * 3 / 12)
    c = d @ x
    assert c.abs().argmax() == 3 and c[3] == pytest.approx(math.sqrt(6.0))


def test_identity_before_any_update_and_round_trip_after():
    w = SpectralWhitener(["a", "b"], N, N)
    y = torch.randn(3, 2, N, N)
    var = torch.ones(2)
    assert torch.allclose(w.whiten(y, var), y, atol=1e-5)
    w.update(red_fields(64))
    z = w.whiten(y, var)
    assert not torch.allclose(z, y, atol=1e-2)
    assert torch.allclose(w.color(z, var), y, atol=1e-4)


def test_whitened_red_fields_have_a_flat_unit_spectrum_on_any_grid():
    w = SpectralWhitener(["a", "b"], N, N)
    x = red_fields(400)
    w.update(x)
    var = x.var(dim=(0, 2, 3)).float()
    for ny, nx in ((N, N), (8, 12)):  # the training grid and a smaller tile
        test = red_fields(400, ny, nx, seed=1).float() / var.sqrt().reshape(1, -1, 1, 1)
        power = dct2(w.whiten(test, var), dct_matrix(ny), dct_matrix(nx)) ** 2
        per_mode = power.mean(0)[:, 1:, 1:]  # k = 0 rows/columns: interpolated gains, skip
        # a steep spectrum (S spans ~5 decades here) becomes flat: each mode's variance is ~1
        assert per_mode.mean().item() == pytest.approx(1.0, rel=0.15)
        assert per_mode.mean(dim=0).log10().abs().max().item() < 0.35


def test_colored_noise_has_the_data_spectrum():
    w = SpectralWhitener(["a", "b"], N, N)
    x = red_fields(400)
    w.update(x)
    var = torch.ones(2)
    noise = w.color(torch.randn(400, 2, N, N), var)
    d = dct_matrix(N)
    ratio = (dct2(noise, d, d) ** 2).mean(0)[:, 2:, 2:] / (dct2(x.float(), d, d) ** 2).mean(0)[:, 2:, 2:]
    assert ratio.mean().item() == pytest.approx(1.0, rel=0.15)


def test_whitened_sampler_reproduces_a_red_gaussian_with_the_exact_denoiser():
    """Data N(0, S) diagonal in the DCT basis, S spanning 4 decades; the network is the
    exact denoiser on z = W y. The y-space sampler (colored noise, float64, as for tiles)
    equals the z-space one (as for whole grids) mapped by W^-1, and both give S."""
    w = SpectralWhitener(["a", "b"], N, N)
    w.update(red_fields(400))
    norm = Normalizer(["a", "b"])
    norm.update(red_fields(400, seed=2))
    var = norm.var
    d = dct_matrix(N, dtype=torch.float64)
    s_y = (_kmag(N, N) + 1 / 32) ** -4.0
    s_y[0, 0] = 0
    s_y = s_y[None].repeat(2, 1, 1) * torch.tensor([1.0, 4.0], dtype=torch.float64).reshape(2, 1, 1) \
        / var.double().reshape(2, 1, 1)
    s_z = s_y * w.gains(N, N, var, "cpu").double() ** 2  # per-mode variance of z

    def exact_z(x, sigma, cond=None):
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1, 1)
        return idct2(dct2(x.double(), d, d) * s_z / (s_z + sigma ** 2), d, d)

    config = SamplerConfig(num_steps=40)  # 18 steps leave the known ~8 % variance bias of EDM's schedule
    white = torch.randn(400, 2, N, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y_direct = w.color(edm_sampler(exact_z, white, None, config), var)
    net = WhitenedDenoiser(exact_z, w, norm)
    y = edm_sampler(net, w.color(white, var), None, config, color=lambda e: w.color(e, var))
    assert (y - y_direct).abs().max().item() < 1e-6 * y_direct.abs().max().item()
    power = (dct2(y, d, d) ** 2).mean(0)
    keep = s_y > 0
    rel = (power[keep] / s_y[keep]).log10().abs()
    assert rel.mean().item() < 0.03 and rel.max().item() < 0.15  # 400 samples: ~7 % per mode


def _spec():
    return DataSpec(("ssh", "u"), ("tau0",), 12, 16)


def test_whitening_is_opt_in_and_old_checkpoints_load_unwhitened():
    d = SurrogateConfig(_spec()).to_dict()
    assert d["spectral_whitening"] == 0.0 and Surrogate(SurrogateConfig(_spec())).whitener is None
    del d["spectral_whitening"], d["whiten_floor"]
    assert SurrogateConfig.from_dict(d).spectral_whitening == 0.0
    with pytest.raises(ValueError, match="spectral_whitening"):
        SurrogateConfig(_spec(), spectral_whitening=1.5)


@pytest.mark.parametrize("objective", ["diffusion", "mse"])
def test_whitened_surrogate_forces_land_and_saves_its_spectrum(objective):
    torch.manual_seed(0)
    sur = Surrogate(SurrogateConfig(_spec(), objective=objective, model_channels=8, channel_mult=(1, 2),
                                    spectral_whitening=1.0))
    mask = torch.ones(1, 1, 12, 16)
    mask[..., :3, :4] = 0
    x0, x1 = torch.randn(6, 2, 12, 16) * mask, torch.randn(6, 2, 12, 16) * mask
    batch = Batch(target=x1, state=x0, theta=torch.rand(6, 1), mask=mask)
    sur.observe(batch)
    assert sur.whitener.fitted
    assert torch.isfinite(sur.loss(batch))
    out = sur.sample(batch, n=2, sampler=SamplerConfig(num_steps=3), generator=torch.Generator().manual_seed(0))
    assert out.shape == (6, 2, 2, 12, 16)
    assert torch.all(out[:, :, :, :3, :4] == 0)  # land forced to the fill value
    again = Surrogate(sur.config)
    again.load_state_dict(sur.state_dict())
    assert torch.equal(again.whitener.power_sum, sur.whitener.power_sum)
    cond = Cond(mask=mask)
    y = torch.randn(6, 2, 12, 16)
    assert torch.allclose(again.whiten(y), sur.whiten(y))
    assert cond.mask is mask


def test_state_whitening_is_opt_in_and_needs_whitening_and_a_state():
    d = SurrogateConfig(_spec(), spectral_whitening=1.0).to_dict()
    assert d["whiten_state"] is False
    del d["whiten_state"]  # a checkpoint from before the option
    assert SurrogateConfig.from_dict(d).whiten_state is False
    with pytest.raises(ValueError, match="whiten_state needs spectral_whitening > 0"):
        SurrogateConfig(_spec(), whiten_state=True)
    with pytest.raises(ValueError, match="task 'generate'"):
        SurrogateConfig(_spec(), task="generate", spectral_whitening=1.0, whiten_state=True)


class _Recorder(torch.nn.Module):
    """Stands in for the preconditioned network: records the conditioning state it is given."""

    sigma_min, sigma_max = 0.002, 80.0

    def __init__(self):
        super().__init__()
        self.states = []

    def forward(self, x, sigma, cond=None):
        self.states.append(cond.state.clone())
        return torch.zeros_like(x)


def test_the_network_sees_the_state_whitened_on_the_grid_it_gets():
    """Whole grid: the state the network gets is W_x applied to the normalized state, with a
    flat unit spectrum for red data. Tiles: each tile's state is whitened on its own (tile
    gains), exactly as in patch training, so tiled sampling and training agree."""
    spec = DataSpec(("a", "b"), (), N, N)
    sur = Surrogate(SurrogateConfig(spec, model_channels=8, channel_mult=(1, 2), spectral_whitening=1.0,
                                    whiten_state=True))
    x0, x1 = red_fields(400), red_fields(400, seed=1)
    batch = Batch(target=x1.float(), state=x0.float())
    sur.observe(batch)
    assert sur.state_whitener.fitted
    sur.net = rec = _Recorder()
    y = sur.whiten(sur.encode_target(batch))
    sur.loss(batch)
    seen = rec.states[-1]
    normalized = sur.norm_x.normalize(batch.state)
    expected = sur.state_whitener.whiten(normalized.double(), sur.norm_x.var).float()
    assert torch.allclose(seen, expected, atol=1e-6)
    power = (dct2(seen.double(), dct_matrix(N, dtype=torch.float64), dct_matrix(N, dtype=torch.float64)) ** 2).mean(0)
    assert power[:, 1:, 1:].mean().item() == pytest.approx(1.0, rel=0.15)  # every scale O(1), like y's whitened target
    assert y.shape == seen.shape
    rec.states.clear()
    sur.sample(batch.select(torch.arange(2)), n=1, sampler=SamplerConfig(num_steps=1), tile=8)
    crop = normalized[:2, :, 8:16, 0:8].double()
    tile_expected = sur.state_whitener.whiten(crop, sur.norm_x.var).float()
    assert any(s.shape[-1] == 8 and torch.allclose(s, tile_expected, atol=1e-6) for s in rec.states)


def test_state_whitening_round_trips_through_a_checkpoint():
    torch.manual_seed(0)
    sur = Surrogate(SurrogateConfig(_spec(), model_channels=8, channel_mult=(1, 2), spectral_whitening=1.0,
                                    whiten_state=True))
    x0, x1 = torch.randn(6, 2, 12, 16), torch.randn(6, 2, 12, 16)
    batch = Batch(target=x1, state=x0, theta=torch.rand(6, 1))
    sur.observe(batch)
    again = Surrogate(SurrogateConfig.from_dict(sur.config.to_dict()))
    again.load_state_dict(sur.state_dict())
    assert torch.equal(again.state_whitener.power_sum, sur.state_whitener.power_sum)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(sur.loss(batch, gen), again.loss(batch, torch.Generator().manual_seed(0)))


def aniso_fields(n_samples: int, ny: int = N, nx: int = N, seed: int = 0) -> torch.Tensor:
    """(B, 2, ny, nx) fields whose DCT power falls 30 times faster along y than along x (channel 0)
    and the other way round (channel 1), as v and u of a western-intensified gyre."""
    gen = torch.Generator().manual_seed(seed)
    ky = (torch.arange(ny, dtype=torch.float64) / (2 * ny))[:, None]
    kx = (torch.arange(nx, dtype=torch.float64) / (2 * nx))[None, :]
    amp = torch.stack([(30 * ky + kx + 1 / 32) ** -2.0, (ky + 30 * kx + 1 / 32) ** -2.0])
    amp[:, 0, 0] = 0
    coef = torch.randn((n_samples, 2, ny, nx), generator=gen, dtype=torch.float64) * amp
    return idct2(coef, dct_matrix(ny, dtype=torch.float64), dct_matrix(nx, dtype=torch.float64))


def _per_mode_log10(w: SpectralWhitener, x: torch.Tensor) -> torch.Tensor:
    ny, nx = x.shape[-2:]
    power = dct2(w.whiten(x, torch.ones(2)), dct_matrix(ny, dtype=x.dtype), dct_matrix(nx, dtype=x.dtype)) ** 2
    return power.mean(0)[:, 1:, 1:].log10()


def test_anisotropic_whitening_flattens_a_directional_spectrum_where_the_radial_one_cannot():
    radial, aniso = SpectralWhitener(["v", "u"], N, N), SpectralWhitener(["v", "u"], N, N, anisotropic=True)
    for w in (radial, aniso):
        w.update(aniso_fields(800))
    test = aniso_fields(800, seed=1)
    assert _per_mode_log10(radial, test).abs().max().item() > 1.0  # a radial gain misses by > 10x
    assert _per_mode_log10(aniso, test).abs().max().item() < 0.3  # 800 samples: sampling noise only
    # a smaller tile (8 x 8: on the lattice) and a grid between lattice points (8 x 12) use the same statistics
    for ny, nx, tol in ((8, 8, 0.3), (8, 12, 0.6)):
        assert _per_mode_log10(aniso, aniso_fields(800, ny, nx, seed=2)).abs().mean().item() < tol / 2
    z = aniso.whiten(test[:3], torch.ones(2))
    assert torch.allclose(aniso.color(z, torch.ones(2)), test[:3], rtol=1e-5, atol=1e-5)


def test_anisotropic_whitening_is_opt_in_and_saved_with_the_model():
    d = SurrogateConfig(_spec(), spectral_whitening=1.0).to_dict()
    assert d.pop("whiten_anisotropic") is False  # a checkpoint from before the option loads radial
    assert SurrogateConfig.from_dict(d).whiten_anisotropic is False
    with pytest.raises(ValueError, match="whiten_anisotropic needs spectral_whitening > 0"):
        SurrogateConfig(_spec(), whiten_anisotropic=True)
    sur = Surrogate(SurrogateConfig(_spec(), model_channels=8, channel_mult=(1, 2), spectral_whitening=1.0,
                                    whiten_anisotropic=True, whiten_state=True))
    assert sur.whitener.anisotropic and sur.state_whitener.anisotropic
    assert sur.whitener.power_sum.shape == (2, 18, 18)  # (channels, ky bins, kx bins) up to 0.5 cycles/point
    batch = Batch(target=torch.randn(4, 2, 12, 16), state=torch.randn(4, 2, 12, 16), theta=torch.rand(4, 1))
    sur.observe(batch)
    again = Surrogate(sur.config)
    again.load_state_dict(sur.state_dict())
    y = torch.randn(2, 2, 12, 16)
    assert torch.equal(again.whiten(y), sur.whiten(y))
