"""EDM preconditioning (Karras et al. 2022, Eq. 7 and Table 1) and the MSE baseline wrapper.

Both wrappers expose the same call ``net(x, sigma, cond) -> D_x``: samplers, losses
and the worker runtime never need to know which one they hold.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from .networks import Cond

__all__ = ["EDMPrecond", "Regressor", "autocast_for"]


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (tensor cores); plain fp32 elsewhere, where bf16 is slow."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _as_column(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """sigma as (B, 1, ..., 1) so it broadcasts over any sample shape (fields or vectors)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def _apply_land(D_x: torch.Tensor, cond: Cond | None) -> torch.Tensor:
    # Land is 0 in normalized space; forcing it here keeps the ODE exact on land
    # (x -> 0 as sigma -> 0) and makes the masked loss see only ocean error.
    if cond is None or cond.mask is None:
        return D_x
    return D_x * cond.mask.to(D_x.dtype)


class EDMPrecond(nn.Module):
    """Denoiser D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) with the EDM choices."""

    def __init__(self, model: nn.Module, sigma_data: float = 1.0, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, force_land: bool = True):
        super().__init__()
        if not 0 < sigma_min < sigma_max or sigma_data <= 0:
            raise ValueError(f"EDMPrecond needs 0 < sigma_min < sigma_max and sigma_data > 0, "
                             f"got sigma_min={sigma_min}, sigma_max={sigma_max}, sigma_data={sigma_data}")
        self.model = model
        self.sigma_data = float(sigma_data)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.force_land = force_land  # False when the caller works in a transformed space

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        x = x.to(torch.float32)
        sigma = _as_column(sigma, x)
        sigma_data = self.sigma_data
        # Table 1, "Ours" column: unit-variance network input and target at every sigma.
        c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
        c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2).sqrt()
        c_in = 1 / (sigma_data ** 2 + sigma ** 2).sqrt()
        c_noise = sigma.log() / 4
        # Eq. 7: D_theta(x; sigma) = c_skip(sigma) x + c_out(sigma) F_theta(c_in(sigma) x; c_noise(sigma))
        with autocast_for(x.device):
            F_x = self.model(c_in * x, c_noise.flatten(), cond)
        D_x = c_skip * x + c_out * F_x.to(torch.float32)
        return _apply_land(D_x, cond) if self.force_land else D_x


class Regressor(nn.Module):
    """Deterministic baseline with the denoiser's call convention.

    ``net(x, sigma, cond)`` ignores x and sigma and returns the MSE-optimal prediction,
    so one call of any sampler's final step gives the baseline's answer. The backbone
    still receives a (zero) noisy-state input so the same U-Net config serves both.
    """

    sigma_min = 0.0
    sigma_max = 0.0

    def __init__(self, model: nn.Module, force_land: bool = True):
        super().__init__()
        self.model = model
        self.force_land = force_land

    def forward(self, x: torch.Tensor, sigma=None, cond: Cond | None = None) -> torch.Tensor:
        x = torch.zeros_like(x, dtype=torch.float32)
        c_noise = torch.zeros(x.shape[0], device=x.device)
        with autocast_for(x.device):
            out = self.model(x, c_noise, cond)
        out = out.to(torch.float32)
        return _apply_land(out, cond) if self.force_land else out
