"""PyoasisStandIn: a STAND-IN for pyoasis 5 (not available here), over OASIS3-MCT 4.0's Fortran API.

It offers the part of pyoasis's API that bridge/transport/oasis.py uses
(Component, BoxPartition, Var with bundle_size, put/get, cpl_freqs, asarray,
OASIS.IN/OUT) by calling the C-callable wrappers of tests/oasis/pyoasis_standin.F90
through ctypes.  Like pyoasis, it hands OASIS Fortran-ordered arrays, bundle
last.  It is a test fixture: the real pyoasis replaces it in production.
"""
from __future__ import annotations

import ctypes

import numpy as np

_INT = ctypes.c_int


class PyoasisStandIn:
    """A stand-in for the ``pyoasis`` module, backed by a shared library of OASIS wrappers."""

    IS_A_STAND_IN = True

    class OASIS:
        IN, OUT = 21, 20

    def __init__(self, library: str):
        from mpi4py import MPI  # MPI first, as pyoasis does: OASIS then leaves MPI_Finalize to mpi4py
        self._lib = lib = ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
        standin = self

        def call(name, *args):
            status = _INT()
            getattr(lib, name)(*args, ctypes.byref(status))
            if status.value < 0:
                raise RuntimeError(f"pyoasis stand-in: {name} returned {status.value}")
            return status.value

        class Component:
            def __init__(self, name, coupled=True, communicator=None):
                comp_id, fcomm = _INT(), _INT()
                call("sc_init_comp", name.encode() + b"\0", ctypes.byref(comp_id), ctypes.byref(fcomm))
                self.name, self._id = name, comp_id.value
                self.localcomm = MPI.Comm.f2py(fcomm.value)

            def enddef(self):
                call("sc_enddef")
                standin._ended = True

            def terminate(self):
                call("sc_terminate")

        class BoxPartition:
            def __init__(self, offset, ni, nj, nx, global_size=-1):  # pyoasis 5's signature
                part = _INT()
                call("sc_def_partition", _INT(offset), _INT(ni), _INT(nj), _INT(nx), _INT(global_size),
                     ctypes.byref(part))
                self._id, self.size = part.value, ni * nj

        class Var:
            def __init__(self, name, partition, inout, bundle_size=1):
                var = _INT()
                call("sc_def_var", name.encode() + b"\0", _INT(partition._id), _INT(bundle_size), _INT(inout),
                     ctypes.byref(var))
                self.name, self._id, self._inout = name, var.value, inout
                self.bundle_size, self._npts = bundle_size, partition.size

            def get_id(self):
                return self._id

            @property
            def cpl_freqs(self):
                period = _INT()
                call("sc_get_freq", _INT(self._id), _INT(self._inout), ctypes.byref(period))
                return [period.value]

            def _exchange(self, what, t, field):
                if field.shape != (self._npts, self.bundle_size) or not field.flags.f_contiguous:
                    raise ValueError(f"{self.name}: {what} needs a Fortran-ordered ({self._npts}, "
                                     f"{self.bundle_size}) float64 array, got {field.shape}")
                info = _INT()
                getattr(lib, "sc_" + what)(_INT(self._id), _INT(t), _INT(self._npts), _INT(self.bundle_size),
                                           field.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), ctypes.byref(info))
                return info.value

            def put(self, t, field):
                return self._exchange("put", t, field)

            def get(self, t, field):
                return self._exchange("get", t, field)

        self.Component, self.BoxPartition, self.Var = Component, BoxPartition, Var
        self._ended = False

    @staticmethod
    def asarray(array):
        return np.asarray(array, dtype=np.float64, order="F")
