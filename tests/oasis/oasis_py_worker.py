"""The Python worker of the exchange example on the OASIS backend (bridge/transport/oasis.py), on the
real pyoasis (LIBRARY = 'pyoasis') or on tests/oasis/pyoasis_standin.py (LIBRARY = its shared library).  Each rank owns a box of a PX x PY split, gets
'a2'/'b3' from 'ocean' and checks every value, then puts 'c2'/'d3'; time: step k is k seconds.
Usage: python oasis_py_worker.py LIBRARY NX NY NLEV NSTEPS PX PY [MODE]
MODE drop=OPX,OPY,K[,K2]: the ocean removed subdomains K of its OPX x OPY layout and declared the gaps; 0
(GAP_FILL) is expected there.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyoasis_standin import PyoasisStandIn  # noqa: E402

from bridge import Component, decompose  # noqa: E402
from bridge.examples.exchange_worker import analytic, ocean_land  # noqa: E402
from bridge.partition import GAP_FILL  # noqa: E402


def main(argv):
    library = argv[0]
    nx, ny, nlev, nsteps, px, py = map(int, argv[1:7])
    mode = argv[7] if len(argv) > 7 else "normal"
    standin = {} if library == "pyoasis" else {"pyoasis": PyoasisStandIn(library)}
    comp = Component("worker", backend="oasis", dt=1.0, nit000=1, **standin)
    rank = comp.local_comm.Get_rank()
    box = decompose(nx, ny, px, py)[rank]
    comp.def_partition(box)
    a2 = comp.def_field("a2", "in", 1, peer="ocean")
    b3 = comp.def_field("b3", "in", nlev, peer="ocean")
    c2 = comp.def_field("c2", "out", 1, peer="ocean")
    d3 = comp.def_field("d3", "out", nlev, peer="ocean")
    comp.enddef()
    wrong, land = 0, ocean_land(box, mode)
    out3 = np.empty(b3.shape)
    for step in range(nsteps):
        got2, got3 = a2.get(step), b3.get(step, out=out3)
        want2, want3 = analytic(1, step, box, 1), analytic(2, step, box, nlev)
        want2[:, land], want3[:, land] = GAP_FILL, GAP_FILL
        wrong += int(np.count_nonzero(got2 != want2)) + int(np.count_nonzero(got3 != want3))
        c2.put(step, analytic(3, step, box, 1)[0])  # (nj, ni) is accepted for one level
        d3.put(step, analytic(4, step, box, nlev))
    print(f"python oasis worker rank {rank}: {nsteps} steps, wrong values {wrong}", flush=True)
    comp.finalize()


if __name__ == "__main__":
    main(sys.argv[1:])
