"""oceanbridge coupling layer: components, partitions, transports and the worker runtime.

Importing this package has no side effects: MPI starts when a Component is made.
"""
from .component import Component
from .errors import BridgeError, BridgeTimeout, DefinitionError, FieldValueError
from .partition import BoxPartition, decompose

__all__ = ["Component", "BoxPartition", "decompose", "BridgeError", "BridgeTimeout", "DefinitionError",
           "FieldValueError"]
