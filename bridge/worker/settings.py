"""The worker's own config sections: ``[worker.train]``, ``[worker.buffer]``,
``[worker.emulate]``, ``[worker.spinup]``, ``[worker.ensemble]``,
``[worker.infer]``, ``[worker.checkpoint]`` and ``[model]``.

The deploy layer passes these sub-tables through untouched; here each one is a
frozen dataclass validated on creation with the deploy layer's declarative
``setting`` rows, so an unknown key or a bad value names the file, the section
and the key, and ``markdown_table`` renders the reference in the README.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from models.config import HEUN_STEPS, ModelConfig, TrainConfig, level_multipliers
from models.equilibrium import EquilibriumConfig
from models.settings import ConfigError, Section, from_table, markdown_table, setting

BUFFER_KINDS = ("fifo", "firo", "reservoir")


@dataclass(frozen=True, kw_only=True)
class TrainSettings(TrainConfig):
    """``[worker.train]``: the models package's training keys (``models.train.TrainConfig``, declared there once)
    and the worker loop's own."""
    max_steps: int = setting(0, "stop training after this many optimizer steps (0: train until the "
                             "ocean ends)", ge=0)
    min_steps: int = setting(0, "after the ocean's last step, keep training on the buffer until this many "
                             "optimizer steps (the ocean has finished, so this never slows it)", ge=0)
    log_every: int = setting(20, "log the loss every N optimizer steps", ge=1)
    nice: int = setting(10, "nice increment of the training thread (Linux), so the ocean ranks and the "
                        "receiving thread get the cores first; 0 keeps the process priority", ge=0)


@dataclass(frozen=True, kw_only=True)
class BufferSettings(Section):
    section: ClassVar[str] = "worker.buffer"
    kind: str = setting("reservoir", "Melissa buffer: `fifo`, `firo` (first in, random out) or `reservoir` "
                        "(repeats samples so the trainer never starves)", choices=BUFFER_KINDS)
    capacity: int = setting(256, "samples held (x_t, x_{t+Δ}, θ per member)", ge=1)
    watermark: int = setting(16, "samples needed before training starts", ge=1)
    seed: int = setting(0, "seed of the random draws", ge=0)


@dataclass(frozen=True, kw_only=True)
class EmulateSettings(Section):
    section: ClassVar[str] = "worker.emulate"
    num_steps: int = setting(HEUN_STEPS, "EDM Heun steps per sample (2 x steps - 1 network evaluations)",
                             ge=1)
    churn: float = setting(0.0, "EDM S_churn of the sampler (Alg. 2; 0: deterministic Heun); more churn "
                           "trades spread for spectrum (models/README.md, gyre benchmark)", ge=0)
    churn_sigma_min: float = setting(0.0, "EDM S_min: churn only at noise levels sigma >= this", ge=0)
    churn_sigma_max: float = setting(0.0, "EDM S_max: churn only at noise levels sigma <= this (0: no upper "
                                     "limit; sampler_select's 'churn10_high' is churn = 10 from sigma 1 up)", ge=0)
    samples: int = setting(1, "diffusion samples drawn per emulated state; the first is sent, the spread "
                           "of all is written", ge=1)
    output: str = setting("emulated.nc", "netCDF file (in run_dir) of the sent states, the ocean's own "
                          "step from the same start, and (with several samples) the samples' mean, spread "
                          "and fair CRPS against that step")

    @property
    def churn_window(self) -> tuple[float, float]:
        """(S_min, S_max) of EDM Alg. 2."""
        return self.churn_sigma_min, self.churn_sigma_max or float("inf")


@dataclass(frozen=True, kw_only=True)
class SpinupSettings(Section):
    section: ClassVar[str] = "worker.spinup"
    checkpoint: Path | None = setting(None, "checkpoint of a `generate` surrogate (oceanbridge train --task "
                                      "generate); required by the spinup mode")
    num_steps: int = setting(HEUN_STEPS, "EDM Heun steps of the generated state", ge=1)
    rest_volume: bool = setting(True, "shift the generated ssh to zero mean over ocean points, the volume of "
                                "a closed basin started from rest (a conservation law: a volume offset would "
                                "stay, and its heat content with it); false for open boundaries")
    output: str = setting("initial.nc", "netCDF file (in run_dir) of the generated states sent")


