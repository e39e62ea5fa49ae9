"""FakePyoasisForTests: a MOCK of the pyoasis 5 API, for unit tests without OASIS3-MCT.

It is not OASIS: no MPI, no namcouple routing.  It records what the transport
hands to pyoasis (partition arguments, variable names and bundle sizes, the
time and the array of every put) and plays back values for gets, so the
tests can check layouts, times, names and errors.  Names listed in
``missing`` get the variable id -1, as oasis_def_var gives for a name that
is not in the namcouple.
"""
from __future__ import annotations

import numpy as np


class FakePyoasisForTests:
    """A mock of the ``pyoasis`` module (Component, BoxPartition, Var, asarray, OASIS)."""

    IS_A_MOCK = True

    class OASIS:
        IN, OUT = 21, 20

    def __init__(self, missing=(), get_info=3, localcomm="fake-localcomm", periods=None):
        self.missing, self.get_info, self.localcomm = set(missing), get_info, localcomm
        self.periods = periods or {}  # wire name -> coupling period (s), as Var.cpl_freqs reports
        self.events: list[tuple] = []   # (what, ...) in call order
        self.inbox: dict[str, np.ndarray] = {}  # wire name -> (ni*nj, nlev) values a get delivers
        fake = self

        class Component:
            def __init__(self, name, coupled=True, communicator=None):
                self.name, self.localcomm = name, fake.localcomm
                fake.events.append(("component", name, coupled))

            def enddef(self):
                fake.events.append(("enddef",))

            def terminate(self):
                fake.events.append(("terminate",))

        class BoxPartition:
            def __init__(self, offset, ni, nj, nx, global_size=-1):
                self.args = (offset, ni, nj, nx) + ((global_size,) if global_size != -1 else ())
                fake.events.append(("box", *self.args))

        class Var:
            def __init__(self, name, partition, inout, bundle_size=1):
                self.name, self.partition, self.inout, self.bundle_size = name, partition, inout, bundle_size
                self._id = -1 if name in fake.missing else len(fake.events)
                if name in fake.periods:
                    self.cpl_freqs = [fake.periods[name]]
                fake.events.append(("var", name, inout, bundle_size))

            def put(self, t, field):
                fake.events.append(("put", self.name, t, field))
                return 4

            def get(self, t, field):
                fake.events.append(("get", self.name, t))
                if fake.get_info == 3:
                    field[...] = fake.inbox[self.name]
                return fake.get_info

        self.Component, self.BoxPartition, self.Var = Component, BoxPartition, Var

    @staticmethod
    def asarray(array):
        return np.asfortranarray(array, dtype=np.float64)
