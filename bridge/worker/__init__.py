"""The oceanbridge worker: the Python side of an in-situ run (online training,
emulation, spin-up, ensemble statistics).  See bridge/worker/README.md.

Importing this package has no side effects and does not import torch or MPI;
``main`` is the ``oceanbridge worker`` verb.
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from bridge.worker.cli import main as _main
    return _main(argv)
