"""A stand-in ocean for the worker tests: follows gyre's &namobridge protocol from the
run folder's namelists, but sends analytic fields, and can misbehave on purpose.

usage (as [ocean] executable = python, args = [this file, MODE, N]):
  nan N      send NaN in 'ssh' at step N (nan_policy 'warn' lets it through), normal otherwise
  silent N   stop calling the bridge after step N, sleep, then leave without finalizing
  gaps N     own only the first nx - N columns and declare the gaps (an ocean that removed land-only subdomains)
"""
from __future__ import annotations

import sys
import time

import f90nml
import numpy as np

from bridge import BoxPartition, Component


def merged(block: str) -> dict:
    values = dict(f90nml.read("namelist_ref").get(block, {}))
    values.update(dict(f90nml.read("namelist_cfg").get(block, {})))
    return values


def main(argv: list[str]) -> int:
    mode, nbad = argv[0], int(argv[1])
    run, dom, obr = merged("namrun"), merged("namdom"), merged("namobridge")
    nx, ny = int(dom["nn_nx"]), int(dom["nn_ny"])
    send = [s for s in obr["cn_obr_send"] if s] if isinstance(obr["cn_obr_send"], list) else [obr["cn_obr_send"]]
    freq, it000, itend = int(obr["nn_obr_freq"]), int(run["nn_it000"]), int(run["nn_itend"])
    comp = Component(obr.get("cn_obr_name", "gyre"), timeout=30.0, nan_policy="warn")
    owned = nx - nbad if mode == "gaps" else nx
    comp.def_partition(BoxPartition(nx, ny, 0, 0, owned, ny), gaps=mode == "gaps")
    fields = {n: comp.def_field(n, "out", nlev=1) for n in send}
    comp.enddef()
    j, i = np.meshgrid(np.arange(ny), np.arange(owned), indexing="ij")
    for kt in range(it000 - 1, itend + 1):
        if kt % freq:
            continue
        if mode == "silent" and kt > nbad:
            print(f"standin_ocean: silent after step {nbad}", flush=True)
            time.sleep(60)
            return 0
        for k, (name, f) in enumerate(fields.items()):
            a = np.sin(0.2 * i + 0.1 * j + 0.05 * kt + k)[None]
            if mode == "nan" and kt == nbad and name == "ssh":
                a[0, 3, 4] = np.nan
            f.put(kt, a)
    comp.finalize()
    print("standin_ocean: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
