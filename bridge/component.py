"""``Component``: join a coupled job under a name, on the chosen backend.

Both backends expose the same calls: ``def_partition``, ``def_field``,
``enddef``, ``field``, ``finalize`` on the component, and ``put``/``get`` on
fields. Nothing is imported until a component is made, so ``import bridge``
neither starts MPI nor looks for OASIS.

No hang on a failed start: once MPI runs in this process, an uncaught error
must abort the whole job (MPI_Abort), or the interpreter's exit would sit in
MPI_Finalize while the other programs wait in a collective (oasis_init_comp,
the bridge's init) for ever.  ``abort_job_on_error_if_mpi_runs`` installs that
hook (``transport.mpi._abort_job_on_uncaught_exception``); ``Component`` calls
it first thing (MPI may already run: a script or the worker CLI joined it), and
the OASIS transport again right after each step that may start MPI (importing
pyoasis), before anything that can raise.
"""
from __future__ import annotations

import sys

BACKENDS = ("mpi", "oasis")


def abort_job_on_error_if_mpi_runs(name: str) -> bool:
    """If MPI is initialized (and not finalized) in this process, make an uncaught exception abort the job,
    with a message naming component ``name``; returns whether it did.  Never starts MPI itself."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return False
    rank = mpi.COMM_WORLD.Get_rank()
    try:
        from .transport.mpi import _abort_job_on_uncaught_exception
    except BaseException as err:  # e.g. a bad $OBRIDGE_TIMEOUT, named at import: say it and stop the job here
        print(f"oceanbridge ERROR (component '{name}', world rank {rank}): {err}", file=sys.stderr, flush=True)
        mpi.COMM_WORLD.Abort(1)
        raise
    _abort_job_on_uncaught_exception(name, rank)
    return True


def Component(name: str, *, backend: str = "mpi", **options):  # noqa: N802 - a constructor by intent
    """Join the MPMD job as component ``name`` and return it.

    options: ``timeout`` (seconds for every blocking wait), ``nan_policy``
    ('error', 'warn' or 'off') for NaN/Inf in puts, ``put_mode`` (MPI backend:
    'copy' returns once the data is copied; 'direct' sends from
    the caller's array and returns once the receivers have it). Under 'error' (the MPI
    backend) a put holding NaN/Inf still completes its message, flagged as
    rejected, then raises FieldValueError; the receiver's get raises
    FieldValueError naming the field, step, sending rank and the count, and
    its array is undefined. The MPI backend takes the defaults of ``timeout``,
    ``nan_policy`` and ``put_mode`` from $OBRIDGE_TIMEOUT, $OBRIDGE_NAN_POLICY and
    $OBRIDGE_PUT_MODE, and also reads $OBRIDGE_RING and $OBRIDGE_WAIT (auto|spin|yield, see
    bridge.transport.wait): ``oceanbridge launch`` sets them all from the deploy config's
    ``[run]`` keys (timeout, nan_policy, put_mode, put_ring, wait_mode); unset, each is the
    default of bridge.transport.env. A malformed value is an error naming it."""
    abort_job_on_error_if_mpi_runs(name)  # first: nothing below may raise into MPI_Finalize
    if backend == "mpi":
        from .transport.mpi import MpiComponent
        return MpiComponent(name, **options)
    if backend == "oasis":
        from .transport.oasis import OasisComponent
        return OasisComponent(name, **options)
    raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
