"""Exceptions raised by the bridge. Every message names the field, component or rank."""


class BridgeError(RuntimeError):
    """Base class of every error the bridge raises."""

    reported = False  # True once printed where it was raised: the job-abort hook (transport.mpi) prints it no more


class DefinitionError(BridgeError):
    """Inconsistent definitions found at end of definitions (shapes, partitions, peers)."""


class ProtocolError(DefinitionError):
    """Two ranks speak different versions of the bridge's wire protocol (built from different oceanbridge versions)."""


class BridgeTimeout(BridgeError):
    """A blocking exchange did not complete within the configured timeout."""


class FieldValueError(BridgeError):
    """A put carried NaN or Inf values (rejected unless the NaN policy says 'warn'); raised by the
    put that was rejected, and by the get that received it (whose array is then undefined)."""
