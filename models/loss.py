"""Training losses: the EDM denoising loss (Karras et al. 2022, Eq. 2, 8 and Table 1) and
the MSE loss of the deterministic baseline, both averaged over ocean points only."""
from __future__ import annotations

import torch

from .networks import Cond

__all__ = ["masked_mean", "EDMLoss", "MSELoss"]


def masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean of ``err`` over ocean points (mask 1); shape (B,).

    Dividing by the ocean count (not the grid size) keeps the loss scale independent of
    how much land a tile holds, so tiles with coasts are not down-weighted.
    """
    dims = tuple(range(1, err.ndim))
    if mask is None:
        return err.mean(dim=dims)
    mask = mask.to(err.dtype).expand_as(err)
    return (err * mask).sum(dim=dims) / mask.sum(dim=dims).clamp_min(1.0)


class EDMLoss:
    """E_{sigma, y, n} [ lambda(sigma) || D(y + n; sigma) - y ||^2 ] with ln(sigma) ~ N(P_mean, P_std^2)."""

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 1.0, masked: bool = True):
        if P_std <= 0 or sigma_data <= 0:
            raise ValueError(f"EDMLoss needs P_std > 0 and sigma_data > 0, got P_std={P_std}, sigma_data={sigma_data}")
        self.P_mean = P_mean
        self.P_std = P_std
        self.sigma_data = sigma_data
        self.masked = masked  # False: mean over every point (targets in a transformed space)

    def __call__(self, net, y: torch.Tensor, cond: Cond | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        shape = (y.shape[0],) + (1,) * (y.ndim - 1)
        # Table 1, training: ln(sigma) ~ N(P_mean, P_std^2)
        rnd_normal = torch.randn(shape, device=y.device, generator=generator)
        sigma = (rnd_normal * self.P_std + self.P_mean).exp()
        # Table 1, loss weighting: lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2
        weight = (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2
        # Eq. 2: denoise y + n with n ~ N(0, sigma^2 I)
        n = torch.randn(y.shape, device=y.device, generator=generator) * sigma
        D_yn = net(y + n, sigma.flatten(), cond)
        return weight.flatten() * masked_mean((D_yn - y) ** 2, _mask(cond, self.masked))


class MSELoss:
    """Masked mean squared error of the deterministic baseline (``Regressor``)."""

    def __init__(self, masked: bool = True):
        self.masked = masked

    def __call__(self, net, y: torch.Tensor, cond: Cond | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        pred = net(torch.zeros_like(y), torch.zeros(y.shape[0], device=y.device), cond)
        return masked_mean((pred - y) ** 2, _mask(cond, self.masked))


def _mask(cond: Cond | None, masked: bool = True) -> torch.Tensor | None:
    return None if cond is None or not masked else cond.mask
