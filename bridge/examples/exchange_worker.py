"""Python side of the bridge example and end-to-end test (see bridge/fortran/examples/exchange_ocean.F90).

Usage: python exchange_worker.py NX NY NLEV NSTEPS PX PY [MODE]
Each Python rank owns a box of a PX x PY decomposition (different from the
ocean's), receives 'a2'/'b3' and checks them bit for bit against the analytic
field, and sends 'c2'/'d3' back. MODE: normal | shape | gap | overlap |
silent (never sends: the ocean's get must time out) | die (SIGKILL
after the definitions) | badname | nanwarn (expects the NaN the ocean sent at step 1) |
drop=OPX,OPY,K[,K2] (the ocean removed subdomains K, K2 of its OPX x OPY layout and declared the gaps:
expects GAP_FILL there) | gapdeclared (rank 0 leaves the last column of its box to no rank and declares it).
"""
import os
import sys

import numpy as np

from bridge import BoxPartition, Component, decompose
from bridge.partition import GAP_FILL


def analytic(fid: int, step: int, box: BoxPartition, nlev: int) -> np.ndarray:
    """Exact in float64, the same formula as exchange_ocean.F90's analytic()."""
    k, j, i = np.meshgrid(np.arange(nlev), np.arange(box.j0, box.j0 + box.nj), np.arange(box.i0, box.i0 + box.ni),
                          indexing="ij")
    value = fid * 2.0**40 + step * 2.0**30 + k * 2.0**22 + j * 2.0**11 + i
    return (-1.0)**fid * value + 0.25


def my_box(nx, ny, px, py, rank, mode) -> BoxPartition:
    box = decompose(nx, ny, px, py)[rank]
    if mode in ("gap", "gapdeclared") and rank == 0:  # leave the last column of rank 0's box uncovered
        box = BoxPartition(nx, ny, box.i0, box.j0, box.ni - 1, box.nj) if box.ni > 1 else box
    if mode == "overlap" and rank == 1:  # grow rank 1's box onto rank 0's
        if box.j0 > 0:
            box = BoxPartition(nx, ny, box.i0, box.j0 - 1, box.ni, box.nj + 1)
        else:
            box = BoxPartition(nx, ny, box.i0 - 1, box.j0, box.ni + 1, box.nj)
    return box


def ocean_land(box: BoxPartition, mode: str) -> np.ndarray:
    """(nj, ni): the points of ``box`` in the subdomains the ocean removed (MODE drop=OPX,OPY,K[,K2])."""
    land = np.zeros((box.nj, box.ni), dtype=bool)
    if mode.startswith("drop="):
        opx, opy, *removed = map(int, mode[len("drop="):].split(","))
        for k in removed:
            gone = box.intersect(decompose(box.nx, box.ny, opx, opy)[k])
            if gone is not None:
                land[box.local_slices(gone)] = True
    return land


def main(argv):
    nx, ny, nlev, nsteps, px, py = map(int, argv[:6])
    mode = argv[6] if len(argv) > 6 else "normal"
    comp = Component("worker")  # its timeout: $OBRIDGE_TIMEOUT, or the coupling default (bridge/transport/env.py)
    rank = comp.local_comm.Get_rank()
    box = my_box(nx, ny, px, py, rank, mode)
    comp.def_partition(box, gaps=mode == "gapdeclared")
    a2 = comp.def_field("a2", "in", 1, peer="ocean")
    b3 = comp.def_field("b3", "in", nlev, peer="ocean")
    c2 = comp.def_field("c2", "out", 1, peer="ocean")
    d3 = comp.def_field("d3", "out", nlev, peer="ocean")
    comp.enddef()
    if mode == "die":  # crash right after the definitions, as a killed worker would
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "badname":
        comp.field("sst")  # raises BridgeError naming 'sst'
    checked, land = 0, ocean_land(box, mode)
    for step in range(nsteps):
        got2, got3 = a2.get(step), b3.get(step)
        want2, want3 = analytic(1, step, box, 1), analytic(2, step, box, nlev)
        if mode == "nanwarn" and step == 1:  # the ocean (one rank) sent a NaN at its first point
            want2[0, 0, 0] = np.nan
        want2[:, land], want3[:, land] = GAP_FILL, GAP_FILL
        assert np.array_equal(got2, want2, equal_nan=True), f"a2 differs at step {step}"
        assert np.array_equal(got3, want3), f"b3 differs at step {step}"
        checked += got2.size + got3.size
        if mode == "silent":
            continue
        c2.put(step, analytic(3, step, box, 1))
        d3.put(step, analytic(4, step, box, nlev))
    if mode == "silent":
        import time
        time.sleep(10)  # outlive the ocean's timeout without ever sending
    comp.finalize()
    print(f"worker rank {rank}: {nsteps} steps, {checked} values received bit-exactly", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
