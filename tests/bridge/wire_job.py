"""MPMD jobs for test_bridge_wire.py: the wire protocol's NaN verdicts and version check.

Usage:
  python wire_job.py worker NX NY NLEV MODE   partner of obr_exchange_ocean (2 steps, fields a2 b3 in, c2 d3 out)
      MODE nan3:  step 1's 'a2' arrives rejected (the get must raise); 'c2' is put with 3 NaN at step 1
      MODE older: this rank's records are written as the unversioned (older) code writes them
  python wire_job.py pair ROLE VERSION        two Python components 'a' (normal) and 'b' (records of VERSION;
                                              'blank' = the unversioned code) exchanging one field
"""
import sys

import numpy as np

from bridge import BoxPartition, Component, decompose, handshake
from bridge.errors import FieldValueError
from bridge.examples.exchange_worker import analytic


def write_records_as(version: str) -> None:
    """Make this process write its end-of-definitions records as code of another protocol version."""
    encode = handshake.encode

    def patched(component, box, fields, protocol=handshake.PROTOCOL_VERSION, gaps=False):
        data = encode(component, box, fields, gaps=gaps)
        head = data[:handshake.RECORD_LEN - handshake.VERSION_WIDTH]
        tail = (" " * handshake.VERSION_WIDTH if version == "blank" else f"{int(version):{handshake.VERSION_WIDTH}d}")
        return head + tail.encode("ascii") + data[handshake.RECORD_LEN:]

    handshake.encode = patched


def worker(nx: int, ny: int, nlev: int, mode: str) -> None:
    if mode == "older":
        write_records_as("blank")
    comp = Component("worker", timeout=20.0, nan_policy="error")
    box = decompose(nx, ny, 1, 1)[0]
    comp.def_partition(box)
    a2, b3 = comp.def_field("a2", "in", 1, peer="ocean"), comp.def_field("b3", "in", nlev, peer="ocean")
    c2, d3 = comp.def_field("c2", "out", 1, peer="ocean"), comp.def_field("d3", "out", nlev, peer="ocean")
    comp.enddef()
    for step in range(2):
        try:
            got = a2.get(step)
            assert np.array_equal(got, analytic(1, step, box, 1)), f"a2 differs at step {step}"
        except FieldValueError as err:
            print(f"worker get raised: {err}", flush=True)
        assert np.array_equal(b3.get(step), analytic(2, step, box, nlev)), f"b3 differs at step {step}"
        values = analytic(3, step, box, 1)
        if step == 1:
            values[0, 1, 2] = values[0, 2, 1] = np.nan
            values[0, 0, 3] = np.inf
        try:
            c2.put(step, values)
        except FieldValueError as err:
            print(f"worker put raised: {err}", flush=True)
        d3.put(step, analytic(4, step, box, nlev))
    comp.finalize()
    print("worker done", flush=True)


def pair(role: str, version: str) -> None:
    if role == "b":
        write_records_as(version)
    comp = Component(role, timeout=5.0)
    comp.def_partition(BoxPartition.whole(8, 4))
    field = comp.def_field("x", "out" if role == "a" else "in", 1)
    comp.enddef()
    print(f"{role}: past enddef", flush=True)
    if role == "a":
        field.put(0, np.zeros((4, 8)))
    else:
        field.get(0)
    comp.finalize()


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(*map(int, sys.argv[2:5]), sys.argv[5])
    else:
        pair(sys.argv[2], sys.argv[3])
