"""``Component``: join a coupled job under a name, on the chosen backend.

Both backends expose the same calls: ``def_partition``, ``def_field``,
``enddef``, ``field``, ``finalize`` on the component, and ``put``/``get`` on
fields. Nothing is imported until a component is made, so ``import bridge``
neither starts MPI nor looks for OASIS.
"""
from __future__ import annotations

BACKENDS = ("mpi", "oasis")


def Component(name: str, *, backend: str = "mpi", **options):  # noqa: N802 - a constructor by intent
    """Join the MPMD job as component ``name`` and return it.

    options: ``timeout`` (seconds for every blocking wait), ``nan_policy``
    ('error', 'warn' or 'off') for NaN/Inf in puts, ``put_mode`` (MPI backend:
    'copy', the default, returns once the data is copied; 'direct' sends from
    the caller's array and returns once the receivers have it; default
    $OBRIDGE_PUT_MODE). Under 'error' (the MPI
    backend) a put holding NaN/Inf still completes its message, flagged as
    rejected, then raises FieldValueError; the receiver's get raises
    FieldValueError naming the field, step, sending rank and the count, and
    its array is undefined. The MPI backend also reads
    $OBRIDGE_TIMEOUT, $OBRIDGE_RING, $OBRIDGE_PUT_MODE and $OBRIDGE_WAIT (auto|spin|yield, see
    bridge.transport.wait); a malformed value is an error naming it."""
    if backend == "mpi":
        from .transport.mpi import MpiComponent
        return MpiComponent(name, **options)
    if backend == "oasis":
        from .transport.oasis import OasisComponent
        return OasisComponent(name, **options)
    raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