@dataclass(frozen=True, kw_only=True)
class GenerateSettings(Section):
    section: ClassVar[str] = "worker.generate"
    metrics: str = setting("ke,heat,thickness_var,psi_max,psi_min", "comma-separated physical metrics "
                           "(models/ocean_metrics.py) the equilibrium detector watches; a member's states join "
                           "the training set once every one of them passes")
    window_years: int = setting(EquilibriumConfig.window_years, "annual means per detector window", ge=3)
    horizon_years: float = setting(EquilibriumConfig.horizon_years, "the trend is carried over this many years "
                                   "into a drift", gt=0)
    factor: float = setting(EquilibriumConfig.factor, "allowed drift, in interannual standard deviations", gt=0)
    persist_years: int = setting(EquilibriumConfig.persist_years, "consecutive detector windows (one a year) "
                                 "that must pass before a member qualifies", ge=1)
    baseline: bool = setting(True, "also train the deterministic baseline (the conditional mean: objective "
                             "mse) on the same batches, the same number of steps")
    output: str = setting("generator.pt", "checkpoint (in run_dir) of the generate surrogate, for [worker.spinup] "
                          "checkpoint and oceanbridge sample")
    baseline_output: str = setting("generator_mse.pt", "checkpoint (in run_dir) of the baseline")
    equilibrium_output: str = setting("equilibrium.nc", "netCDF file (in run_dir): every member's annual means "
                                      "of the metrics and the year it qualified")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.metrics.split(",") if m.strip())

    @property
    def detector(self) -> EquilibriumConfig:
        return EquilibriumConfig(self.window_years, self.horizon_years, self.factor, self.persist_years)


class _Quantiles(Section):
    """A ``quantiles`` key: comma-separated levels in [0, 1], read through ``levels``."""
    quantiles: str

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            qs = self.levels
        except ValueError:
            raise ConfigError(f"key 'quantiles' must be comma-separated numbers, got {self.quantiles!r}") from None
        if not all(0.0 <= q <= 1.0 for q in qs):
            raise ConfigError(f"key 'quantiles' must lie in [0, 1], got {self.quantiles!r}")

    @property
    def levels(self) -> tuple[float, ...]:
        return tuple(float(q) for q in self.quantiles.split(",") if q.strip())


@dataclass(frozen=True, kw_only=True)
class EnsembleSettings(_Quantiles, Section):
    section: ClassVar[str] = "worker.ensemble"
    output: str = setting("ensemble.nc", "netCDF file (in run_dir) of the statistics over members")
    quantiles: str = setting("0.1,0.5,0.9", "comma-separated quantiles written beside mean and std")


@dataclass(frozen=True, kw_only=True)
class InferSettings(_Quantiles, Section):
    section: ClassVar[str] = "worker.infer"
    observation: Path | None = setting(None, "netCDF file of the observed state: one variable per state field "
                                       "(time, y, x) or (y, x) on the global grid; the true θ, when known, as "
                                       "global attributes or scalar variables named like `[[parameters]]`. "
                                       "Required by the infer mode")
    record: int = setting(-1, "time record of the observation (-1: the last)")
    samples: int = setting(2000, "posterior samples written", ge=1)
    output: str = setting("posterior.nc", "netCDF file (in run_dir) of the posterior samples and statistics")
    plot: str = setting("posterior.png", "figure (in run_dir): marginals and pairs, true θ marked (\"\": none)")
    quantiles: str = setting("0.025,0.16,0.5,0.84,0.975", "comma-separated quantiles written beside mean and std")
    max_steps: int = setting(0, "posterior optimizer steps while the ocean runs at most (0: no limit); "
                             "each follows a surrogate step on the same buffered samples", ge=0)
    min_steps: int = setting(0, "after the ocean's last step, keep training the posterior on the buffer until "
                             "this many steps", ge=0)
    estimator: str = setting("nsf", "posterior estimator (models/sbi_estimators.py): sbi's neural spline flow "
                             "`nsf`, score-based `npse`, flow matching `fmpe`, or the hand-written mixture density "
                             "`mixture`", choices=("nsf", "npse", "fmpe", "mixture"))
    components: int = setting(4, "Gaussians of the mixture density over θ given the state (`estimator = "
                              "\"mixture\"`, models/sbi.py)", ge=1)
    hidden: int = setting(64, "width of the density network", ge=1)
    summary_width: int = setting(16, "channels of the CNN that summarises the state", ge=1)
    lr: float = setting(1e-3, "Adam learning rate of the posterior estimator", gt=0)
    norm_warmup_steps: int = setting(20, "steps during which the state normalizer learns, then frozen", ge=1)
    lr_decay_steps: int = setting(0, "the learning rate decays (cosine, to 1 %) over the last N steps before "
                                  "min_steps and stays there: the posterior written is not the noisy last iterate "
                                  "of a constant-rate Adam (0: constant rate)", ge=0)
    holdout_members: int = setting(0, "the last N members (in `[ocean] members` order) are held out: the posterior "
                                   "never trains on their states, which become held-out (θ, x) observations on "
                                   "which it is diagnosed at the end (SBC ranks, coverage, TARP: posterior.nc, "
                                   "worker_summary.json, `<plot>_sbc.png`, `<plot>_coverage.png`); 0: none", ge=0)
    holdout_max: int = setting(256, "held-out observations kept on this rank's tile: every distinct state (x_t "
                               "or x_{t+Δ}) of a held-out member the posterior's batches meet, a uniform "
                               "reservoir of them once more arrive", ge=1)
    holdout_samples: int = setting(500, "posterior draws per held-out observation (SBC ranks in 0..N)", ge=10)
    coverage_tol: float = setting(0.1, "the calibration check: the central 50 % and 95 % intervals of every "
                                  "parameter cover the held-out truths within this of their level (binomial "
                                  "noise over B observations is about sqrt(0.25 / B))", gt=0)


