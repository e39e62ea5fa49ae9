"""Training buffers between a sample stream (the ocean) and the trainer, after Melissa
(Meyer et al., "Training deep surrogate models with large scale online learning", ICML 2023).

Three policies, picked by ``BufferConfig.kind``:

- ``fifo``: first in, first out. Each sample is served once, in arrival order, and
  removed on read. When full, ``put`` evicts the oldest (unseen) sample.
- ``firo``: first in, random out. Each sample is served once, drawn uniformly from the
  buffer, and removed on read. When full, ``put`` evicts a uniformly random sample.
- ``reservoir``: samples stay after they are read and are drawn again (repetition), so
  the trainer never starves once ``len >= watermark``. When full, a new sample replaces a
  uniformly random sample *that has already been served at least once* (Melissa's rule,
  not Vitter's algorithm R: nothing is lost unseen while the trainer keeps up). Only if
  every stored sample is still unseen does it replace a random unseen one (counted in
  ``n_dropped``).

Common rules:

- ``put`` never blocks the producer. It returns False when a sample was lost without
  having been served (``n_dropped`` += 1); replacing an already-served reservoir sample
  is normal operation and returns True (``n_evicted`` += 1).
- ``ready(b)`` is ``len >= max(watermark, b)``. Within a batch, draws are without
  replacement (no duplicates in one batch); across batches the reservoir repeats.
- ``close()`` says the stream has ended: the watermark no longer applies and
  ``get(b)`` returns the ``min(b, len)`` remaining samples (fifo/firo drain the tail).
  A later ``put`` reopens the buffer (e.g. a relaunch resumed from a final checkpoint).
- Counters: ``n_put`` samples offered, ``n_got`` samples served (with repetitions),
  ``n_dropped`` lost unseen, ``n_evicted`` removed after being served (reservoir).
  Invariant, for every kind: ``n_put == n_dropped + n_evicted + n_served_removed + len``
  where ``n_served_removed`` is ``n_got`` for fifo/firo and 0 for the reservoir.
- One lock guards everything: a producer thread may ``put`` while the trainer ``get``s.
- ``state_dict()`` holds contents, seen flags, counters and the RNG state (plain values,
  picklable, ``torch.save``-able); ``load_state_dict`` resumes with the same draws.  Given
  the resumed run's ``BufferConfig``, it applies a changed capacity: growing keeps every
  sample; shrinking drops the excess the way the kind evicts when full (fifo the oldest,
  firo random ones, the reservoir random served ones first) and counts them as such.

Samples are opaque objects (tuples of tensors, dicts...): the buffer never looks inside.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BufferConfig", "BufferEmpty", "Buffer", "FIFOBuffer", "FIROBuffer", "ReservoirBuffer",
           "make_buffer", "BUFFER_KINDS"]


log = logging.getLogger(__name__)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


class BufferEmpty(RuntimeError):
    """``get`` was called while the buffer is not ready for that batch size."""


@dataclass(frozen=True)
class BufferConfig:
    kind: str = "reservoir"  # one of BUFFER_KINDS
    capacity: int = 1000  # most samples held at once
    watermark: int = 100  # fill needed before the first get (the reservoir then never starves)
    seed: int = 0  # seed of the buffer's own random stream (firo/reservoir draws and evictions)

    def __post_init__(self):
        if self.kind not in BUFFER_KINDS:
            raise ValueError(f"BufferConfig.kind {self.kind!r} is unknown; choose one of {sorted(BUFFER_KINDS)}")
        if not _is_int(self.capacity) or self.capacity < 1:
            raise ValueError(f"BufferConfig.capacity must be an integer >= 1, got {self.capacity!r}")
        if not _is_int(self.watermark) or not 0 <= self.watermark <= self.capacity:
            raise ValueError(f"BufferConfig.watermark must be an integer in [0, capacity={self.capacity}], "
                             f"got {self.watermark!r}")


class Buffer:
    """Base class: the lock, the counters, the RNG, readiness and the state_dict frame.

    Subclasses implement ``_insert(sample)`` (called when not full),
    ``_evict_for(sample) -> bool`` (called when full), ``_take(k) -> list`` and
    ``_contents() / _restore(d)``.
    """

    kind = ""

    def __init__(self, config: BufferConfig):
        if config.kind != self.kind:
            raise ValueError(f"{type(self).__name__} needs BufferConfig.kind={self.kind!r}, got {config.kind!r}")
        self.config = config
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(config.seed)
        self.n_put = self.n_got = self.n_dropped = self.n_evicted = 0
        self.closed = False

    # -- public API ---------------------------------------------------------------------
    def put(self, sample) -> bool:
        """Store ``sample``; never blocks. False if some sample was lost unseen.
        A put after ``close()`` reopens the buffer (the stream has resumed)."""
        with self._lock:
            self.n_put += 1
            self.closed = False
            if self._len() < self.config.capacity:
                self._insert(sample)
                return True
            return self._evict_for(sample)

    def ready(self, batch_size: int) -> bool:
        """True if ``get(batch_size)`` would succeed now."""
        with self._lock:
            return self._ready(batch_size)

    def get(self, batch_size: int) -> list:
        """``batch_size`` samples (fewer only after ``close()``); raises BufferEmpty if not ready."""
        with self._lock:
            if not self._ready(batch_size):
                raise BufferEmpty(f"{self.kind} buffer holds {self._len()} sample(s); a batch of {batch_size} "
                                  f"needs {self._need(batch_size)} (watermark {self.config.watermark}, "
                                  f"closed={self.closed})")
            out = self._take(min(batch_size, self._len()))
            self.n_got += len(out)
            return out

    def close(self) -> None:
        """The stream has ended: serve what is left, ignoring the watermark."""
        with self._lock:
            self.closed = True

    def __len__(self) -> int:
        with self._lock:
            return self._len()

    def stats(self) -> dict:
        """Counters and fill, for logs."""
        with self._lock:
            return {"kind": self.kind, "len": self._len(), "capacity": self.config.capacity, "n_put": self.n_put,
                    "n_got": self.n_got, "n_dropped": self.n_dropped, "n_evicted": self.n_evicted}

    def state_dict(self) -> dict:
        """Contents, counters and RNG state as plain values (picklable)."""
        with self._lock:
            return {"config": asdict(self.config), "closed": self.closed, "rng": self._rng.bit_generator.state,
                    "counters": {k: getattr(self, k) for k in ("n_put", "n_got", "n_dropped", "n_evicted")},
                    **self._contents()}

    def load_state_dict(self, d: dict, config: BufferConfig | None = None) -> None:
        """Restore a ``state_dict`` of the same kind; the next draws equal the saved buffer's.

        Without ``config`` the saved configuration (capacity, watermark, seed) replaces this
        buffer's.  With ``config`` (a resumed run whose settings may have changed) its capacity
        and watermark apply from now on: a larger capacity keeps every sample, a smaller one
        drops the excess as this kind evicts when full (``_shrink``) and logs how many."""
        saved = BufferConfig(**d["config"])
        if saved.kind != self.kind:
            raise ValueError(f"buffer state is for kind {saved.kind!r}, this buffer is {self.kind!r}")
        if config is not None and config.kind != self.kind:
            raise ValueError(f"a {config.kind!r} configuration cannot apply to this {self.kind!r} buffer")
        if config is None and saved != self.config:
            log.warning("restoring a %s buffer saved with %s over %s: the saved configuration is kept",
                        self.kind, saved, self.config)
        with self._lock:
            self.config = saved
            self.closed = bool(d["closed"])
            self._rng = np.random.default_rng()
            self._rng.bit_generator.state = d["rng"]
            for k, v in d["counters"].items():
                setattr(self, k, int(v))
            self._restore(d)
            if config is not None:
                self._resize(config.capacity)
                self.config = config

    def _resize(self, capacity: int) -> None:
        old, excess = self.config.capacity, self._len() - capacity
        if capacity == old:
            return
        if excess <= 0:
            log.info("%s buffer capacity %d -> %d: every one of its %d sample(s) kept", self.kind, old, capacity,
                     self._len())
            return
        unseen_before = self.n_dropped
        self._shrink(excess)
        log.warning("%s buffer capacity %d -> %d: %d sample(s) dropped to fit (%d never served), %d kept",
                    self.kind, old, capacity, excess, self.n_dropped - unseen_before, self._len())

    def _shrink(self, k: int) -> None:
        """Drop ``k`` samples as a full buffer would (fifo: the oldest; firo: random ones), unseen."""
        self._take(k)  # fifo/firo: taking removes
        self.n_dropped += k

    # -- helpers ------------------------------------------------------------------------
    def _need(self, batch_size: int) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if batch_size > self.config.capacity:
            raise ValueError(f"batch_size {batch_size} exceeds the {self.kind} buffer's capacity "
                             f"{self.config.capacity}: it would never be ready")
        return 1 if self.closed else max(self.config.watermark, batch_size)

    def _ready(self, batch_size: int) -> bool:
        return self._len() >= self._need(batch_size)

    def _len(self) -> int:
        raise NotImplementedError


class FIFOBuffer(Buffer):
    """First in, first out; each sample served once; when full the oldest is dropped."""

    kind = "fifo"

    def __init__(self, config: BufferConfig):
        super().__init__(config)
        self._q: deque = deque()

    def _len(self) -> int:
        return len(self._q)

    def _insert(self, sample) -> None:
        self._q.append(sample)

    def _evict_for(self, sample) -> bool:
        self._q.popleft()
        self.n_dropped += 1
        self._q.append(sample)
        return False

    def _take(self, k: int) -> list:
        return [self._q.popleft() for _ in range(k)]

    def _contents(self) -> dict:
        return {"items": list(self._q)}

    def _restore(self, d: dict) -> None:
        self._q = deque(d["items"])


class _ListBuffer(Buffer):
    """Samples in a list of slots (random access), for the random-out policies."""

    def __init__(self, config: BufferConfig):
        super().__init__(config)
        self._items: list = []

    def _len(self) -> int:
        return len(self._items)

    def _insert(self, sample) -> None:
        self._items.append(sample)

    def _contents(self) -> dict:
        return {"items": list(self._items)}

    def _restore(self, d: dict) -> None:
        self._items = list(d["items"])


class FIROBuffer(_ListBuffer):
    """First in, random out; each sample served once; when full a random one is dropped."""

    kind = "firo"

    def _evict_for(self, sample) -> bool:
        self._items[int(self._rng.integers(len(self._items)))] = sample
        self.n_dropped += 1
        return False

    def _take(self, k: int) -> list:
        idx = self._rng.choice(len(self._items), size=k, replace=False)
        out = [self._items[i] for i in idx]
        for i in sorted(idx.tolist(), reverse=True):  # swap-remove, highest index first
            self._items[i] = self._items[-1]
            self._items.pop()
        return out


class ReservoirBuffer(_ListBuffer):
    """Samples stay and repeat; when full a new one replaces a random already-served one."""

    kind = "reservoir"

    def __init__(self, config: BufferConfig):
        super().__init__(config)
        self._seen: list[int] = []  # times each slot was served
        self._served = _SlotSet()  # slots served at least once, for O(1) random eviction

    def _insert(self, sample) -> None:
        super()._insert(sample)
        self._seen.append(0)

    def _evict_for(self, sample) -> bool:
        if len(self._served):
            slot = self._served.pop_random(self._rng)
            self.n_evicted += 1
            lost_unseen = False
        else:
            slot = int(self._rng.integers(len(self._items)))
            self.n_dropped += 1
            lost_unseen = True
        self._items[slot], self._seen[slot] = sample, 0
        return not lost_unseen

    def _take(self, k: int) -> list:
        idx = self._rng.choice(len(self._items), size=k, replace=False).tolist()
        for i in idx:
            if self._seen[i] == 0:
                self._served.add(i)
            self._seen[i] += 1
        return [self._items[i] for i in idx]

    def _shrink(self, k: int) -> None:
        """Drop ``k`` samples as a full reservoir would: random already-served ones first
        (``n_evicted``), then random unseen ones (``n_dropped``)."""
        served = self._served.slots
        unseen = [i for i, n in enumerate(self._seen) if n == 0]
        n_served = min(k, len(served))
        drop = set(self._rng.choice(served, n_served, replace=False).tolist()) if n_served else set()
        if k > n_served:
            drop.update(self._rng.choice(unseen, k - n_served, replace=False).tolist())
        keep = [i for i in range(len(self._items)) if i not in drop]
        moved = {old: new for new, old in enumerate(keep)}
        self._items, self._seen = [self._items[i] for i in keep], [self._seen[i] for i in keep]
        self._served = _SlotSet()
        for i in served:  # in their old order: the slot set stays a function of the history
            if i in moved:
                self._served.add(moved[i])
        self.n_evicted += n_served
        self.n_dropped += k - n_served

    def _contents(self) -> dict:
        return {**super()._contents(), "seen": list(self._seen), "served": self._served.slots}

    def _restore(self, d: dict) -> None:
        super()._restore(d)
        self._seen = [int(s) for s in d["seen"]]
        self._served = _SlotSet()
        for i in d["served"]:  # in saved order: later evictions draw the same slots
            self._served.add(int(i))


class _SlotSet:
    """A set of slot indices with O(1) add and O(1) uniform random pop (the order is
    a pure function of the add/pop history, so restores replay the same draws)."""

    def __init__(self):
        self._slots: list[int] = []
        self._where: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def slots(self) -> list[int]:
        return list(self._slots)

    def add(self, slot: int) -> None:
        if slot not in self._where:
            self._where[slot] = len(self._slots)
            self._slots.append(slot)

    def pop_random(self, rng: np.random.Generator) -> int:
        k = int(rng.integers(len(self._slots)))
        slot, last = self._slots[k], self._slots[-1]
        self._slots[k], self._where[last] = last, k
        self._slots.pop()
        del self._where[slot]
        return slot


BUFFER_KINDS = {"fifo": FIFOBuffer, "firo": FIROBuffer, "reservoir": ReservoirBuffer}


def make_buffer(cfg: BufferConfig) -> Buffer:
    """The buffer of kind ``cfg.kind`` (validated by BufferConfig)."""
    return BUFFER_KINDS[cfg.kind](cfg)
