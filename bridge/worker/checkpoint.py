"""Worker checkpoints: model, EMA, optimizer, normalizer statistics (all in the
trainer's state), buffer contents and counters, the runtime's counters, and in
the ``infer`` mode the posterior estimator.

Written atomically (temporary file in the same folder, fsync, ``os.replace``
through ``models.ncio.atomic_write``): an interrupted write leaves the
previous checkpoint valid.  Loading uses ``weights_only=False`` because the
buffer holds numpy samples; only load checkpoints you wrote.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from models.ncio import atomic_write

log = logging.getLogger(__name__)
FORMAT = "oceanbridge-worker-1"


def checkpoint_path(run_dir: Path, name: str, rank: int, size: int) -> Path:
    path = Path(name) if Path(name).is_absolute() else run_dir / name
    return path if size == 1 else path.with_name(f"{path.stem}_r{rank}{path.suffix}")


def save_checkpoint(path: Path, trainer, buffer, counters: dict, inference=None) -> Path:
    state = {"format": FORMAT, "trainer": trainer.state_dict(), "buffer": buffer.state_dict(),
             "counters": dict(counters)}
    if inference is not None:
        state["inference"] = inference.state_dict()
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    log.info("checkpoint %s: train step %d, buffer %d sample(s) (n_put %d)", path, trainer.step,
             len(buffer), buffer.n_put)
    return path


def load_checkpoint(path: Path) -> dict:
    """The saved state; a clear error for a file that is not a worker checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise RuntimeError(f"worker checkpoint {path} cannot be read ({err}); remove it to start afresh") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RuntimeError(f"{path} is not an oceanbridge worker checkpoint (format {FORMAT})")
    return state


def restore(state: dict, trainer, buffer, inference=None) -> dict:
    """Load trainer, buffer (and the posterior estimator) from ``state``; return the runtime counters."""
    trainer.load_state_dict(state["trainer"])
    buffer.load_state_dict(state["buffer"])
    if inference is not None and "inference" in state:
        inference.load_state_dict(state["inference"])
    elif inference is not None:
        log.info("the checkpoint holds no posterior estimator: the infer mode starts it afresh")
    return dict(state["counters"])
