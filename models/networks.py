"""Backbones: a small conditional U-Net for ocean fields and an MLP for low-dimensional data.

Both follow the call convention expected by :mod:`models.precond`:
``model(x_in, c_noise, cond) -> F_x`` where ``x_in = c_in * x`` is the scaled noisy
input, ``c_noise`` the transformed noise level (Karras et al. 2022, Table 1) and
``cond`` a :class:`Cond` bundling everything the output is conditioned on.

The U-Net follows the layout of NVlabs/edm ``SongUNet`` (residual blocks, skip
connections, noise embedding injected in every block) but is stripped to what a
CPU with two cores can train: no attention by default, few channels, shallow depth.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Cond", "UNetConfig", "UNet", "MLPNet", "PositionalEmbedding", "count_parameters"]


@dataclass
class Cond:
    """What a sample is conditioned on. Every tensor is already normalized.

    mask:  (B|1, 1, ny, nx), 1 on ocean and 0 on land; ``None`` means all ocean.
    state: (B, Cs, ny, nx), the previous state (emulation) or initial state (generation).
    theta: (B, P), physical parameters.
    pos:   (B|1, 2, ny, nx), the tile's global coordinates in [-1, 1] (patch training).
    """

    mask: torch.Tensor | None = None
    state: torch.Tensor | None = None
    theta: torch.Tensor | None = None
    pos: torch.Tensor | None = None

    def _map(self, fn) -> "Cond":
        return Cond(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                       for f in fields(self)})

    def to(self, *args, **kwargs) -> "Cond":
        return self._map(lambda t: t.to(*args, **kwargs))

    def repeat_interleave(self, n: int) -> "Cond":
        """Each condition repeated ``n`` times along the batch: the layout of an ensemble."""
        return self._map(lambda t: t.repeat_interleave(n, dim=0) if t.shape[0] > 1 else t)


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class UNetConfig:
    """Sizes of the U-Net. ``depth = len(channel_mult) - 1`` halvings of the grid."""

    in_channels: int
    out_channels: int
    cond_channels: int = 0  # channels of Cond.state (0: unconditional on a state)
    n_params: int = 0  # length of Cond.theta (0: no parameter conditioning)
    pos_channels: int = 0  # 2 when the tile's global position is an input
    model_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    dropout: float = 0.0
    emb_mult: int = 4  # embedding width = emb_mult * model_channels

    def __post_init__(self):
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        for name in ("in_channels", "out_channels", "model_channels", "num_res_blocks", "emb_mult"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"UNetConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("cond_channels", "n_params"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"UNetConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.pos_channels not in (0, 2):
            raise ValueError(f"UNetConfig.pos_channels must be 0 or 2, got {self.pos_channels!r}")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError(f"UNetConfig.channel_mult must be non-empty positive ints, got {self.channel_mult!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"UNetConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def depth(self) -> int:
        return len(self.channel_mult) - 1


# ----------------------------------------------------------------------------- layers


class PositionalEmbedding(nn.Module):
    """Sinusoidal embedding of the scalar c_noise (NVlabs/edm ``PositionalEmbedding``)."""

    def __init__(self, num_channels: int, max_positions: int = 10000):
        super().__init__()
        self.num_channels = num_channels
        self.max_positions = max_positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        freqs = torch.arange(self.num_channels // 2, dtype=torch.float32, device=x.device)
        freqs = (1 / self.max_positions) ** (freqs / (self.num_channels // 2))
        x = x.reshape(-1, 1).float() * freqs.reshape(1, -1)
        return torch.cat([x.cos(), x.sin()], dim=1)


def _groups(channels: int) -> int:
    """Largest group count <= 8 dividing ``channels``: small nets keep several channels per group."""
    return max(g for g in range(1, 9) if channels % g == 0)


class ResBlock(nn.Module):
    """Residual block with adaptive group norm: the embedding (noise level + θ) sets a
    per-channel scale and shift after the second norm, i.e. FiLM conditioning."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm0 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.affine = nn.Linear(emb_dim, 2 * out_ch)
        self.norm1 = nn.GroupNorm(_groups(out_ch), out_ch, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        # Zero-initialized last conv: every block starts as the identity, which keeps
        # deep stacks stable at the start of training (as in NVlabs/edm, init_zero).
        nn.init.zeros_(self.conv1.weight)
        nn.init.zeros_(self.conv1.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(F.silu(self.norm0(x)))
        scale, shift = self.affine(emb).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        h = F.silu(self.norm1(h) * (1 + scale) + shift)
        h = self.conv1(self.dropout(h))
        return self.skip(x) + h


class Embedding(nn.Module):
    """Noise level and physical parameters embedded together into one vector per sample."""

    def __init__(self, model_channels: int, n_params: int, emb_dim: int):
        super().__init__()
        self.noise = PositionalEmbedding(model_channels)
        self.theta = nn.Linear(n_params, model_channels) if n_params else None
        width = model_channels * (2 if n_params else 1)
        self.mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU())

    def forward(self, c_noise: torch.Tensor, theta: torch.Tensor | None, batch: int) -> torch.Tensor:
        emb = self.noise(c_noise.reshape(-1).expand(batch) if c_noise.numel() == 1 else c_noise)
        if self.theta is not None:
            if theta is None:
                raise ValueError("this network is conditioned on theta but Cond.theta is None")
            emb = torch.cat([emb, self.theta(theta.float()).expand(batch, -1)], dim=1)
        return self.mlp(emb)


# ----------------------------------------------------------------------------- U-Net


def _expand_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    return t.expand(batch, *t.shape[1:]) if t.shape[0] == 1 else t


class UNet(nn.Module):
    """U-Net over (channels, ny, nx) fields of any size.

    Inputs are the noisy state, the conditioning state, the land mask and the optional
    global position, concatenated as channels. The grid is zero-padded up to a multiple
    of ``2**depth`` (padding counts as land) and the output is cropped back.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = c = config
        emb_dim = c.emb_mult * c.model_channels
        self.embed = Embedding(c.model_channels, c.n_params, emb_dim)
        n_in = c.in_channels + c.cond_channels + 1 + c.pos_channels  # +1: land mask
        self.conv_in = nn.Conv2d(n_in, c.model_channels, 3, padding=1)

        widths = [c.model_channels * m for m in c.channel_mult]
        self.down = nn.ModuleList()
        skips, ch = [c.model_channels], c.model_channels
        for level, width in enumerate(widths):
            if level > 0:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
            for _ in range(c.num_res_blocks):
                self.down.append(ResBlock(ch, width, emb_dim, c.dropout))
                ch = width
                skips.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, c.dropout), ResBlock(ch, ch, emb_dim, c.dropout)])
        self.up = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(c.num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), width, emb_dim, c.dropout))
                ch = width
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.norm_out = nn.GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, c.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _inputs(self, x: torch.Tensor, cond: Cond | None) -> torch.Tensor:
        c, batch = self.config, x.shape[0]
        cond = cond or Cond()
        mask = torch.ones_like(x[:, :1]) if cond.mask is None else _expand_batch(cond.mask, batch)
        parts = [x, mask.to(x.dtype)]
        if c.cond_channels:
            if cond.state is None or cond.state.shape[1] != c.cond_channels:
                raise ValueError(f"this network expects Cond.state with {c.cond_channels} channels")
            parts.append(_expand_batch(cond.state, batch).to(x.dtype))
        if c.pos_channels:
            if cond.pos is None:
                raise ValueError("this network expects the tile position Cond.pos (2 channels)")
            parts.append(_expand_batch(cond.pos, batch).to(x.dtype))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: Cond | None = None) -> torch.Tensor:
        ny, nx = x.shape[-2:]
        multiple = 2 ** self.config.depth
        # Zero padding == land (mask channel 0), so the net sees a coast, not a fake ocean.
        pad = (0, (-nx) % multiple, 0, (-ny) % multiple)
        h = F.pad(self._inputs(x, cond), pad)
        emb = self.embed(c_noise, None if cond is None else cond.theta, x.shape[0])
        h = self.conv_in(h)
        skips = [h]
        for block in self.down:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb) if isinstance(block, ResBlock) else block(h)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return h[..., :ny, :nx]


# ----------------------------------------------------------------------------- MLP


class MLPNet(nn.Module):
    """Denoiser backbone for vectors (B, dim): analytic tests and low-dimensional
    targets such as parameter posteriors. Conditions on Cond.theta by concatenation."""

    def __init__(self, dim: int, hidden: int = 128, n_layers: int = 3, n_params: int = 0, emb_dim: int = 32):
        super().__init__()
        if min(dim, hidden, n_layers, emb_dim) < 1 or n_params < 0:
            raise ValueError("MLPNet sizes must be positive (dim, hidden, n_layers, emb_dim) and n_params >= 0")
        self.noise = PositionalEmbedding(emb_dim)
        self.n_params = n_params
        layers, width = [], dim + emb_dim + n_params
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: Cond | None = None) -> torch.Tensor:
        emb = self.noise(c_noise.reshape(-1).expand(x.shape[0]) if c_noise.numel() == 1 else c_noise)
        parts = [x, emb.to(x.dtype)]
        if self.n_params:
            if cond is None or cond.theta is None:
                raise ValueError("this network is conditioned on theta but Cond.theta is None")
            parts.append(cond.theta.to(x.dtype).expand(x.shape[0], -1))
        return self.mlp(torch.cat(parts, dim=1))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
