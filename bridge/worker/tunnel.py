"""``Tunnel``: the worker's view of the coupled job, built from the config's field table.

It joins the job as the worker component, declares this rank's tile (a
j-split of the global grid over the worker ranks, or the whole grid on one
rank), defines every field of the table once per ocean member, and exposes
``receive(member, step)`` / ``send(member, role, step, state)`` on stacked
states ``(C, nj, ni)``.  ``Schedule`` holds the gyre/NEMO/CROCO protocol of
``&namobridge``: which step carries what.  No torch here: the transport layer
is tested without ML.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from bridge.component import Component
from bridge.config.config import TO_WORKER, DeployConfig
from bridge.errors import BridgeError
from bridge.partition import BoxPartition, decompose

log = logging.getLogger(__name__)
LOST_PEER_WAIT_S = 1.0  # s the end waits for sends to a member that was lost (gyre_cpl.F90 waits as long)


@dataclass(frozen=True)
class Schedule:
    """When each exchange happens (gyre/README.md, 'Coupling protocol')."""
    nit000: int
    itend: int
    freq: int          # state fields, from nit000-1 on
    emu_freq: int      # <name>_emu fields, from nit000 on (0: no emulator)
    spinup: bool       # <name>_init fields, once at nit000-1
    initial_emu: bool = False  # <name>_emu fields also at nit000-1, discarded by the ocean (OASIS: t = 0)

    @classmethod
    def from_config(cls, cfg: DeployConfig) -> Schedule:
        states, emu = cfg.fields_with_role("state"), cfg.fields_with_role("emulated")
        # OASIS couples every field at every period from t = 0 (obridge.F90, obr_needs_initial_exchange)
        return cls(cfg.run.nit000, cfg.run.nit000 + cfg.run.steps - 1, states[0].freq,
                   emu[0].freq if emu else 0, bool(cfg.fields_with_role("initial")),
                   initial_emu=bool(emu) and cfg.run.backend == "oasis")

    @property
    def steps(self) -> range:
        return range(self.nit000 - 1, self.itend + 1)

    def sends_state(self, kt: int) -> bool:
        return kt % self.freq == 0

    def asks_emulated(self, kt: int) -> bool:
        return self.emu_freq > 0 and kt >= self.nit000 and kt % self.emu_freq == 0

    def discards_emulated(self, kt: int) -> bool:
        """The ocean gets '<name>_emu' at ``kt`` only to meet OASIS's coupling time 0, and discards it."""
        return self.initial_emu and kt == self.nit000 - 1

    def state_steps(self) -> list[int]:
        return [kt for kt in self.steps if self.sends_state(kt)]


def channel_names(cfg: DeployConfig) -> tuple[str, ...]:
    """Channels of a stacked state: one per state field, ``name@k`` per level of a 3-D one."""
    names: list[str] = []
    for f in cfg.fields_with_role("state"):
        names += [f.name] if f.nlev == 1 else [f"{f.name}@{k}" for k in range(f.nlev)]
    return tuple(names)


def worker_box(cfg: DeployConfig, rank: int, size: int) -> BoxPartition:
    """This worker rank's tile: a j-split of the global grid (the whole grid on one rank)."""
    return decompose(cfg.ocean.nx, cfg.ocean.ny, 1, size)[rank]


class Tunnel:
    """The worker component; after ``connect`` every (member, field) pair is defined and checked."""

    ROLE_SUFFIX = {"emulated": "_emu", "initial": "_init"}

    def __init__(self, cfg: DeployConfig, *, timeout: float | None = None, component=None):
        self.cfg = cfg
        self.members = cfg.components
        self.states = cfg.fields_with_role("state")
        self.timeout = float(timeout if timeout is not None else cfg.run.timeout)
        self.comp = component or Component(cfg.worker.name, backend=cfg.run.backend, timeout=self.timeout)
        comm = self.comp.local_comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.box = worker_box(cfg, self.rank, self.size)
        self._fields = {}
        self.lost: set[str] = set()

    def connect(self) -> None:
        """Declare the tile and every (member, field), then end the definitions (collective with the
        ocean).  Kept apart from joining so the worker can build its model in between: the ocean
        then waits in its own end of definitions, before its time loop, not inside it."""
        cfg = self.cfg
        self.comp.def_partition(self.box)
        for member in self.members:
            for f in cfg.fields:
                direction = "in" if f.direction == TO_WORKER else "out"
                # a fixed OASIS name ([[fields]] oasis_name) only means something to the OASIS backend
                named = ({"oasis_name": cfg.worker_oasis_name(member, f)}
                         if f.oasis_name and cfg.run.backend == "oasis" else {})
                self._fields[member, f.name] = self.comp.def_field(f.name, direction, nlev=f.nlev, peer=member,
                                                                   **named)
        self.comp.enddef()
        log.info("tunnel: rank %d/%d (pid %d) owns %s; %d member(s) x %d field(s)", self.rank, self.size,
                 os.getpid(), self.box.describe(), len(self.members), len(cfg.fields))

    def gaps(self) -> np.ndarray | None:
        """After connect: the points (ny, nx) that some member's ranks leave to no rank (an ocean that removed its
        land-only subdomains and declared it), which are land to the worker; None when every member covers the
        grid, or on the OASIS backend, which does not tell."""
        found = [g for g in (self.comp.unowned_points(m) for m in self.members) if g is not None]
        return np.logical_or.reduce(found) if found else None

    @property
    def local_comm(self):
        return self.comp.local_comm

    def receive(self, member: str, step: int, timeout: float | None = None) -> np.ndarray:
        """Every state field of ``member`` at ``step``, stacked: (C, nj, ni) float64; each get waits at most
        ``timeout`` s (default: the tunnel's)."""
        parts = [self._fields[member, f.name].get(step, timeout=timeout) for f in self.states]
        return np.concatenate(parts, axis=0)

    def send(self, member: str, role: str, step: int, state: np.ndarray) -> None:
        """Send a stacked state as the ``<name>_emu`` ('emulated') or ``<name>_init`` ('initial') fields."""
        suffix = self.ROLE_SUFFIX[role]
        k = 0
        for f in self.states:
            self._fields[member, f.name + suffix].put(step, state[k:k + f.nlev])
            k += f.nlev

    def drop(self, member: str) -> None:
        """``member`` is gone ([ocean] required = false): no more exchanges with it."""
        self.lost.add(member)

    def finalize(self) -> None:
        """Complete the outstanding sends; those to a lost member never will, so wait for them briefly only
        (as the ocean does for a lost worker) and say so instead of failing the finished run."""
        if not self.lost:
            self.comp.finalize()
            return
        timeout = self.comp.timeout  # (None: an OASIS component without one, which OASIS does not apply anyway)
        self.comp.timeout = LOST_PEER_WAIT_S if timeout is None else min(timeout, LOST_PEER_WAIT_S)
        try:
            self.comp.finalize()
        except BridgeError as err:
            log.warning("sends to lost member(s) %s dropped at the end: %s", sorted(self.lost), err)
