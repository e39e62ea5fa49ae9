"""Helpers of the OASIS tests: build the OASIS programs, write the exchange namcouple.

Shared with benchmarks/bench_oasis.py, so nothing here needs pytest.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from bridge.deploy.namcouple import Coupling, Namcouple, render_namcouple, restart_name
from bridge.deploy.naming import oasis_name
from bridge.deploy.oasis_fortran import OasisFortran

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD = Path(os.environ.get("BUILD", REPO / "build"))  # as tests/conftest.py
# the field table of bridge/fortran/examples/exchange_ocean.F90: name -> sent by the ocean?
EXCHANGE_FIELDS = {"a2": True, "b3": True, "c2": False, "d3": False}
GRID = "obrg"


def _root_conftest():
    """tests/conftest.py, loaded by path: the bare name 'conftest' may be another folder's conftest."""
    spec = importlib.util.spec_from_file_location("oceanbridge_tests_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_mpmd = _root_conftest().run_mpmd


def build_programs(oasis: OasisFortran, build: Path, out: Path) -> dict[str, Path]:
    """Build the bridge's OASIS backend and examples into ``build``, the stand-ins into ``out``."""
    subprocess.run(["make", "-s", "-C", str(REPO / "bridge" / "fortran"), "OBRIDGE_BACKEND=oasis",
                    f"BUILD={build}", *oasis.make_vars()], check=True)
    out.mkdir(parents=True, exist_ok=True)
    flags = ["mpif90", "-O2", *oasis.compile_flags, f"-I{build / 'include' / 'oasis'}", f"-J{out}", f"-I{out}"]
    subprocess.run([*flags, "-c", str(HERE / "standin_fields.F90"), "-o", str(out / "standin_fields.o")], check=True)
    libs = [str(out / "standin_fields.o"), f"-L{build / 'lib'}", "-lobridge_oasis", *oasis.link_flags]
    progs = {"ocean": build / "bin" / "oasis" / "obr_exchange_ocean",
             "bandwidth": build / "bin" / "oasis" / "obr_bandwidth_ocean"}
    for name in ("worker_standin", "host_standin"):
        progs[name] = out / name
        subprocess.run([*flags, str(HERE / f"{name}.F90"), *libs, "-o", str(progs[name])], check=True)
    return progs


def exchange_namcouple(nx: int, ny: int, nsteps: int, *, period: int = 1, missing: tuple[str, ...] = ()) -> str:
    """The namcouple of the exchange example between components 'ocean' and 'worker' (1 s steps)."""
    entries = []
    for field, from_ocean in EXCHANGE_FIELDS.items():
        if field in missing:
            continue
        ocean, worker = oasis_name("ocean", field), oasis_name("worker", field, peer="ocean")
        src, dst = (ocean, worker) if from_ocean else (worker, ocean)
        entries.append(Coupling(source=src, target=dst, period=period, restart=restart_name(src), src_nx=nx,
                                src_ny=ny, dst_nx=nx, dst_ny=ny, src_grid=GRID, dst_grid=GRID, field=field))
    return render_namcouple(Namcouple(runtime=nsteps * period, nlogprt=(1, 0), entries=tuple(entries),
                                      nfields=len(entries)), header="tests/oasis: exchange example")