@dataclass(frozen=True)
class InferencePlan:
    """What the infer mode needs beyond its section: the prior box of ``[[parameters]]`` and the
    output paths resolved in run_dir."""
    settings: InferSettings
    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    units: tuple[str, ...]
    output: Path
    plot: Path | None
    holdout: tuple[int, ...] = ()  # indices (in [ocean] members order) of the held-out members

    @property
    def diagnostic_plots(self) -> tuple[Path, Path] | None:
        """The SBC rank histograms and the coverage curve, beside ``plot`` (``<stem>_sbc.png``,
        ``<stem>_coverage.png``); None without a plot."""
        if self.plot is None:
            return None
        return (self.plot.with_name(f"{self.plot.stem}_sbc.png"),
                self.plot.with_name(f"{self.plot.stem}_coverage.png"))

    @classmethod
    def from_config(cls, cfg, infer: InferSettings) -> InferencePlan:
        src, ps = cfg.source, cfg.parameters
        if "train" not in cfg.worker.modes:
            raise ConfigError(f"{src}: [worker] modes has 'infer' but not 'train': the posterior learns from the "
                              "training pairs")
        if not ps:
            raise ConfigError(f"{src}: [worker] modes has 'infer' but the config has no [[parameters]] (θ to infer)")
        if infer.observation is None:
            raise ConfigError(f"{src}: [worker] modes has 'infer' but [worker.infer] observation is not set")
        if infer.lr_decay_steps > infer.min_steps:
            raise ConfigError(f"{src}: [worker.infer] lr_decay_steps = {infer.lr_decay_steps} exceeds min_steps = "
                              f"{infer.min_steps}: the decay ends at min_steps")
        members = len(cfg.components)
        if infer.holdout_members >= members:
            raise ConfigError(f"{src}: [worker.infer] holdout_members = {infer.holdout_members} leaves none of the "
                              f"{members} member(s) to train the posterior on")
        if "calibration" in {p.name for p in ps}:
            raise ConfigError(f"{src}: [[parameters]] name 'calibration' is reserved by the infer mode's summary")
        run_dir = cfg.run.run_dir
        return cls(infer, tuple(p.name for p in ps), tuple(p.low for p in ps), tuple(p.high for p in ps),
                   tuple(p.units or "1" for p in ps), run_dir / infer.output,
                   run_dir / infer.plot if infer.plot else None,
                   tuple(range(members - infer.holdout_members, members)))


@dataclass(frozen=True, kw_only=True)
class CheckpointSettings(Section):
    section: ClassVar[str] = "worker.checkpoint"
    path: str = setting("worker_ckpt.pt", "checkpoint file (relative to run_dir); one per worker rank, "
                        "`_r<rank>` is added with several ranks")
    every_steps: int = setting(0, "also write it every N ocean steps (0: only at the end)", ge=0)
    resume: bool = setting(True, "start from the checkpoint when it exists")


@dataclass(frozen=True, kw_only=True)
class ModelSettings(ModelConfig):
    """``[model]``: the models package's network keys (``models.surrogate.ModelConfig``, declared there once) and
    the worker's grid, for its outputs."""
    mask_file: Path | None = setting(None, "netCDF file holding the land-sea mask (default: all ocean)")
    mask_var: str = setting("mask", "mask variable (y, x) in mask_file, 1 ocean 0 land")
    dx: float = setting(1.0, "grid spacing in x (m), for spectra and netCDF coordinates", gt=0)
    dy: float = setting(1.0, "grid spacing in y (m)", gt=0)

    @property
    def channel_mult(self) -> tuple[int, ...]:
        return level_multipliers(self.levels)


