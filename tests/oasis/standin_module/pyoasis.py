"""A module named ``pyoasis`` for the worker processes of the OASIS tests ONLY (never installed).

pyoasis 5 is not reachable here.  Put this folder on the PYTHONPATH of a test's worker, and
``$OBRIDGE_PYOASIS_STANDIN`` at the shared library that ``oasis_jobs.build_pyoasis_standin`` builds:
``import pyoasis`` (deploy/oasis_env.py) then gives tests/oasis/pyoasis_standin.py, the ctypes
stand-in over OASIS3-MCT 4.0's Fortran API, so the real ``oceanbridge worker`` runs on real OASIS.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/oasis: pyoasis_standin

from pyoasis_standin import PyoasisStandIn  # noqa: E402

try:
    _STANDIN = PyoasisStandIn(os.environ["OBRIDGE_PYOASIS_STANDIN"])
except KeyError:
    raise ImportError("the test stand-in for pyoasis needs $OBRIDGE_PYOASIS_STANDIN (its shared library)") from None

IS_A_STAND_IN = True
OASIS, Component, BoxPartition, Var, asarray = (_STANDIN.OASIS, _STANDIN.Component, _STANDIN.BoxPartition,
                                               _STANDIN.Var, _STANDIN.asarray)
