"""What the worker keeps in memory during a run for its outputs and its summary."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Counters:
    """Runtime counters; saved in checkpoints and carried over a relaunch."""
    launches: int = 0
    received: int = 0       # states received (every member)
    rejected: int = 0       # states with NaN/Inf, not used
    pairs: int = 0          # samples offered to the buffer: (x_t, x_{t+Δ}) pairs, or equilibrated states (generate)
    emulated: int = 0       # emulated states sent
    last_step: int = -1     # last ocean step handled

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> Counters:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class EnsembleRecord:
    """States of every member at every state step, for the ensemble statistics.  A member that was
    lost (``drop``) counts as NaN from then on, so the statistics are over the members still there."""
    members: tuple[str, ...]
    steps: list[int] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)  # each (K, C, nj, ni)
    lost: set = field(default_factory=set)
    _pending: dict = field(default_factory=dict)

    def add(self, member: str, step: int, state: np.ndarray) -> None:
        self._pending[member] = state
        self._complete(step)

    def drop(self, member: str) -> None:
        self.lost.add(member)

    def _complete(self, step: int) -> None:
        if not self._pending or any(m not in self._pending for m in self.members if m not in self.lost):
            return
        like = next(iter(self._pending.values()))
        self.steps.append(step)
        self.states.append(np.stack([self._pending.get(m, np.full(like.shape, np.nan)) for m in self.members])
                           .astype(np.float32))
        self._pending = {}

    def array(self) -> np.ndarray:
        return np.stack(self.states)  # (T, K, C, nj, ni)


@dataclass
class EmulationRecord:
    """Per member: what was sent at each emulator step and the ocean's own step from the same start."""
    members: tuple[str, ...]
    steps: dict = field(default_factory=dict)     # member -> [kt]
    sent: dict = field(default_factory=dict)      # member -> [(C, nj, ni)]
    ocean: dict = field(default_factory=dict)
    spread: dict = field(default_factory=dict)
    start: dict = field(default_factory=dict)     # member -> [state the step started from]
    mean: dict = field(default_factory=dict)      # member -> [mean of the diffusion samples]
    crps: dict = field(default_factory=dict)      # member -> [fair CRPS of the samples at each point, or None]

    def add(self, member: str, step: int, start: np.ndarray, sent: np.ndarray, ocean: np.ndarray,
            spread: np.ndarray, mean: np.ndarray, crps: np.ndarray | None = None) -> None:
        for store, value in ((self.steps, step), (self.sent, sent), (self.ocean, ocean), (self.spread, spread),
                             (self.start, start), (self.mean, mean), (self.crps, crps)):
            store.setdefault(member, []).append(value)

    lost: set = field(default_factory=set)        # members dropped during the run: NaN from their loss on

    def drop(self, member: str) -> None:
        self.lost.add(member)

    def common_steps(self) -> list[int]:
        """The steps every member still there has (a lost member's are NaN after its loss)."""
        sets = [set(self.steps.get(m, [])) for m in self.members if m not in self.lost]
        return sorted(set.intersection(*sets)) if sets else []

    def arrays(self, which: dict) -> np.ndarray:
        """(K, T, C, nj, ni) over ``common_steps``."""
        steps = self.common_steps()
        like = next(v[0] for v in which.values() if v)
        return np.stack([np.stack([self._at(which, m, s, like) for s in steps]) for m in self.members])

    def _at(self, which: dict, member: str, step: int, like: np.ndarray) -> np.ndarray:
        kts = self.steps.get(member, [])
        return which[member][kts.index(step)] if step in kts else np.full(like.shape, np.nan)

    def errors(self) -> dict:
        """Mean squared error of the emulated step and of persistence, against the ocean's own step."""
        if not self.common_steps():
            return {}
        sent, ocean, start = self.arrays(self.sent), self.arrays(self.ocean), self.arrays(self.start)
        return {"emulator_mse": float(np.nanmean((sent - ocean) ** 2)),
                "persistence_mse": float(np.nanmean((start - ocean) ** 2)),
                "emulated_steps": len(self.common_steps())}
