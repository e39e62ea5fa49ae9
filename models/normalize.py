"""Per-variable running statistics (Welford / Chan et al. parallel update), saved with the model.

Streams arrive in batches: each batch's mean and M2 are merged into the running ones
with the parallel form of Welford's algorithm (Chan, Golub & LeVeque 1979), which is
exact and numerically stable in float64 for any number of updates.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Normalizer"]


class Normalizer(nn.Module):
    """Running mean/variance per channel (dim 1) over ocean points.

    Works for fields (N, C, ny, nx) with an optional mask broadcastable to (N, 1, ny, nx)
    and for vectors (N, C), e.g. physical parameters. Statistics are buffers, so they
    travel in ``state_dict`` with the network; the channel names travel as extra state.
    """

    def __init__(self, names: list[str] | tuple[str, ...], eps: float = 1e-8):
        super().__init__()
        if len(names) == 0:
            raise ValueError("Normalizer.names must not be empty")
        self.names = tuple(names)
        self.eps = eps
        n = len(self.names)
        self.register_buffer("count", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("running_mean", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    # -- statistics ---------------------------------------------------------------------

    @torch.no_grad()
    def update(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Merge the statistics of ``x`` (ocean points only) into the running ones."""
        if x.shape[1] != len(self.names):
            raise ValueError(f"Normalizer for {list(self.names)} got {x.shape[1]} channels")
        x = x.detach().to(self.m2.device, torch.float64)
        weight = torch.ones_like(x[:, :1]) if mask is None else mask.to(x).expand_as(x[:, :1])
        dims = [d for d in range(x.ndim) if d != 1]
        n_b = weight.sum(dim=dims).expand(x.shape[1])
        if n_b[0] == 0:
            return
        mean_b = (x * weight).sum(dim=dims) / n_b
        m2_b = (((x - _channel(mean_b, x)) ** 2) * weight).sum(dim=dims)
        # Chan et al.: combine (n_a, mean_a, M2_a) with (n_b, mean_b, M2_b)
        n_a, n_ab = self.count, self.count + n_b
        delta = mean_b - self.running_mean
        self.running_mean += delta * n_b / n_ab
        self.m2 += m2_b + delta ** 2 * n_a * n_b / n_ab
        self.count.copy_(n_ab)

    @property
    def mean(self) -> torch.Tensor:
        return self.running_mean.float()

    @property
    def var(self) -> torch.Tensor:
        """Unbiased variance (n - 1 denominator)."""
        return (self.m2 / (self.count - 1).clamp_min(1)).float()

    @property
    def std(self) -> torch.Tensor:
        """Standard deviation, with 1 for (near-)constant channels: a parameter shared by
        every ensemble member must not blow up to inf after normalization."""
        std = self.var.sqrt()
        return torch.where(std > self.eps * (1 + self.mean.abs()), std, torch.ones_like(std))

    def freeze(self) -> None:
        self.frozen.fill_(True)

    # -- transforms ---------------------------------------------------------------------

    def normalize(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(x - mean) / std per channel; land set to 0, the mean in normalized space."""
        self._check_fitted()
        z = (x - _channel(self.mean, x).to(x)) / _channel(self.std, x).to(x)
        return z if mask is None else z * mask.to(z)

    def denormalize(self, z: torch.Tensor, mask: torch.Tensor | None = None, fill_value: float = 0.0) -> torch.Tensor:
        """Inverse of :meth:`normalize`; land set to ``fill_value`` in physical units."""
        self._check_fitted()
        x = z * _channel(self.std, z).to(z) + _channel(self.mean, z).to(z)
        return x if mask is None else torch.where(mask.to(torch.bool), x, torch.full_like(x, fill_value))

    def scale(self, z: torch.Tensor) -> torch.Tensor:
        """Multiply by std only: converts normalized increments and spreads to physical units."""
        return z * _channel(self.std, z).to(z)

    def _check_fitted(self) -> None:
        if float(self.count.min()) < 2:
            raise RuntimeError(f"Normalizer for {list(self.names)} has seen fewer than 2 points: "
                               "update() it with data before normalizing")

    # -- persistence --------------------------------------------------------------------

    def get_extra_state(self):
        return {"names": list(self.names)}

    def set_extra_state(self, state) -> None:
        names = tuple(state["names"])
        if names != self.names:
            raise ValueError(f"normalizer state is for variables {list(names)}, this model has {list(self.names)}")

    def extra_repr(self) -> str:
        return f"names={list(self.names)}"


def _channel(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-channel vector reshaped to broadcast along dim 1 of ``like``."""
    return v.reshape(1, -1, *([1] * (like.ndim - 2)))
