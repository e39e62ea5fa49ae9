"""Helpers of the OASIS tests: build the OASIS programs, write the exchange namcouple.

Shared with benchmarks/bench_oasis.py, so nothing here needs pytest.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from bridge.transport.naming import oasis_name
from deploy.namcouple import Coupling, Namcouple, render_namcouple, restart_name
from deploy.oasis_fortran import OasisFortran

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD = Path(os.environ.get("BUILD", REPO / "build"))  # as tests/mpmd_jobs.py
# the field table of bridge/fortran/examples/exchange_ocean.F90: name -> sent by the ocean?
EXCHANGE_FIELDS = {"a2": True, "b3": True, "c2": False, "d3": False}
GRID = "obrg"


def _mpmd_jobs():
    """tests/mpmd_jobs.py, loaded by path: benchmarks import this file without tests/ on sys.path."""
    spec = importlib.util.spec_from_file_location("oceanbridge_mpmd_jobs", REPO / "tests" / "mpmd_jobs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_mpmd = _mpmd_jobs().run_mpmd


def make_bridge(build: Path, oasis: OasisFortran | None) -> Path:
    """Build the bridge library and examples into ``build`` (OASIS backend when ``oasis`` is given);
    returns the folder of its .mod files."""
    backend = ["OBRIDGE_BACKEND=oasis", *oasis.make_vars()] if oasis else []
    subprocess.run(["make", "-s", "-C", str(REPO / "bridge" / "fortran"), f"BUILD={build}", *backend], check=True)
    return build / "include" / ("oasis" if oasis else "")


def compile_program(name: str, oasis: OasisFortran, build: Path, out: Path, *, backend: str = "oasis") -> Path:
    """Compile tests/oasis/<name>.F90 with standin_fields.F90 against the bridge built in ``build``."""
    moddir = build / "include" / ("oasis" if backend == "oasis" else "")
    work = out / backend
    work.mkdir(parents=True, exist_ok=True)
    flags = ["mpif90", "-O2", *oasis.compile_flags, f"-I{moddir}", f"-J{work}", f"-I{work}"]
    subprocess.run([*flags, "-c", str(HERE / "standin_fields.F90"), "-o", str(work / "standin_fields.o")],
                   check=True)
    lib = "-lobridge_oasis" if backend == "oasis" else "-lobridge"
    exe = work / name
    subprocess.run([*flags, str(HERE / f"{name}.F90"), str(work / "standin_fields.o"), f"-L{build / 'lib'}", lib,
                    *oasis.link_flags, "-o", str(exe)], check=True)
    return exe


def build_programs(oasis: OasisFortran, build: Path, out: Path) -> dict[str, Path]:
    """Build the bridge's OASIS backend and examples into ``build``, the stand-ins into ``out``."""
    make_bridge(build, oasis)
    progs = {"ocean": build / "bin" / "oasis" / "obr_exchange_ocean"}
    for name in ("worker_standin", "host_standin"):
        progs[name] = compile_program(name, oasis, build, out)
    return progs


def namcouple_text(pairs: list[tuple[str, str, str]], nx: int, ny: int, runtime: int, period: int = 1) -> str:
    """A namcouple with one EXPORTED entry per (source name, target name, field), same grid both ends."""
    entries = tuple(Coupling(source=src, target=dst, period=period, restart=restart_name(src), src_nx=nx,
                             src_ny=ny, dst_nx=nx, dst_ny=ny, src_grid=GRID, dst_grid=GRID, field=field)
                    for src, dst, field in pairs)
    return render_namcouple(Namcouple(runtime=runtime, nlogprt=(1, 0), entries=entries, nfields=len(entries)),
                            header="written by tests/oasis/oasis_jobs.py")


def exchange_namcouple(nx: int, ny: int, nsteps: int, *, missing: tuple[str, ...] = ()) -> str:
    """The namcouple of the exchange example between components 'ocean' and 'worker' (1 s steps)."""
    pairs = []
    for field, from_ocean in EXCHANGE_FIELDS.items():
        if field not in missing:
            ocean, worker = oasis_name("ocean", field), oasis_name("worker", field, peer="ocean")
            pairs.append((ocean, worker, field) if from_ocean else (worker, ocean, field))
    return namcouple_text(pairs, nx, ny, runtime=nsteps)


def build_gyre(oasis: OasisFortran, build: Path) -> Path:
    """gyre.exe linked with the OASIS backend built in ``build`` (gyre/Makefile's library variables
    overridden on the command line); returns its path, build/gyre-oasis/bin/gyre.exe under ``build``."""
    lib = build / "lib" / "libobridge_oasis.a"
    where = build / "gyre-oasis"
    subprocess.run(["make", "-s", "-C", str(REPO / "gyre"), f"BUILD={where}", f"OBRLIB={lib}", f"OBRDEP={lib}",
                    f"OBRINC=-I{build / 'include' / 'oasis'}", "CPPDEFS=",
                    f"OBRLINK={lib} {' '.join(oasis.link_flags)}"], check=True)
    return where / "bin" / "gyre.exe"


def build_pyoasis_standin(oasis: OasisFortran, out: Path) -> Path:
    """The shared library of tests/oasis/pyoasis_standin.F90, or ValueError when the OASIS build
    cannot go into a shared object (it must be compiled with -fPIC)."""
    out.mkdir(parents=True, exist_ok=True)
    lib = out / "libpyoasis_standin.so"
    proc = subprocess.run(["mpif90", "-fPIC", "-shared", "-O2", *oasis.compile_flags, f"-J{out}",
                           str(HERE / "pyoasis_standin.F90"), "-o", str(lib), *oasis.link_flags],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ValueError(f"cannot link OASIS3-MCT of {oasis.root} into a shared library (build it with -fPIC "
                         f"in F90 and CC of make.inc for the Python OASIS tests): {proc.stderr.strip()[-300:]}")
    return lib
