"""The worker process inside the MPMD job: it joins MPI before anything can fail, and
every way it ends is chosen, never a hang.

- **Before the coupling is up** (arguments, config, settings, model, end of
  definitions) any error stops the whole job (MPI_Abort).  A typo must stop the
  run before it starts, and the ocean ranks then wait in a collective over
  MPI_COMM_WORLD (MPI_Init's fence, the bridge's init) that only this process
  could complete: leaving alone would hang them with no timeout.
- **While coupled** an error aborts the job when the ocean requires the worker
  (``[ocean] required``).  Otherwise this process leaves alone, exit status 1
  and no MPI_Finalize (which would wait for the ocean), and the ocean goes on
  uncoupled after its timeout.
- **SIGTERM, SIGINT, SIGHUP** (a scheduler's time limit, mpirun tearing the job
  down because a rank died, Ctrl-C) raise ``Stopped`` in the main thread; the
  runtime writes its final checkpoint and outputs, and the process exits with
  128 + the signal number.  mpirun gives it ``[run] stop_grace``
  seconds before SIGKILL.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from typing import NoReturn

from bridge.errors import BridgeError
from models.settings import ConfigError

log = logging.getLogger("bridge.worker")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
EXPLAINED = (ConfigError, BridgeError, OSError)  # their message says it all: no traceback


class Stopped(BaseException):
    """A stop signal arrived.  A BaseException, so no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(f"{signal.Signals(signum).name} received")
        self.signum = signum


class WorkerProcess:
    """Where the worker stands in the job, and how it ends from there."""

    def __init__(self):
        from mpi4py import MPI  # MPI_Init: first of all (module docstring)
        self.mpi = MPI
        self.rank = MPI.COMM_WORLD.Get_rank()
        self.coupled = False
        self.required = True
        self._stopping = False

    def catch_stop_signals(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self._stopping:  # a second signal must not interrupt the final checkpoint
            log.warning("%s received again: still writing the final checkpoint", signal.Signals(signum).name)
            return
        self._stopping = True
        raise Stopped(signum)

    def mark_coupled(self, required: bool) -> None:
        """The end of definitions is behind: from now on errors follow ``[ocean] required``."""
        self.coupled, self.required = True, required

    def end(self, err: BaseException) -> NoReturn:
        """Say why the worker stops, then leave as the module docstring says.  Never returns."""
        if isinstance(err, Stopped):
            log.warning("worker (world rank %d): %s; final checkpoint written, stopping", self.rank, err)
            self._exit(128 + err.signum)
        if isinstance(err, SystemExit):  # raise SystemExit("...") carries its message; argparse printed its own
            message = f"exit status {err.code} (see above)" if isinstance(err.code, int) else str(err.code)
        elif isinstance(err, EXPLAINED):
            message = str(err)
        else:
            traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
            message = f"{type(err).__name__}: {err}"
        print(f"oceanbridge worker ERROR (world rank {self.rank}): {message}", file=sys.stderr, flush=True)
        if self.coupled and not self.required:
            print(f"oceanbridge worker (world rank {self.rank}): [ocean] required = false: the worker leaves, "
                  "the ocean goes on uncoupled", file=sys.stderr, flush=True)
            self._exit(1)
        what = "the coupled job" if self.coupled else "the job before its start"
        print(f"oceanbridge worker (world rank {self.rank}): stopping {what} (MPI_Abort)", file=sys.stderr, flush=True)
        self.mpi.COMM_WORLD.Abort(1)
        self._exit(1)  # not reached

    @staticmethod
    def _exit(status: int) -> NoReturn:
        """Leave without MPI_Finalize (it would wait for ranks that are gone or still running)."""
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
