"""The networks of neural posterior estimation (models/sbi.py): a summary of the
observation and a conditional mixture density over the unbounded parameters.

- ``FieldSummary``: a small CNN for masked fields (N, C, ny, nx). Land is zeroed
  before every convolution and the features are pooled over ocean points only
  (masked mean and standard deviation), so the summary ignores land and does not
  depend on the grid size.  The masked mean/std of the raw (normalized) channels
  are passed alongside: amplitudes are what most ocean parameters set.
- ``VectorSummary``: a given summary vector (N, F), used as it is.
- ``MixtureDensity``: K full-covariance Gaussians whose weights, means and
  Cholesky factors are functions of the summary (Bishop 1994; the estimator of
  Papamakarios & Murray 2016).  Exact ``log_prob`` and one-shot ``sample``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FieldSummary", "VectorSummary", "MixtureDensity", "masked_moments"]

MIN_SCALE = 1e-3  # smallest diagonal of a Cholesky factor (unbounded, whitened units)


def masked_moments(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean and standard deviation of every channel over the points where ``mask`` is 1: (N, 2 C)."""
    w = mask.expand_as(x[:, :1])
    n = w.sum(dim=(2, 3)).clamp_min(1.0)
    mean = (x * w).sum(dim=(2, 3)) / n
    var = (((x - mean[..., None, None]) ** 2) * w).sum(dim=(2, 3)) / n
    return torch.cat([mean, (var + 1e-8).sqrt()], dim=1)


class FieldSummary(nn.Module):
    """Masked CNN summary of a field (N, C, ny, nx) -> (N, out_dim)."""

    def __init__(self, channels: int, width: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.head = nn.Sequential(nn.Linear(2 * (width + channels), out_dim), nn.GELU())
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = mask.to(x)
        h = nn.functional.gelu(self.conv1(x * mask)) * mask
        h = nn.functional.gelu(self.conv2(h)) * mask
        return self.head(torch.cat([masked_moments(h, mask), masked_moments(x, mask)], dim=1))


class VectorSummary(nn.Module):
    """A summary vector given by the user: (N, F) passed through."""

    def __init__(self, features: int):
        super().__init__()
        self.out_dim = features

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x


class MixtureDensity(nn.Module):
    """q(z | h): a mixture of ``components`` full-covariance Gaussians in ``dim`` dimensions."""

    def __init__(self, features: int, dim: int, components: int, hidden: int):
        super().__init__()
        self.dim, self.k = dim, components
        self.n_tril = dim * (dim + 1) // 2
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.out = nn.Linear(hidden, components * (1 + dim + self.n_tril))
        self.register_buffer("tril", torch.tril_indices(dim, dim), persistent=False)

    def parameters_of(self, h: torch.Tensor):
        """Log-weights (N, K), means (N, K, D) and Cholesky factors (N, K, D, D) of the mixture."""
        out = self.out(self.body(h))
        n, k, d = h.shape[0], self.k, self.dim
        logits, means, raw = out.split([k, k * d, k * self.n_tril], dim=1)
        scale = torch.zeros(n, k, d, d, dtype=h.dtype, device=h.device)
        scale[:, :, self.tril[0], self.tril[1]] = raw.reshape(n, k, self.n_tril)
        diag = torch.diagonal(scale, dim1=-2, dim2=-1)
        scale = scale - torch.diag_embed(diag) + torch.diag_embed(nn.functional.softplus(diag) + MIN_SCALE)
        return torch.log_softmax(logits, dim=1), means.reshape(n, k, d), scale

    def log_prob(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log q(z | h) for z (N, D) and summaries h (N, F): (N,)."""
        logw, mu, scale = self.parameters_of(h)
        diff = (z[:, None, :] - mu).unsqueeze(-1)                      # (N, K, D, 1)
        white = torch.linalg.solve_triangular(scale, diff, upper=False).squeeze(-1)
        log_det = torch.log(torch.diagonal(scale, dim1=-2, dim2=-1)).sum(-1)
        comp = -0.5 * (white ** 2).sum(-1) - log_det - 0.5 * self.dim * math.log(2 * math.pi)
        return torch.logsumexp(logw + comp, dim=1)

    @torch.no_grad()
    def sample(self, n: int, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws for each summary in h (B, F): (n, B, D); ``generator`` is a CPU generator."""
        logw, mu, scale = self.parameters_of(h)
        b = h.shape[0]
        # random numbers from a CPU generator (reproducible on any device), then moved to h's device
        comp = torch.multinomial(logw.exp().cpu(), n, replacement=True, generator=generator).T.to(h.device)
        eps = torch.randn(n, b, self.dim, 1, generator=generator, dtype=h.dtype).to(h.device)   # (n, B, D, 1)
        idx = torch.arange(b, device=h.device)
        return mu[idx, comp] + (scale[idx, comp] @ eps).squeeze(-1)
