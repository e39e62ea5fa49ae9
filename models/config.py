"""The settings a user picks for the models package: ``[model]`` (:class:`ModelConfig`) and ``[worker.train]``
(:class:`TrainConfig`), each declared once here as a section of the settings language (models/settings.py).

The surrogate (models/surrogate.py) and the trainer (models/train.py) take them; the worker's sections subclass
them to add the keys of its own loop and grid (bridge/worker/settings.py); the offline ``oceanbridge train``
takes its defaults from them (models/cli.py).  No torch here: preprod validates a config's sections without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .settings import Section, program_set, setting

__all__ = ["HEUN_STEPS", "ModelConfig", "OBJECTIVES", "TrainConfig", "level_multipliers"]

OBJECTIVES = ("diffusion", "mse")
# EDM Heun steps per sample (2 x steps - 1 network evaluations): the sampler's default (models/sampling.py), the
# worker's [worker.emulate] and [worker.spinup] num_steps and `oceanbridge sample --num-steps`.  18 (35
# evaluations): on the gyre benchmark 6 steps left sampler noise in the small scales (DCT high-k ratio 3.6
# against 1.08 at 18; models/README.md); the demo sets 6 for its time budget.
HEUN_STEPS = 18


def level_multipliers(levels: int) -> tuple[int, ...]:
    """The U-Net's channel multipliers for ``levels`` resolution levels: 1, 2, 2, ..."""
    return (1,) + (2,) * (levels - 1)


@dataclass(frozen=True, kw_only=True)
class ModelConfig(Section):
    """The network and objective a user picks: the ``[model]`` section of a deploy config (the worker adds its
    grid's keys, bridge/worker/settings.py); :class:`SurrogateConfig` adds what the data fixes."""
    section: ClassVar[str] = "model"
    objective: str = setting("diffusion", "training objective", choices=OBJECTIVES)
    model_channels: int = setting(16, "U-Net base width", ge=1)
    levels: int = setting(2, "U-Net resolution levels (channel multipliers 1, 2, 2, ...)", ge=1)
    num_res_blocks: int = setting(1, "residual blocks per level", ge=1)
    # Spectral whitening exponent of the target (models/whiten.py): 1 trains and samples where every scale has
    # unit variance, 0 (default, the behaviour before the option) is off. On the gyre at 1000 steps, 1 brings the
    # diffusion's DCT high-k ratio from 294 to 1.6 but costs RMSE/std (0.35 -> 0.48) and CRPS/std (0.155 -> 0.228).
    spectral_whitening: float = setting(0.0, "spectral whitening exponent in [0, 1] (models/whiten.py): 1 fixes the "
                                        "small-scale excess of steep spectra, 0 (default) is off", ge=0)
    # Also whiten the conditioning state (with its own running spectrum, same exponent), so the network sees
    # x_t's small scales at the unit scale of the whitened target it must predict from them. On the gyre
    # (bench_surrogate, 1000 steps, exponent 0.5 and whiten_state): DCT high-k 1.28 (1.19 with S_churn 5),
    # spread/skill 0.86 (0.81), CRPS/std 0.157 (0.164) against MSE 0.206.
    whiten_state: bool = setting(False, "whiten the conditioning state x_t too (needs spectral_whitening > 0)")


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Section):
    """How a surrogate is trained: the ``[worker.train]`` section of a deploy config (the worker adds the keys of
    its own loop, bridge/worker/settings.py) and the defaults of the offline ``oceanbridge train``."""
    section: ClassVar[str] = "worker.train"
    batch_size: int = setting(8, "samples per optimizer step (per worker rank)", ge=1)
    lr: float = setting(1e-3, "Adam learning rate", gt=0)
    lr_warmup_steps: int = setting(50, "linear learning-rate ramp, in optimizer steps (EDM's lr_rampup: Adam is "
                                   "fragile at the start)", ge=0)
    weight_decay: float = setting(0.0, "Adam weight decay", ge=0)
    grad_clip: float = setting(1.0, "the gradients' global norm is clipped to this", gt=0)
    norm_warmup_steps: int = setting(20, "optimizer steps during which the normalizers learn from the stream; "
                                     "frozen afterwards (offline: one pass over the files instead)", ge=0)
    ema_halflife_steps: float = setting(50.0, "half-life of the EMA weights that samples come from", gt=0)
    ema_rampup_ratio: float = setting(0.1, "early on, the EMA half-life is at most this fraction of the steps "
                                      "taken (0: off)", ge=0)
    seed: int = setting(0, "seed of the noise and data streams", ge=0)
    tile: int | None = program_set(None, "random tile size for patch training (needs use_position)")
    device: str = program_set("auto", "torch device: auto, cpu, cuda or cuda:N")

    def __post_init__(self):
        super().__post_init__()
        if self.tile is not None and self.tile < 1:
            raise ValueError(f"TrainConfig.tile must be None or >= 1, got {self.tile!r}")
        if self.device != "auto":  # torch parses device names; "auto" needs no torch (preprod checks configs)
            import torch
            try:
                torch.device(self.device)
            except RuntimeError as err:
                raise ValueError(f"TrainConfig.device {self.device!r} is invalid: {err}") from None
