"""Exceptions raised by the bridge. Every message names the field, component or rank."""


class BridgeError(RuntimeError):
    """Base class of every error the bridge raises."""


class DefinitionError(BridgeError):
    """Inconsistent definitions found at end of definitions (shapes, partitions, peers)."""


class BridgeTimeout(BridgeError):
    """A blocking exchange did not complete within the configured timeout."""


class FieldValueError(BridgeError):
    """A put carried NaN or Inf values (rejected unless the NaN policy says 'warn')."""