WORKER_TABLES = {"train": TrainSettings, "buffer": BufferSettings, "emulate": EmulateSettings,
                 "spinup": SpinupSettings, "generate": GenerateSettings, "ensemble": EnsembleSettings,
                 "infer": InferSettings, "checkpoint": CheckpointSettings}


@dataclass(frozen=True)
class WorkerSettings:
    """Every worker-owned section of one deploy config."""
    train: TrainSettings = field(default_factory=TrainSettings)
    buffer: BufferSettings = field(default_factory=BufferSettings)
    emulate: EmulateSettings = field(default_factory=EmulateSettings)
    spinup: SpinupSettings = field(default_factory=SpinupSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    infer: InferSettings = field(default_factory=InferSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    inference: InferencePlan | None = None  # set when [worker] modes has 'infer'


def worker_settings(cfg) -> WorkerSettings:
    """Validate the ``[worker.*]`` sub-tables and ``[model]`` of a DeployConfig."""
    src, base = cfg.source, cfg.source.parent
    kwargs: dict[str, Any] = {}
    for key, table in cfg.worker.extra.items():
        if key not in WORKER_TABLES:
            raise ConfigError(f"{src}: unknown section [worker.{key}] (known: "
                              f"{', '.join(f'[worker.{k}]' for k in WORKER_TABLES)})")
        kwargs[key] = from_table(WORKER_TABLES[key], table, where=f"{src}: [worker.{key}]", base_dir=base)
    model: Mapping | None = cfg.extra.get("model")
    if model is not None:
        kwargs["model"] = from_table(ModelSettings, model, where=f"{src}: [model]", base_dir=base)
    unknown = set(cfg.extra) - {"model", "demo"}  # [demo] belongs to `oceanbridge demo`
    if unknown:
        raise ConfigError(f"{src}: unknown top-level section(s) {sorted(unknown)}")
    if "infer" in cfg.worker.modes:
        kwargs["inference"] = InferencePlan.from_config(cfg, kwargs.get("infer", InferSettings()))
    settings = WorkerSettings(**kwargs)
    emulated, states = cfg.fields_with_role("emulated"), cfg.fields_with_role("state")
    if "emulate" in cfg.worker.modes and emulated and emulated[0].freq != states[0].freq:
        raise ConfigError(f"{src}: mode 'emulate' needs the '_emu' fields' freq ({emulated[0].freq}) to equal the "
                          f"state fields' freq ({states[0].freq}): each emulated state is one coupling period ahead")
    if "spinup" in cfg.worker.modes and settings.spinup.checkpoint is None:
        raise ConfigError(f"{src}: [worker] modes has 'spinup' but [worker.spinup] checkpoint is not set")
    if "generate" in cfg.worker.modes:
        _check_generate(cfg, settings.generate)
    if settings.model.whiten_state and not settings.model.spectral_whitening > 0:
        raise ConfigError(f"{src}: [model] whiten_state = true needs spectral_whitening > 0 (e.g. 0.5)")
    return settings


def _check_generate(cfg, generate: GenerateSettings) -> None:
    """The generate mode learns p(x_eq | θ) from gyre states on one rank (bridge/worker/equilibrium.py)."""
    from bridge.worker.equilibrium import check_metric_names
    from bridge.worker.tunnel import channel_names
    src = cfg.source
    others = sorted(set(cfg.worker.modes) & {"train", "emulate", "infer"})
    if others:
        raise ConfigError(f"{src}: [worker] modes: 'generate' trains its own surrogate and cannot be combined with "
                          f"{others}")
    if cfg.ocean.model != "gyre":
        raise ConfigError(f"{src}: mode 'generate' watches the gyre's layer metrics; [ocean] model is "
                          f"'{cfg.ocean.model}'")
    if cfg.worker.ranks != 1:
        raise ConfigError(f"{src}: mode 'generate' needs [worker] ranks = 1 (the equilibrium metrics are "
                          f"whole-grid integrals), got {cfg.worker.ranks}")
    try:
        check_metric_names(generate.metric_names, channel_names(cfg))
    except ValueError as err:
        raise ConfigError(f"{src}: [worker.generate] key 'metrics': {err}") from None


def settings_markdown() -> str:
    """Key reference of every worker section (bridge/worker/README.md)."""
    tables = {**{f"worker.{k}": v for k, v in WORKER_TABLES.items()}, "model": ModelSettings}
    return "\n".join(f"#### `[{name}]`\n\n{markdown_table(cls)}\n" for name, cls in tables.items())
