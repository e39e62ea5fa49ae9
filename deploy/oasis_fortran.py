"""Find the Fortran side of an installed OASIS3-MCT build: its modules and static libraries.

Used to compile programs against OASIS (the bridge's OASIS backend, the
stand-ins of the OASIS tests, the OASIS benchmark).  It only looks under
``$OASIS_DIR``; it never builds or downloads OASIS3-MCT.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LIBS = ("psmile.MPI1", "mct", "mpeu", "scrip")


@dataclass(frozen=True)
class OasisFortran:
    """Where an OASIS3-MCT build keeps ``mod_oasis.mod`` (and MCT's modules) and ``libpsmile.MPI1.a``."""
    root: Path
    moddirs: tuple[Path, ...]
    libdir: Path

    @property
    def compile_flags(self) -> list[str]:
        return [f"-I{d}" for d in self.moddirs]

    @property
    def link_flags(self) -> list[str]:
        """OASIS libraries then netCDF-Fortran (``nf-config --flibs``), which OASIS needs."""
        netcdf = subprocess.run(["nf-config", "--flibs"], capture_output=True, text=True).stdout.split() \
            if shutil.which("nf-config") else ["-lnetcdff", "-lnetcdf"]
        return [f"-L{self.libdir}", *(f"-l{lib}" for lib in LIBS), *netcdf]

    def make_vars(self) -> list[str]:
        """Variables for ``make -C bridge/fortran OBRIDGE_BACKEND=oasis``."""
        return [f"OASIS_DIR={self.root}", f"OASIS_INC={' '.join(map(str, self.moddirs))}",
                f"OASIS_LIBDIR={self.libdir}"]


def find_oasis_fortran(root: str | os.PathLike | None = None) -> OasisFortran:
    """The OASIS build under ``root`` (default ``$OASIS_DIR``); ValueError says what is missing."""
    root = root or os.environ.get("OASIS_DIR", "")
    if not root:
        raise ValueError("OASIS_DIR is not set: point it at an OASIS3-MCT build (see deploy/README.md)")
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"OASIS_DIR={root} is not a directory")
    mods = sorted(base.rglob("mod_oasis.mod"))
    libs = sorted(base.rglob("libpsmile.MPI1.a"))
    if not mods or not libs:
        raise ValueError(f"no mod_oasis.mod or no libpsmile.MPI1.a under OASIS_DIR={root}: is it an "
                         "OASIS3-MCT build folder (make -f TopMakefileOasis3)?")
    moddir = mods[0].parent
    mct = moddir.parent / "mct"
    return OasisFortran(root=base, moddirs=(moddir, mct) if mct.is_dir() else (moddir,), libdir=libs[0].parent)
