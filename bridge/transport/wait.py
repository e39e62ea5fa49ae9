"""Waiting on MPI requests with a deadline, so no exchange hangs silently.

Polling backs off from a tight spin to short sleeps while nothing arrives, so
an idle receiver leaves the cores to the ocean, and spins once the first
piece has completed, so the rest of a large transfer streams at full speed.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

from ..errors import BridgeTimeout

MAX_SLEEP = 1e-3


def wait_all(requests: Sequence, timeout: float, describe: Callable[[list[int]], str]) -> None:
    """Complete every request, or cancel the rest and raise BridgeTimeout.

    ``describe(pending_indices)`` builds the message: it must name the field,
    the step and the peers that did not deliver."""
    from mpi4py import MPI

    reqs = list(requests)
    done = [False] * len(reqs)
    deadline = time.monotonic() + timeout
    pause, streaming = 0.0, False
    while True:
        finished = MPI.Request.Testsome(reqs)
        if finished:
            for k in finished:
                done[k] = True
            streaming = True
        if all(done):
            return
        if time.monotonic() > deadline:
            pending = [k for k, ok in enumerate(done) if not ok]
            _cancel(reqs, pending)
            raise BridgeTimeout(describe(pending) + f" (timeout {timeout:g} s)")
        if streaming:
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
