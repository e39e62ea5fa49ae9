"""Python side of benchmarks/bench_oasis.py's Python-worker rows: gets field 'f' from 'ocean'
(tests/oasis/bench_pair.F90) on the MPI backend or on the OASIS backend (through the pyoasis
stand-in, or the real pyoasis), timing each repetition between barriers like bench_pair's worker.
Usage: python bench_py_worker.py BACKEND NX NY NLEV NITER NREP   (BACKEND: mpi | pyoasis | LIBRARY.so)
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridge import Component, decompose  # noqa: E402
from bridge.examples.exchange_worker import analytic  # noqa: E402


def main(argv):
    backend = argv[0]
    nx, ny, nlev, niter, nrep = map(int, argv[1:6])
    if backend == "mpi":
        comp = Component("worker", timeout=300.0)
    else:
        from pyoasis_standin import PyoasisStandIn
        standin = {} if backend == "pyoasis" else {"pyoasis": PyoasisStandIn(backend)}
        comp = Component("worker", backend="oasis", dt=1.0, nit000=1, **standin)
    from mpi4py import MPI
    size, rank = comp.local_comm.Get_size(), comp.local_comm.Get_rank()
    box = decompose(nx, ny, size, 1)[rank]  # i-split, as bench_pair's worker
    comp.def_partition(box)
    field = comp.def_field("f", "in", nlev, peer="ocean")
    comp.enddef()
    out, step = np.empty(field.shape), 0
    for rep in range(1, nrep + 1):
        MPI.COMM_WORLD.Barrier()
        t0 = time.perf_counter()
        for _ in range(niter):
            field.get(step, out=out)
            step += 1
        MPI.COMM_WORLD.Barrier()
        if rank == 0:
            print(f"BENCH {rep} {time.perf_counter() - t0:.8e}", flush=True)
    if not np.array_equal(out, analytic(1, 0, box, nlev)):  # bench_pair sends field 1 of step 0 every time
        raise SystemExit(f"bench_py_worker rank {rank}: received values differ from the sent field")
    comp.finalize()


if __name__ == "__main__":
    main(sys.argv[1:])
