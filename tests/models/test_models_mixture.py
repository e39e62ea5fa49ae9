"""A short training run through the real precond / loss / sampler code on a 2-D Gaussian
mixture: the sampled mode weights must match the data's."""
import torch

from models.loss import EDMLoss
from models.networks import Cond, MLPNet
from models.precond import EDMPrecond
from models.sampling import SamplerConfig, edm_sampler

MEANS = torch.tensor([[-1.5, -0.5], [1.5, -0.5], [0.0, 1.5]])
WEIGHTS = torch.tensor([0.2, 0.3, 0.5])
STD = 0.15


def draw(n, g):
    labels = torch.multinomial(WEIGHTS, n, replacement=True, generator=g)
    return MEANS[labels] + STD * torch.randn(n, 2, generator=g)


def assign(x):
    return torch.cdist(x, MEANS).argmin(1)


def train_mixture(steps=1500, n_params=0, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = EDMPrecond(MLPNet(dim=2, hidden=128, n_layers=3, n_params=n_params), sigma_data=1.0)
    loss_fn = EDMLoss(P_mean=-1.0, P_std=1.4, sigma_data=1.0)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step in range(steps):
        y = draw(512, g)
        loss = loss_fn(net, y, None, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def test_training_recovers_mode_weights():
    net = train_mixture()
    g = torch.Generator().manual_seed(123)
    x = edm_sampler(net, torch.randn(4000, 2, generator=g), None, SamplerConfig(num_steps=18))
    labels = assign(x)
    freq = torch.bincount(labels, minlength=3).float() / len(x)
    assert torch.allclose(freq, WEIGHTS, atol=0.05), freq
    # samples sit on the modes, not in between: within-mode std close to the data's
    spread = torch.stack([(x[labels == k] - MEANS[k]).std(0).mean() for k in range(3)])
    assert torch.all((spread > 0.5 * STD) & (spread < 2.0 * STD)), spread


def test_mlp_conditioning_on_theta_shapes():
    net = EDMPrecond(MLPNet(dim=3, n_params=2))
    cond = Cond(theta=torch.randn(5, 2))
    assert net(torch.randn(5, 3), torch.ones(5), cond).shape == (5, 3)
