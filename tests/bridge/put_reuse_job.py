"""MPMD job for test_bridge_put.py: a Python sender overwrites its array right after put.

Usage: python put_reuse_job.py sender|receiver|absent NX NY
The sender puts a known field, at once fills its array with -1 and puts
again; the receiver gets late (in copy mode the transfer then cannot have
happened yet) and prints whether both steps arrived as they were at their
put. The sender prints how many packing buffers it made: none in the direct
put mode ($OBRIDGE_PUT_MODE), which sends from the array and waits.
An 'absent' receiver defines the field but never gets it: a direct put must
stop at the sender's timeout (OBRIDGE_TIMEOUT) with a message, not hang.
"""
import os
import sys
import time

import numpy as np

from bridge import BoxPartition, Component


def main(role: str, nx: int, ny: int) -> None:
    comp = Component("receiver" if role == "absent" else role,
                     timeout=float(os.environ.get("OBRIDGE_TIMEOUT", "60")))
    comp.def_partition(BoxPartition.whole(nx, ny))
    field = comp.def_field("f", "out" if role == "sender" else "in", 1)
    comp.enddef()
    known = np.arange(nx * ny, dtype=np.float64).reshape(1, ny, nx)
    if role == "sender":
        array = known.copy()
        field.put(1, array)
        array[...] = -1.0  # the bridge must have copied step 1 already
        field.put(2, array)
        array[...] = -2.0
        print(f"sender: {comp.put_mode} put, {len(field._stage)} packing buffer(s)", flush=True)
    elif role == "absent":
        time.sleep(30.0)  # longer than the sender's timeout; the sender's abort ends the job
    else:
        time.sleep(1.0)
        ok1 = np.array_equal(field.get(1), known)
        ok2 = np.array_equal(field.get(2), np.full_like(known, -1.0))
        print(f"receiver: step 1 intact {ok1}, step 2 intact {ok2}", flush=True)
    comp.finalize()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
