"""The conditional surrogate: normalizers + backbone + (EDM denoiser | MSE regressor).

It works in physical units at its boundary (``Batch`` in, fields out) and in
normalized units inside, so the worker runtime never handles statistics itself.
Tasks: 'emulate' p(x_{t+Δ} | x_t, θ) and 'generate' p(x | θ [, x_0]).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .config import ModelConfig, level_multipliers
from .data import Batch, DataSpec
from .loss import EDMLoss, MSELoss
from .networks import Cond, UNet, UNetConfig
from .normalize import Normalizer
from .precond import EDMPrecond, Regressor
from .sampling import GridNoise, SamplerConfig, edm_sampler, white_noise
from .tiling import TiledDenoiser
from .whiten import SpectralWhitener

__all__ = ["ModelConfig", "SurrogateConfig", "Surrogate", "level_multipliers"]

TASKS = ("emulate", "generate")


@dataclass(frozen=True)
class SurrogateConfig(ModelConfig):
    """Everything needed to rebuild a surrogate from a checkpoint (plain values only): the [model] keys
    (keyword-only) and what the data and the run fix."""

    spec: DataSpec
    task: str = "emulate"
    cond_on_initial: bool = False  # generate: also condition on an initial state x_0
    predict_residual: bool | None = None  # None: True for 'emulate', False for 'generate'
    use_position: bool = False  # tile position channels (patch training)
    lag: int = 1  # records between x_t and the predicted x_{t+lag} (metadata for sampling)
    channel_mult: tuple[int, ...] | None = None  # finer than [model] levels; None: level_multipliers(levels)
    dropout: float = 0.0
    sigma_data: float = 1.0  # targets are normalized to unit variance
    # Training noise levels ln(sigma) ~ N(P_mean, P_std^2) (EDM Table 1). None: EDM's -1.2 for
    # 'generate'; 0.6 for 'emulate', where the condition fixes most of the target and the
    # hard part is reading it at large sigma (bench_surrogate: CRPS 0.144 vs 0.222 at -1.2
    # for the same 800 steps).
    P_mean: float | None = None
    P_std: float = 1.2
    fill_value: float = 0.0  # land value of decoded fields (physical units)
    whiten_floor: float = 1e-10  # the whitened spectrum is clipped at this fraction of its maximum
    # Whiten each (ky, kx) mode by its own power instead of the radial mean: ocean fields are
    # anisotropic (in the gyre, v's power at high ky is 1 % of that at the same high kx), and a
    # radial gain leaves the weak directions far below unit variance. False: radial (as before).
    # Measured worse on the gyre with 32-point tiles (DCT high-k 2.7 against 1.3 radial, both
    # with whiten_state and exponent 0.5): a tile's edges leak power into the weak directions,
    # which the lattice gains then amplify. Meant for whole-grid training.
    whiten_anisotropic: bool = False

    def __post_init__(self):
        super().__post_init__()  # the [model] keys' rows
        if isinstance(self.spec, dict):
            object.__setattr__(self, "spec", DataSpec(**self.spec))
        if self.task not in TASKS:
            raise ValueError(f"SurrogateConfig.task must be one of {TASKS}, got {self.task!r}")
        if self.P_mean is None:
            object.__setattr__(self, "P_mean", 0.6 if self.task == "emulate" else -1.2)
        if self.predict_residual is None:
            object.__setattr__(self, "predict_residual", self.task == "emulate")
        if self.predict_residual and not self.has_state:
            raise ValueError("SurrogateConfig.predict_residual needs a conditioning state "
                             "(task 'emulate', or 'generate' with cond_on_initial)")
        if self.lag < 1:
            raise ValueError(f"SurrogateConfig.lag must be >= 1, got {self.lag!r}")
        if self.sigma_data <= 0:
            raise ValueError(f"SurrogateConfig.sigma_data must be > 0, got {self.sigma_data!r}")
        if self.P_std <= 0:
            raise ValueError(f"SurrogateConfig.P_std must be > 0, got {self.P_std!r}")
        if not 0 <= self.spectral_whitening <= 1:
            raise ValueError(f"SurrogateConfig.spectral_whitening must be in [0, 1], got {self.spectral_whitening!r}")
        if not 0 < self.whiten_floor < 1:
            raise ValueError(f"SurrogateConfig.whiten_floor must be in (0, 1), got {self.whiten_floor!r}")
        if self.whiten_anisotropic and not self.spectral_whitening > 0:
            raise ValueError("SurrogateConfig.whiten_anisotropic needs spectral_whitening > 0")
        if self.whiten_state and not (self.spectral_whitening > 0 and self.has_state):
            raise ValueError("SurrogateConfig.whiten_state needs spectral_whitening > 0 and a conditioning state "
                             f"(got spectral_whitening={self.spectral_whitening!r}, task {self.task!r}, "
                             f"cond_on_initial={self.cond_on_initial!r})")
        if self.channel_mult is None:
            object.__setattr__(self, "channel_mult", level_multipliers(self.levels))
        object.__setattr__(self, "channel_mult", tuple(self.channel_mult))
        object.__setattr__(self, "levels", len(self.channel_mult))
        self.unet_config()  # validates the network sizes, naming the field

    @property
    def has_state(self) -> bool:
        return self.task == "emulate" or self.cond_on_initial

    def unet_config(self) -> UNetConfig:
        n_channels = len(self.spec.channels)
        return UNetConfig(in_channels=n_channels, out_channels=n_channels,
                          cond_channels=n_channels if self.has_state else 0, n_params=len(self.spec.params),
                          pos_channels=2 if self.use_position else 0, model_channels=self.model_channels,
                          channel_mult=self.channel_mult, num_res_blocks=self.num_res_blocks, dropout=self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)


class WhitenedDenoiser(nn.Module):
    """y-space denoiser around a network trained on z = W y: D_y(x) = mask * W^-1 D_z(W x).

    Linear change of variables, so the sampler may run on y with noise colored by W^-1,
    and blended tiles (``TiledDenoiser``) each get their own tile-sized W.
    """

    def __init__(self, net: nn.Module, whitener: SpectralWhitener, norm: Normalizer):
        super().__init__()
        self.net, self.whitener, self.norm = net, whitener, norm
        self.sigma_min, self.sigma_max = getattr(net, "sigma_min", 0.0), getattr(net, "sigma_max", 0.0)

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        var = self.norm.var
        z = self.whitener.whiten(x, var)  # in x's dtype: float64 keeps the small scales exact
        y = self.whitener.color(self.net(z.float(), sigma, cond).to(x.dtype), var)
        return y if cond is None or cond.mask is None else y * cond.mask.to(y.dtype)


class StateWhitenedNet(nn.Module):
    """``net(x, sigma, cond)`` with cond.state whitened on the grid it arrives on (a tile or
    the whole domain), as the training tiles were: the same call, so samplers, tiling and
    losses are unchanged. Built on the fly; it owns no parameters."""

    def __init__(self, net: nn.Module, whitener: SpectralWhitener, norm: Normalizer):
        super().__init__()
        self.net, self.whitener, self.norm = net, whitener, norm
        self.sigma_min, self.sigma_max = getattr(net, "sigma_min", 0.0), getattr(net, "sigma_max", 0.0)

    def forward(self, x: torch.Tensor, sigma, cond: Cond | None = None) -> torch.Tensor:
        if cond is not None and cond.state is not None:
            state = self.whitener.whiten(cond.state.double(), self.norm.var).to(cond.state.dtype)
            cond = Cond(mask=cond.mask, state=state, theta=cond.theta, pos=cond.pos)
        return self.net(x, sigma, cond)


class Surrogate(nn.Module):
    def __init__(self, config: SurrogateConfig):
        super().__init__()
        self.config = c = config
        self.norm_x = Normalizer(c.spec.channels)
        self.norm_dx = Normalizer(c.spec.channels) if c.predict_residual else None
        self.norm_theta = Normalizer(c.spec.params) if c.spec.params else None
        backbone = UNet(c.unet_config())
        def whitener():
            return SpectralWhitener(c.spec.channels, c.spec.ny, c.spec.nx, c.spectral_whitening, c.whiten_floor,
                                    c.whiten_anisotropic)
        self.whitener = whitener() if c.spectral_whitening > 0 else None
        self.state_whitener = whitener() if c.whiten_state else None
        # Whitened, the network works on z = W y, where land is not a point set: land is
        # forced in y-space (WhitenedDenoiser) and the loss covers every z point.
        plain = self.whitener is None
        self.net = EDMPrecond(backbone, sigma_data=c.sigma_data, force_land=plain) if c.objective == "diffusion" \
            else Regressor(backbone, force_land=plain)
        self.loss_fn = EDMLoss(c.P_mean, c.P_std, c.sigma_data, masked=plain) if c.objective == "diffusion" \
            else MSELoss(masked=plain)

    @property
    def spec(self) -> DataSpec:
        return self.config.spec

    @property
    def normalizers(self) -> list[Normalizer]:
        return [n for n in (self.norm_x, self.norm_dx, self.norm_theta) if n is not None]

    # -- normalization ------------------------------------------------------------------

    @torch.no_grad()
    def observe(self, batch: Batch) -> None:
        """Update the running statistics with a (finite) physical batch."""
        self.norm_x.update(batch.target, batch.mask)
        if batch.state is not None:
            self.norm_x.update(batch.state, batch.mask)
        if self.norm_dx is not None:
            self.norm_dx.update(batch.target - batch.state, batch.mask)
        if self.norm_theta is not None:
            self.norm_theta.update(batch.theta)
        if self.whitener is not None:
            self.whitener.update(self._target_field(batch), batch.mask)
        if self.state_whitener is not None:
            self.state_whitener.update(batch.state, batch.mask)

    def condition(self, batch: Batch) -> Cond:
        """Normalized conditioning of a physical batch (its target is not used)."""
        self._check_batch(batch)
        state = None if not self.config.has_state else self.norm_x.normalize(batch.state, batch.mask)
        theta = None if self.norm_theta is None else self.norm_theta.normalize(batch.theta)
        return Cond(mask=batch.mask, state=state, theta=theta, pos=batch.pos)

    @property
    def target_norm(self) -> Normalizer:
        """The normalizer of what the network predicts (the increment or the state)."""
        return self.norm_dx if self.norm_dx is not None else self.norm_x

    def _target_field(self, batch: Batch) -> torch.Tensor:
        return batch.target - batch.state if self.norm_dx is not None else batch.target

    def encode_target(self, batch: Batch) -> torch.Tensor:
        """Normalized target y (land 0); ``whiten`` maps it to the network's space."""
        return self.target_norm.normalize(self._target_field(batch), batch.mask)

    def whiten(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.whitener is None else self.whitener.whiten(y, self.target_norm.var)

    @property
    def network(self) -> nn.Module:
        """The network in its own (whitened) space, taking the plain normalized conditioning."""
        return self.net if self.state_whitener is None else StateWhitenedNet(self.net, self.state_whitener, self.norm_x)

    def denoiser(self) -> nn.Module:
        """The network as a denoiser of normalized targets y (``net(x, sigma, cond)``)."""
        return self.network if self.whitener is None else WhitenedDenoiser(self.network, self.whitener, self.target_norm)

    def decode(self, y: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Physical fields from normalized network outputs; land gets ``fill_value``."""
        if self.norm_dx is not None:
            x = batch.state + self.norm_dx.denormalize(y)
        else:
            x = self.norm_x.denormalize(y)
        mask = torch.ones_like(x[:, :1]) if batch.mask is None else batch.mask
        return torch.where(mask.to(torch.bool), x, torch.full_like(x, self.config.fill_value))

    def _check_batch(self, batch: Batch) -> None:
        c = self.config
        if c.has_state and batch.state is None:
            raise ValueError(f"this {c.task} surrogate is conditioned on a state: Batch.state is required")
        if self.norm_theta is not None and (batch.theta is None or batch.theta.shape[-1] != len(c.spec.params)):
            raise ValueError(f"this surrogate expects parameters {list(c.spec.params)} in Batch.theta")
        if c.use_position and batch.pos is None:
            raise ValueError("this surrogate was trained on tiles: Batch.pos (grid_position) is required")
        fields = [t for t in (batch.target, batch.state) if t is not None]
        if any(t.shape[1] != len(c.spec.channels) for t in fields):
            raise ValueError(f"this surrogate expects channels {list(c.spec.channels)}, "
                             f"got {[t.shape[1] for t in fields]} channels")

    # -- training and sampling ---------------------------------------------------------

    @staticmethod
    def _spatial(net: nn.Module, tile, bands) -> nn.Module:
        """``net`` as sampling evaluates it: on the whole grid, on blended tiles, or on this rank's band of
        the blended tiles of a decomposed grid (``bands``: a models.bands.RankBand)."""
        if bands is not None:
            return bands.denoiser(net)
        return net if tile is None else TiledDenoiser(net, tile)

    def _diffuse(self, shape: tuple, cond: Cond, sampler: SamplerConfig, noise: GridNoise, tile,
                 bands) -> torch.Tensor:
        """Normalized targets y of ``shape`` (``noise``: the source of every draw, see edm_sampler)."""
        device = self.norm_x.m2.device
        if self.whitener is None:
            latents = noise(shape, torch.float32, device)
            return edm_sampler(self._spatial(self.network, tile, bands), latents, cond, sampler, noise=noise)
        var = self.target_norm.var
        if tile is None and bands is None:  # exact change of variables: sample z = W y (every mode O(1)), y = W^-1 z
            latents = noise(shape, torch.float32, device)
            return self.whitener.color(edm_sampler(self.network, latents, cond, sampler, noise=noise), var)
        # Tiles each need their own W, so the sampler runs on y with noise colored on the whole grid, in
        # float64: y's modes span many decades and float32 round-off of the large scales swamps the small ones.
        colored = noise.colored(lambda e: self.whitener.color(e, var))
        latents = colored(shape, torch.float64, device)
        return edm_sampler(self._spatial(self.denoiser(), tile, bands), latents, cond, sampler, noise=colored)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean training loss of a physical batch (normalizers must be fitted)."""
        return self.loss_fn(self.network, self.whiten(self.encode_target(batch)), self.condition(batch), generator).mean()

    def nfe(self, sampler: SamplerConfig) -> int:
        return sampler.nfe if self.config.objective == "diffusion" else 1

    @torch.no_grad()
    def sample(self, batch: Batch, n: int = 1, sampler: SamplerConfig | None = None,
               generator: torch.Generator | None = None, tile=None, noise: GridNoise | None = None,
               bands=None) -> torch.Tensor:
        """``n`` samples per condition in physical units: (B, n, C, ny, nx).

        ``batch`` holds the conditions (state, theta, mask, pos; target is ignored) and
        fixes the grid: any ny x nx works. ``tile``: denoise on overlapping tiles of this
        size and blend (for networks trained on tiles). ``bands`` (models.bands.RankBand):
        the batch is this rank's band of a grid decomposed over several ranks, sampled as one
        grid with the layout's tiling (a collective call: every rank samples together).
        ``noise``: the source of every noise draw (default: ``bands.noise(generator)``, or
        torch.randn from ``generator``). The MSE baseline returns its single prediction ``n`` times.
        """
        sampler = sampler or SamplerConfig()
        cond = self.condition(batch)
        ref = next((t for t in (batch.state, batch.mask, batch.pos) if t is not None), None)
        grid = (self.spec.ny, self.spec.nx) if ref is None else tuple(ref.shape[-2:])
        device = self.norm_x.m2.device
        b = max(len(batch), 1)
        shape = (b, len(self.spec.channels), *grid)
        if self.config.objective == "mse":
            y = self._spatial(self.denoiser(), tile, bands)(torch.zeros(shape, device=device), None, cond)
            return self.decode(y, batch).unsqueeze(1).expand(-1, n, -1, -1, -1)
        noise = noise or (bands.noise(generator) if bands is not None else white_noise(generator))
        y = self._diffuse((b * n,) + shape[1:], cond.repeat_interleave(n), sampler, noise, tile, bands)
        expanded = Batch(target=None, state=None if batch.state is None else batch.state.repeat_interleave(n, 0),
                         mask=batch.mask if batch.mask is None or batch.mask.shape[0] == 1
                         else batch.mask.repeat_interleave(n, 0))
        return self.decode(y.float(), expanded).reshape(b, n, *shape[1:])
