"""Waiting on MPI requests with a deadline, so no exchange hangs silently.

Two ways to wait, chosen by ``$OBRIDGE_WAIT`` (``oceanbridge launch`` sets it from ``[run] wait_mode``;
when unset, ``env.WAIT_MODE``):

- ``spin``: poll without pause, as MPI's own Wait does; fastest when every
  process of the node has a core of its own.
- ``yield``: poll yielding the core (sched_yield) for a short window and while
  pieces are arriving, so a transfer already on its way completes at full
  speed; past the window back off to short sleeps, so an idle receiver leaves
  the cores to the ocean.
- ``auto``: ``spin`` when the job's processes on this node are no more than
  the cores their affinity masks allow (see ``configure``), else ``yield``;
  ``yield`` until the component has counted them, and in a process whose
  other thread computes (the worker's training thread, ``yield_to_busy_thread``).

The Fortran side (obr_mpi.F90, wait_requests) waits the same way.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import BridgeTimeout
from .env import WAIT_MODE, env_word

if TYPE_CHECKING:  # numpy is imported where the mask is built, not with the transport
    import numpy as np

MAX_SLEEP = 1e-3
SPIN_WINDOW = 2e-3  # seconds of yield-polling before backing off to sleeps
WAIT_MODES = WAIT_MODE.choices
AFFINITY_WORDS = 16  # a glibc cpu_set_t: 1024 bits, as the Fortran side reads it

_spin = False  # the mode in force: set by configure(), yield until then


def wait_mode() -> str:
    """$OBRIDGE_WAIT ([run] wait_mode, default env.WAIT_MODE), validated: an unknown value is named, not
    guessed."""
    return env_word(WAIT_MODE, "wait mode")


def affinity_mask() -> np.ndarray:
    """This process's CPU affinity as AFFINITY_WORDS 64-bit words (bit c = CPU c)."""
    import numpy as np

    mask = np.zeros(AFFINITY_WORDS, dtype=np.uint64)
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    for cpu in cpus:
        if cpu < 64 * AFFINITY_WORDS:
            mask[cpu // 64] |= np.uint64(1) << np.uint64(cpu % 64)
    return mask.view(np.int64)  # the Fortran side's integer(int64) words, bit for bit


def configure(world) -> bool:
    """Choose the wait mode for this process; collective over ``world``.

    Counts the job's processes on this node (MPI_COMM_TYPE_SHARED split) and
    the cores in the union of their affinity masks (Allreduce BOR); the
    Fortran side makes the same two calls in the same order. Returns True when
    waits spin."""
    global _spin
    import numpy as np
    from mpi4py import MPI

    mode = wait_mode()  # validated before the collectives, so a bad value stops every rank the same way
    node = world.Split_type(MPI.COMM_TYPE_SHARED, world.Get_rank())
    union = np.zeros(AFFINITY_WORDS, dtype=np.int64)
    node.Allreduce([affinity_mask(), MPI.INT64_T], [union, MPI.INT64_T], op=MPI.BOR)
    nprocs = node.Get_size()
    node.Free()
    cores = sum(bin(int(w) & (2**64 - 1)).count("1") for w in union)
    _spin = mode == "spin" or (mode == "auto" and nprocs <= cores)
    return _spin


def yield_to_busy_thread(what: str) -> None:
    """Under ``auto``, stop spinning in this process because another of its threads computes (``what``,
    e.g. the worker's training thread): ``configure`` counted processes, and a spinning receiver would
    take that thread's core.  An explicit ``$OBRIDGE_WAIT=spin`` is obeyed."""
    global _spin
    if _spin and wait_mode() == "auto":
        _spin = False
        logging.getLogger(__name__).info("waits yield: %s shares this process's cores", what)


def spinning() -> bool:
    """True when waits spin (see configure)."""
    return _spin


def wait_all(requests: Sequence, timeout: float, describe: Callable[[list[int]], str]) -> None:
    """Complete every request, or cancel the rest and raise BridgeTimeout.

    ``describe(pending_indices)`` builds the message: it must name the field,
    the step and the peers that did not deliver."""
    from mpi4py import MPI

    reqs = list(requests)
    done = [False] * len(reqs)
    start = time.monotonic()
    deadline = start + timeout
    pause, streaming = 0.0, False
    while True:
        finished = MPI.Request.Testsome(reqs)
        if finished:
            for k in finished:
                done[k] = True
            streaming = True
        if all(done):
            return
        now = time.monotonic()
        if now > deadline:
            pending = [k for k, ok in enumerate(done) if not ok]
            _cancel(reqs, pending)
            raise BridgeTimeout(describe(pending) + f" (timeout {timeout:g} s)")
        if _spin:
            continue
        if streaming or now - start < SPIN_WINDOW:
            os.sched_yield()  # let an oversubscribed core's other ranks run
            continue
        if pause:
            time.sleep(pause)
        pause = min(max(pause * 2, 1e-5), MAX_SLEEP)


def _cancel(reqs, pending: list[int]) -> None:
    for k in pending:
        try:
            reqs[k].Cancel()
            reqs[k].Free()
        except Exception:  # a request that completed meanwhile cannot be cancelled; nothing to undo
            pass
