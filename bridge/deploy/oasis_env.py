"""Find an installed OASIS3-MCT 5 and its Python API (pyoasis), or say how to point at one.

The code lives in the coupling library (``bridge.transport.oasis_env``), beside
the transport that imports pyoasis, which must not import deployment; this
module re-exports it for ``oceanbridge launch`` and the deploy API.
"""
from __future__ import annotations

from bridge.transport.oasis_env import HOW_TO, OasisUnavailable, oasis_problems, require_pyoasis

__all__ = ["HOW_TO", "OasisUnavailable", "oasis_problems", "require_pyoasis"]
