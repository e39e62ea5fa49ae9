"""EDM samplers (Karras et al. 2022): deterministic Heun (Alg. 1) and stochastic churn (Alg. 2).

The samplers only call ``net(x, sigma, cond)``; they know nothing about grids, masks
or normalization. Alg. 1 is Alg. 2 with S_churn = 0, so both run the same loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import HEUN_STEPS

__all__ = ["SamplerConfig", "sigma_steps", "edm_sampler", "heun_sampler", "churn_sampler", "nfe", "GridNoise",
           "white_noise", "tile_noise"]


@dataclass(frozen=True)
class SamplerConfig:
    """Time discretization and churn settings (Table 1 / Alg. 2 names)."""

    num_steps: int = HEUN_STEPS
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    S_churn: float = 0.0
    S_min: float = 0.0
    S_max: float = math.inf
    S_noise: float = 1.0

    def __post_init__(self):
        if int(self.num_steps) < 1:
            raise ValueError(f"SamplerConfig.num_steps must be >= 1, got {self.num_steps!r}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"SamplerConfig.sigma_min must be in (0, sigma_max), got {self.sigma_min!r}")
        if self.rho <= 0:
            raise ValueError(f"SamplerConfig.rho must be > 0, got {self.rho!r}")
        if self.S_churn < 0:
            raise ValueError(f"SamplerConfig.S_churn must be >= 0, got {self.S_churn!r}")
        if self.S_noise <= 0:
            raise ValueError(f"SamplerConfig.S_noise must be > 0, got {self.S_noise!r}")

    @property
    def nfe(self) -> int:
        return nfe(self.num_steps)


def nfe(num_steps: int) -> int:
    """Network evaluations of the Heun sampler: two per step, one on the last (sigma -> 0) step."""
    return 2 * num_steps - 1


def sigma_steps(num_steps: int, sigma_min: float, sigma_max: float, rho: float,
                dtype=torch.float64, device=None) -> torch.Tensor:
    """Eq. 5: sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, sigma_N = 0."""
    step_indices = torch.arange(num_steps, dtype=dtype, device=device)
    denom = max(num_steps - 1, 1)
    t_steps = (sigma_max ** (1 / rho) + step_indices / denom * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t_steps, torch.zeros_like(t_steps[:1])])


class GridNoise:
    """The sampler's noise source, ``draw(shape, dtype, device)``: white noise of the whole (ny, nx)
    ``grid``, optionally colored there (``color``: the whitener's W^-1, a whole-grid operator), cut to
    one tile (``rows``, ``cols``). The ranks of a decomposition that share a generator seed thus draw one
    field between them, not the same tile each, and each takes its cut of the colored field: the noise of
    an M-rank sample is, point for point, the noise of the 1-rank sample. ``grid=None``: the drawn shape
    is the whole grid (plain torch.randn from the generator, call for call)."""

    def __init__(self, generator: torch.Generator | None, grid: tuple[int, int] | None = None,
                 rows: slice = slice(None), cols: slice = slice(None), color=None):
        self.generator, self.grid, self.rows, self.cols, self.color = generator, grid, rows, cols, color

    def colored(self, color) -> "GridNoise":
        """The same draws, colored on the whole grid before the cut."""
        return GridNoise(self.generator, self.grid, self.rows, self.cols, color)

    def __call__(self, shape, dtype, device) -> torch.Tensor:
        full = tuple(shape) if self.grid is None else (*shape[:-2], *self.grid)
        eps = torch.randn(full, generator=self.generator, device=device, dtype=dtype)
        if self.color is not None:
            eps = self.color(eps)
        return eps if self.grid is None else eps[..., self.rows, self.cols].contiguous()


def white_noise(generator: torch.Generator | None = None) -> GridNoise:
    """The default noise source: torch.randn from ``generator`` with the requested shape."""
    return GridNoise(generator)


def tile_noise(generator: torch.Generator | None, grid: tuple[int, int], rows: slice, cols: slice) -> GridNoise:
    """White noise of the whole (ny, nx) ``grid``, cut to one tile (``rows``, ``cols``)."""
    return GridNoise(generator, grid, rows, cols)


@torch.no_grad()
def edm_sampler(net, latents: torch.Tensor, cond=None, config: SamplerConfig = SamplerConfig(),
                generator: torch.Generator | None = None, color=None, noise=None) -> torch.Tensor:
    """Alg. 2 (stochastic sampler with churn); with S_churn = 0 it is exactly Alg. 1.

    ``latents`` are unit-scale noise draws with the sample shape; the sampler's own
    arithmetic runs in the latents' dtype (float64 latents give an exact reference).
    ``color``: maps white noise to the noise the denoiser was trained with (the churn
    noise); the latents must already be colored. The ODE dx/dsigma = (x - D(x))/sigma
    holds for any fixed noise covariance. ``noise``: where the churn noise comes from
    (white_noise(generator) by default; tile_noise for one tile of a decomposed grid).
    """
    noise = noise or white_noise(generator)
    c = config
    t_steps = sigma_steps(c.num_steps, c.sigma_min, c.sigma_max, c.rho, dtype=latents.dtype, device=latents.device)
    # Alg. 2, line 1: x_0 ~ N(0, sigma_0^2 I)
    x_next = latents * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        # Alg. 2, lines 4-6: temporarily raise the noise level, t_hat = t_i + gamma_i t_i
        gamma = min(c.S_churn / c.num_steps, math.sqrt(2) - 1) if c.S_min <= t_cur <= c.S_max else 0.0
        t_hat = t_cur + gamma * t_cur
        if gamma > 0:
            eps = noise(x_cur.shape, x_cur.dtype, x_cur.device)
            eps = eps if color is None else color(eps)
            x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * c.S_noise * eps
        else:
            x_hat = x_cur
        # Alg. 2, lines 7-8: Euler step from t_hat to t_{i+1}, d = (x - D(x; t)) / t
        denoised = net(x_hat, t_hat, cond).to(x_hat.dtype)
        d_cur = (x_hat - denoised) / t_hat
        x_next = x_hat + (t_next - t_hat) * d_cur
        # Alg. 2, lines 9-11: second-order (Heun) correction unless t_{i+1} = 0
        if i < c.num_steps - 1:
            denoised = net(x_next, t_next, cond).to(x_hat.dtype)
            d_prime = (x_next - denoised) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def heun_sampler(net, latents: torch.Tensor, cond=None, num_steps: int = 18, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """Alg. 1: deterministic second-order sampler of the probability-flow ODE (2N - 1 NFE)."""
    config = SamplerConfig(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
    return edm_sampler(net, latents, cond, config)


def churn_sampler(net, latents: torch.Tensor, cond=None, num_steps: int = 18, S_churn: float = 40.0,
                  S_min: float = 0.05, S_max: float = 50.0, S_noise: float = 1.003, sigma_min: float = 0.002,
                  sigma_max: float = 80.0, rho: float = 7.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Alg. 2: stochastic sampler; defaults are the paper's ImageNet-64 settings (Table 5)."""
    config = SamplerConfig(num_steps=num_steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                           S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise)
    return edm_sampler(net, latents, cond, config, generator)
