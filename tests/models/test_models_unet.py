"""U-Net: shapes on odd grids, masks, conditioning paths, tiles."""
import pytest
import torch

from models.data import grid_position
from models.networks import Cond, UNet, UNetConfig, count_parameters
from models.precond import EDMPrecond, Regressor


def small(**kw):
    base = dict(in_channels=2, out_channels=2, cond_channels=2, n_params=3, model_channels=8, channel_mult=(1, 2, 2))
    return UNetConfig(**{**base, **kw})


def cond_for(b, ny, nx, mask=None, **kw):
    return Cond(mask=mask, state=torch.randn(b, 2, ny, nx), theta=torch.randn(b, 3), **kw)


@pytest.mark.parametrize("ny,nx", [(16, 16), (13, 21), (1, 7), (33, 5)])
def test_any_grid_size_round_trips(ny, nx):
    torch.manual_seed(0)
    net = UNet(small())
    for p in net.parameters():  # zero-init output would hide shape bugs behind zeros
        torch.nn.init.normal_(p, std=0.05)
    out = net(torch.randn(2, 2, ny, nx), torch.zeros(2), cond_for(2, ny, nx))
    assert out.shape == (2, 2, ny, nx) and torch.isfinite(out).all()


def test_land_is_forced_to_zero_in_normalized_space():
    mask = torch.ones(1, 1, 12, 10)
    mask[..., :4, :3] = 0
    net = EDMPrecond(UNet(small()))
    D = net(torch.randn(3, 2, 12, 10), torch.full((3,), 2.0), cond_for(3, 12, 10, mask))
    assert torch.all(D[..., :4, :3] == 0) and D[..., 5:, 5:].abs().sum() > 0
    R = Regressor(UNet(small()))
    assert torch.all(R(torch.randn(3, 2, 12, 10), None, cond_for(3, 12, 10, mask))[..., :4, :3] == 0)


def test_output_depends_on_each_conditioning_input():
    torch.manual_seed(0)
    net = UNet(small(pos_channels=2))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, c_noise = torch.randn(1, 2, 8, 8), torch.zeros(1)
    pos = grid_position(0, 0, 8, 8, 8, 8)[None]
    base = Cond(mask=torch.ones(1, 1, 8, 8), state=torch.randn(1, 2, 8, 8), theta=torch.randn(1, 3), pos=pos)
    ref = net(x, c_noise, base)
    changes = {"state": Cond(base.mask, base.state + 1, base.theta, pos),
               "theta": Cond(base.mask, base.state, base.theta + 1, pos),
               "pos": Cond(base.mask, base.state, base.theta, pos.flip(-1)),
               "mask": Cond(torch.zeros_like(base.mask), base.state, base.theta, pos)}
    for name, cond in changes.items():
        assert not torch.allclose(net(x, c_noise, cond), ref), name
    assert not torch.allclose(net(x, torch.ones(1), base), ref), "noise level"


def test_missing_condition_is_a_clear_error():
    net = UNet(small())
    with pytest.raises(ValueError, match="Cond.state"):
        net(torch.randn(1, 2, 8, 8), torch.zeros(1), Cond(theta=torch.randn(1, 3)))
    with pytest.raises(ValueError, match="theta"):
        net(torch.randn(1, 2, 8, 8), torch.zeros(1), Cond(state=torch.randn(1, 2, 8, 8)))


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="model_channels"):
        small(model_channels=0)
    with pytest.raises(ValueError, match="pos_channels"):
        small(pos_channels=3)
    with pytest.raises(ValueError, match="channel_mult"):
        small(channel_mult=())
    with pytest.raises(ValueError, match="dropout"):
        small(dropout=1.5)


def test_default_size_is_small_and_depth_sets_padding():
    net = UNet(UNetConfig(in_channels=4, out_channels=4, cond_channels=4, n_params=5))
    assert count_parameters(net) < 1.5e6  # trains on a 2-core CPU
    deep = UNet(small(channel_mult=(1, 1, 1, 1)))  # pads 10 -> 16
    assert deep(torch.randn(1, 2, 10, 10), torch.zeros(1), cond_for(1, 10, 10)).shape == (1, 2, 10, 10)


def test_tile_positions_are_global():
    full = grid_position(0, 0, 16, 8, 16, 8)
    tile = grid_position(4, 2, 5, 3, 16, 8)
    assert torch.equal(tile, full[:, 2:5, 4:9])
    assert full[0, 0, 0] == -1 and full[0, 0, -1] == 1 and full[1, -1, 0] == 1


def test_ensemble_layout_of_cond():
    c = cond_for(2, 4, 4, mask=torch.ones(1, 1, 4, 4))
    r = c.repeat_interleave(3)
    assert r.state.shape[0] == 6 and r.mask.shape[0] == 1
    assert torch.equal(r.state[3], c.state[1])


def test_tiled_denoiser_blends_exactly_for_local_nets():
    """A pointwise denoiser gives the same result tiled or not: weights sum to one, every
    point is covered, and each tile sees its own crop of mask, state and position."""
    from models.tiling import TiledDenoiser, tile_origins

    def pointwise(x, sigma, cond):
        return (x * 0.5 + cond.state + cond.pos[:, :1]) * cond.mask

    x = torch.randn(2, 1, 37, 50)
    cond = Cond(mask=(torch.rand(1, 1, 37, 50) > 0.2).float(), state=torch.randn(2, 1, 37, 50),
                pos=grid_position(0, 0, 50, 37, 50, 37)[None])
    tiled = TiledDenoiser(pointwise, tile=16, overlap=4)
    assert torch.allclose(tiled(x, 1.0, cond), pointwise(x, 1.0, cond), atol=1e-6)
    assert tile_origins(50, 16, 4) == [0, 12, 24, 34] and tile_origins(10, 16, 4) == [0]
    with pytest.raises(ValueError, match="overlap"):
        TiledDenoiser(pointwise, tile=8, overlap=8)
