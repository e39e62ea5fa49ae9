"""Waiting on MPI requests with a deadline, so no exchange hangs silently.

Polling yields the core (sched_yield) for a short window and while pieces are
arriving, so a transfer already on its way completes at full speed; past the
window it backs off to short sleeps, so an idle receiver leaves the cores to
the ocean. The Fortran side (obr_mpi.F90, wait_requests) waits the same way.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from ..errors import BridgeTimeout

MAX_SLEEP = 1e-3
SPIN_WINDOW = 2e-3  # seconds of yield-polling before backing off to sleeps


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
