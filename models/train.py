"""Training: one optimizer step at a time (online, from a stream) or a loop over a
``PairDataset`` (offline), with EMA weights and atomic, resumable checkpoints.

A checkpoint holds plain values and tensors only (configs as dicts), so it loads with
``torch.load(weights_only=True)`` and never unpickles code.
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .config import TrainConfig
from .data import Batch, DataSpec, PairDataset, finite_rows
from .ncio import atomic_write
from .sampling import SamplerConfig
from .surrogate import Surrogate, SurrogateConfig

__all__ = ["TrainConfig", "Trainer", "resolve_device", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Trainer:
    """Owns a surrogate, its EMA copy, the optimizer and the random streams.

    Online use (worker): ``train_step(batch)`` per received batch, ``sample(batch, n)``
    for emulation, ``save(path)`` / ``Trainer.load(path)`` across restarts.
    """

    def __init__(self, surrogate: Surrogate, config: TrainConfig | None = None):
        config = TrainConfig() if config is None else config
        if config.tile is not None and not surrogate.config.use_position:
            raise ValueError("TrainConfig.tile needs a surrogate with use_position=True (tiles must know where they are)")
        self.config = config
        self.device = resolve_device(config.device)
        self.model = surrogate.to(self.device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.noise_gen = torch.Generator(self.device).manual_seed(config.seed)
        self.data_gen = torch.Generator().manual_seed(config.seed + 1)  # CPU: indices are drawn on CPU
        self.step = 0
        self.rejected = 0
        self.samples_seen = 0
        self.throughput = float("nan")  # training samples/s of the last fit()
        # Called with the model when its normalizers freeze, before that step's loss: several data-parallel
        # ranks pool the statistics of their tiles here (bridge/worker/ddp.py), so every rank, and the EMA
        # copy of the next update, normalizes with the statistics of the whole grid.
        self.on_freeze: Callable[[torch.nn.Module], None] | None = None

    @property
    def spec(self) -> DataSpec:
        return self.model.spec

    # -- one step -----------------------------------------------------------------------

    def _screen(self, batch: Batch) -> Batch:
        """Drop (and count) samples with non-finite ocean values."""
        keep = finite_rows(batch)
        n_bad = int((~keep).sum())
        if n_bad:
            self.rejected += n_bad
            log.warning("rejected %d sample(s) with NaN/inf at step %d (total %d)", n_bad, self.step, self.rejected)
            batch = batch.select(keep)
        return batch

    def _update_normalizers(self, batch: Batch) -> None:
        if bool(self.model.norm_x.frozen):
            return
        self.model.observe(batch)
        if self.step + 1 >= self.config.norm_warmup_steps:
            for norm in self.model.normalizers:
                norm.freeze()
            if self.on_freeze is not None:
                self.on_freeze(self.model)

    def _lr(self) -> float:
        return self.config.lr * min(1.0, (self.step + 1) / max(self.config.lr_warmup_steps, 1))

    def train_step(self, batch: Batch) -> dict | None:
        """One optimizer step on a physical batch; ``None`` if every sample was rejected."""
        batch = self._screen(batch.to(self.device))
        if len(batch) == 0:
            return None
        self._update_normalizers(batch)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.model.train()
        loss = self.model.loss(batch, self.noise_gen)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        self.samples_seen += len(batch)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self._lr()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # EDM's EMA: half-life in steps, shortened early so the EMA forgets the random init
        c = self.config
        halflife = min(c.ema_halflife_steps, max(self.step * c.ema_rampup_ratio, 1e-8)) if c.ema_rampup_ratio \
            else c.ema_halflife_steps
        beta = 0.5 ** (1.0 / halflife)
        for p_ema, p in zip(self.ema.parameters(), self.model.parameters()):
            p_ema.lerp_(p.detach(), 1 - beta)
        for b_ema, b in zip(self.ema.buffers(), self.model.buffers()):
            b_ema.copy_(b)

    # -- offline ------------------------------------------------------------------------

    @torch.no_grad()
    def fit_normalizers(self, dataset: PairDataset, chunk: int = 256) -> None:
        """One streaming pass over the whole dataset, then freeze the statistics."""
        for start in range(0, len(dataset), chunk):
            self.model.observe(dataset.batch(torch.arange(start, min(start + chunk, len(dataset)))))
        for norm in self.model.normalizers:
            norm.freeze()
        self.ema.load_state_dict(self.model.state_dict())

    def fit(self, dataset: PairDataset, steps: int, checkpoint: str | Path | None = None,
            checkpoint_every: int = 500, progress: bool = True) -> list[dict]:
        """Train until ``self.step == steps`` (resumes count from the current step)."""
        self.model.spec.check_matches(dataset.spec, "model", f"data {[m.path for m in dataset.members]}")
        dataset.to(self.device)
        if not bool(self.model.norm_x.frozen):
            self.fit_normalizers(dataset)
        history, t0, seen0 = [], time.perf_counter(), self.samples_seen
        bar = tqdm(total=steps, initial=self.step, desc=f"train {self.model.config.objective}",
                   disable=not progress, unit="step")
        while self.step < steps:
            stats = self.train_step(dataset.random_batch(self.config.batch_size, self.data_gen, self.config.tile))
            bar.update(1)
            if stats is None:
                continue
            history.append({"step": self.step, **stats})
            bar.set_postfix(loss=f"{stats['loss']:.4f}")
            if checkpoint and (self.step % checkpoint_every == 0 or self.step == steps):
                self.save(checkpoint)
        bar.close()
        elapsed = time.perf_counter() - t0
        if elapsed > 0 and self.samples_seen > seen0:
            self.throughput = (self.samples_seen - seen0) / elapsed
            log.info("trained to step %d: %.1f samples/s", self.step, self.throughput)
        return history

    # -- sampling -----------------------------------------------------------------------

    def sample(self, batch: Batch, n: int = 1, sampler: SamplerConfig | None = None,
               generator: torch.Generator | None = None, use_ema: bool = True,
               tile: int | None = None, noise=None, bands=None) -> torch.Tensor:
        """(B, n, C, ny, nx) physical samples from the EMA (default) or raw weights;
        ``tile``: blended tiled denoising (default: the training tile size, if any);
        ``noise``, ``bands``: the noise source and this rank's band (Surrogate.sample)."""
        model = self.ema if use_ema else self.model
        model.eval()
        return model.sample(batch.to(self.device), n, sampler, generator, tile or self.config.tile, noise, bands)

    # -- checkpoints --------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "surrogate_config": self.model.config.to_dict(),
            "train_config": asdict(self.config),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step, "rejected": self.rejected, "samples_seen": self.samples_seen,
            "rng": {"noise": self.noise_gen.get_state(), "data": self.data_gen.get_state()},
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        theirs = SurrogateConfig.from_dict(state["surrogate_config"])
        theirs.spec.check_matches(self.spec, "checkpoint", "this model")
        _check_same_architecture(theirs.to_dict(), self.model.config.to_dict())
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.rejected = int(state["step"]), int(state["rejected"])
        self.samples_seen = int(state["samples_seen"])
        _restore_generator(self.noise_gen, state["rng"]["noise"])
        _restore_generator(self.data_gen, state["rng"]["data"])

    def save(self, path: str | Path) -> Path:
        """Atomic: write a temporary file, then ``os.replace`` it onto ``path``."""
        state = self.state_dict()
        return atomic_write(path, lambda tmp: torch.save(state, tmp))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, **train_overrides) -> "Trainer":
        """Rebuild a trainer from a checkpoint, optionally on another device."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "surrogate_config" not in state:
            raise ValueError(f"{path} is not an oceanbridge checkpoint")
        train_cfg = {**state["train_config"], **train_overrides, **({"device": device} if device else {})}
        trainer = cls(Surrogate(SurrogateConfig.from_dict(state["surrogate_config"])),
                      TrainConfig.from_dict(train_cfg))
        trainer.load_state_dict(state)
        return trainer


def _check_same_architecture(theirs: dict, ours: dict) -> None:
    """Refuse a checkpoint whose surrogate settings differ, naming each one (torch would only list tensor keys)."""
    def plain(value):  # a list and a tuple of the same items are the same setting
        return tuple(value) if isinstance(value, list) else value

    diffs = [f"{key}: checkpoint {theirs.get(key)!r}, this model {ours.get(key)!r}"
             for key in sorted(set(theirs) | set(ours)) if key != "spec" and plain(theirs.get(key)) != plain(ours.get(key))]
    if diffs:
        raise ValueError("the checkpoint was trained with other surrogate settings: " + "; ".join(diffs))


def _restore_generator(gen: torch.Generator, state: torch.Tensor) -> None:
    """Resume a random stream; a CPU stream cannot continue on CUDA (different engines),
    in which case the stream is reseeded and the continuation is no longer bit-identical."""
    try:
        gen.set_state(state)
    except RuntimeError:
        log.warning("random stream of the checkpoint does not fit a %s generator: reseeded", gen.device)
        gen.manual_seed(int(state[:8].sum()))
