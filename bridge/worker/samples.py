"""``BufferedSample``: one item of the worker's replay buffer.

The runtime puts one for every usable pair the members stream; the engine (a surrogate batch), the
posterior estimator (infer mode) and the checkpoint read them by name. Checkpoints hold them as plain
data (``as_plain``/``from_plain``), because the safe loader accepts no class of ours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLAIN_KEY = "buffered_sample"  # marks a sample in a checkpoint's buffer items


@dataclass(frozen=True, slots=True)
class BufferedSample:
    member: int  # index of the member (in [ocean] members order) that produced it
    theta: np.ndarray  # (P,) that member's physical parameters
    state: np.ndarray | None  # (C, nj, ni) x_t the step starts from; None for the generate mode's x_eq
    target: np.ndarray  # (C, nj, ni) x_{t+Δ}, or the equilibrated state x_eq

    @classmethod
    def of(cls, item) -> BufferedSample:
        """A sample from itself or from the positional ``(member, θ, x_t, x_next)`` of older checkpoints."""
        return item if isinstance(item, cls) else cls(*item)

    def as_plain(self) -> dict:
        return {PLAIN_KEY: [self.member, self.theta, self.state, self.target]}

    @classmethod
    def from_plain(cls, item):
        """The inverse of ``as_plain``; any other item is returned as it is."""
        return cls(*item[PLAIN_KEY]) if isinstance(item, dict) and PLAIN_KEY in item else item


def stacked_states(samples: list[BufferedSample]) -> np.ndarray | None:
    """The samples' x_t stacked, (N, C, nj, ni); None for the generate mode's samples, which have none (the modes
    never share a run, so a batch never mixes the two)."""
    states = [s.state for s in samples if s.state is not None]
    if not states:
        return None
    if len(states) != len(samples):
        raise ValueError(f"{len(samples) - len(states)} of {len(samples)} samples have no x_t (generate-mode "
                         "samples mixed with others)")
    return np.stack(states)
