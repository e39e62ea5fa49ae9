"""Worker checkpoints: model, EMA, optimizer, normalizer statistics (all in the
trainer's state), buffer contents and counters, the runtime's counters, and in
the ``infer`` mode the posterior estimator.

Written atomically (temporary file in the same folder, fsync, ``os.replace``
through ``models.ncio.atomic_write``): an interrupted or failed write leaves the
previous checkpoint valid, and a failure (a full disk...) names the file and
the cause.

Loaded with ``torch.load(weights_only=True)``: unpickling a planted file cannot
run code, and one that would is refused by name.  For that every numpy array or
scalar in the state (the buffer's samples: member index, θ, x_t, x_{t+Δ}) is
stored as a tensor of its raw bytes with its dtype and shape, and restored bit
for bit with the same dtype.
"""
from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path

import numpy as np
import torch

from bridge.worker.samples import BufferedSample
from models.ncio import atomic_write

log = logging.getLogger(__name__)
FORMAT = "oceanbridge-worker-1"
ARRAY = "__numpy_array__"  # the key that marks an encoded numpy array or scalar


def checkpoint_path(run_dir: Path, name: str, rank: int, size: int) -> Path:
    path = Path(name) if Path(name).is_absolute() else run_dir / name
    return path if size == 1 else path.with_name(f"{path.stem}_r{rank}{path.suffix}")


def save_checkpoint(path: Path, trainer, buffer, counters: dict, inference=None, parts=None) -> Path:
    """``parts``: {name: object with state_dict()} beside the trainer (the generate mode's baseline and
    equilibrium watch); ``restore`` gives them back by the same names."""
    state = {"format": FORMAT, "trainer": trainer.state_dict(), "buffer": _plain_items(buffer.state_dict()),
             "counters": dict(counters)}
    if inference is not None:
        state["inference"] = inference.state_dict()
    for name, part in (parts or {}).items():
        state[f"part:{name}"] = part.state_dict()
    safe = encode_numpy(state)
    atomic_write(path, lambda tmp: torch.save(safe, tmp))
    log.info("checkpoint %s: train step %d, buffer %d sample(s) (n_put %d)", path, trainer.step,
             len(buffer), buffer.n_put)
    return path


def _plain_items(buffer_state: dict) -> dict:
    """The buffer's state with its samples as plain data (the safe loader accepts no class of ours)."""
    items = [s.as_plain() if isinstance(s, BufferedSample) else s for s in buffer_state["items"]]
    return {**buffer_state, "items": items}


def load_checkpoint(path: Path) -> dict:
    """The saved state; a clear error for a file that is not a worker checkpoint or would run code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(_unreadable(path, err)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RuntimeError(f"{path} is not an oceanbridge worker checkpoint (format {FORMAT}); "
                           f"remove it to start afresh")
    try:
        return {key: decode_numpy(value) for key, value in state.items()}  # (the checkpoint is a dict)
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise RuntimeError(f"worker checkpoint {path} holds a damaged array ({err}); remove it to start afresh") \
            from None


def restore(state: dict, trainer, buffer, inference=None, parts=None) -> dict:
    """Load trainer, buffer (and the posterior estimator) from ``state``; return the runtime counters.
    The buffer keeps its own configuration: a capacity changed since the checkpoint applies."""
    trainer.load_state_dict(state["trainer"])
    saved = state["buffer"]
    buffer.load_state_dict({**saved, "items": [BufferedSample.from_plain(s) for s in saved["items"]]},
                           config=buffer.config)
    if inference is not None and "inference" in state:
        inference.load_state_dict(state["inference"])
    elif inference is not None:
        log.info("the checkpoint holds no posterior estimator: the infer mode starts it afresh")
    for name, part in (parts or {}).items():
        if f"part:{name}" in state:
            part.load_state_dict(state[f"part:{name}"])
        else:
            log.info("the checkpoint holds no %s: it starts afresh", name)
    return dict(state["counters"])


def encode_numpy(obj):
    """``obj`` with every numpy array and scalar replaced by ``{ARRAY: bytes tensor, dtype, shape, scalar}``.
    Containers without numpy inside are returned as they are (a module's state_dict keeps its metadata)."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return _encode_array(obj)
    return _map(obj, encode_numpy)


def decode_numpy(obj):
    """The inverse of ``encode_numpy``."""
    if isinstance(obj, dict) and ARRAY in obj:
        return _decode_array(obj)
    return _map(obj, decode_numpy)


def _map(obj, f):
    if isinstance(obj, dict):
        new = {k: f(v) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else new
    if isinstance(obj, (list, tuple)):
        new = [f(v) for v in obj]
        return obj if all(a is b for a, b in zip(new, obj)) else type(obj)(new)
    return obj


def _encode_array(x) -> dict:
    a = np.asarray(x)
    if a.dtype.hasobject:
        raise TypeError(f"a numpy array of Python objects ({a.dtype}) cannot go into a worker checkpoint")
    flat = np.ascontiguousarray(a).reshape(-1)  # a copy only if ``a`` is not contiguous
    raw = flat.view(np.uint8) if flat.flags.writeable else flat.copy().view(np.uint8)
    return {ARRAY: torch.from_numpy(raw), "dtype": a.dtype.str, "shape": list(a.shape),
            "scalar": isinstance(x, np.generic)}


def _decode_array(d: dict):
    dtype = np.dtype(d["dtype"])
    if dtype.hasobject:  # object pointers read from a file would be arbitrary memory
        raise TypeError(f"dtype {dtype} is not plain data")
    a = d[ARRAY].numpy().view(dtype).reshape(d["shape"])
    return a[()] if d["scalar"] else a


def _unreadable(path: Path, err: Exception) -> str:
    """Why ``path`` cannot be loaded.  Of torch's safe-loader error only what names the refused object
    is kept: the rest is generic advice, including to turn the safe loader off, which must not be
    followed for a file anyone able to write the run folder could have planted."""
    text = str(err)
    if not (isinstance(err, pickle.UnpicklingError) and "weights only" in text.lower()):
        return f"worker checkpoint {path} cannot be read ({err}); remove it to start afresh"
    called = re.search(r"GLOBAL ([\w.]+)", text)
    if called:
        return (f"worker checkpoint {path} is refused: loading it would call {called.group(1)}, and only tensors "
                f"and plain data are accepted (a planted file could run code this way); if an older oceanbridge "
                f"wrote it (numpy arrays in its buffer) or it is not yours, remove it to start afresh")
    detail = " ".join(text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0].split())
    return (f"worker checkpoint {path} cannot be read: it is damaged or not a checkpoint (safe loader: "
            f"{detail if 'weights_only' not in detail else type(err).__name__}); remove it to start afresh")
