"""Find an installed OASIS3-MCT 5 and its Python API (pyoasis), or say how to point at one.

pyoasis ships only with OASIS3-MCT 5.x (``make -f TopMakefileOasis3 pyoasis``);
the PyPI package called ``pyoasis`` is unrelated, so we never install it and
we reject a module that lacks the OASIS API.  Nothing here runs at import:
pyoasis is imported only when a caller asks for the OASIS backend.  It lives in
the coupling library, beside the transport that needs it; ``oceanbridge launch``
uses it through ``bridge.transport.oasis_env``, which re-exports it.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from ..errors import BridgeError

HOW_TO = ("point oceanbridge at an installed OASIS3-MCT 5 built with 'make -f TopMakefileOasis3 pyoasis':\n"
          "  export OASIS_DIR=/path/to/oasis3-mct/<arch build dir>\n"
          "  export PYTHONPATH=$OASIS_DIR/python:$PYTHONPATH\n"
          "  export LD_LIBRARY_PATH=$OASIS_DIR/lib:$LD_LIBRARY_PATH\n"
          "(the PyPI package named 'pyoasis' is unrelated: do not pip install it)")


class OasisUnavailable(BridgeError):
    """OASIS3-MCT or pyoasis cannot be found; the message says which and how to fix it."""


def oasis_problems() -> list[str]:
    """What is missing for the OASIS backend (empty when OASIS_DIR and pyoasis are usable)."""
    problems = []
    oasis_dir = os.environ.get("OASIS_DIR", "")
    if not oasis_dir:
        problems.append("OASIS_DIR is not set")
    elif not os.path.isdir(oasis_dir):
        problems.append(f"OASIS_DIR={oasis_dir} is not a directory")
    try:
        _import_pyoasis()
    except OasisUnavailable as err:
        problems.append(str(err))
    return problems


def require_pyoasis(component: str | None = None) -> ModuleType:
    """Import and return pyoasis, or raise OasisUnavailable naming the component, OASIS_DIR/pyoasis and the fix.

    Importing OASIS3-MCT 5's pyoasis starts MPI (it imports mpi4py): a caller under mpirun must make an
    error abort the job afterwards (``bridge.component.abort_job_on_error_if_mpi_runs``)."""
    problems = oasis_problems()
    if problems:
        who = f" of component '{component}'" if component else ""
        raise OasisUnavailable(f"backend 'oasis'{who} needs OASIS3-MCT 5 and its pyoasis: "
                               + "; ".join(problems) + "\n" + HOW_TO)
    return _import_pyoasis()


def _import_pyoasis() -> ModuleType:
    try:
        module = importlib.import_module("pyoasis")
    except ImportError as err:
        raise OasisUnavailable(f"cannot import pyoasis ({err}); is $OASIS_DIR/python on PYTHONPATH "
                               "and $OASIS_DIR/lib on LD_LIBRARY_PATH?") from None
    if not hasattr(module, "Component"):  # e.g. the unrelated PyPI package of the same name
        raise OasisUnavailable(f"the pyoasis found at {getattr(module, '__file__', '?')} has no "
                               "Component: it is not OASIS3-MCT's pyoasis (probably the unrelated PyPI package "
                               "of that name: 'pip uninstall pyoasis', then put $OASIS_DIR/python on PYTHONPATH)")
    return module
