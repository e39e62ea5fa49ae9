"""``oceanbridge install croco``: prepare a CROCO v2.1.3 run folder for the user's ``jobcomp``.

CROCO users customise a run through local files that ``jobcomp`` copies over the
sources (local files win) and through cpp keys. The installer therefore writes,
into the run folder:

- patched copies of ``cppdefs.h`` (cpp key ``OBRIDGE``), ``param.h`` (the MPI
  decomposition ``NP_XI x NP_ETA``), ``main.F``, ``step.F``, ``testkeys.F`` and
  ``Makefile``: the run folder's own copy when it has one, else the source's
  (``<croco>/OCEAN``); the insertions come from ``croco_patches/patches.toml``;
- the bridge Fortran sources (``bridge/fortran/*.F90``) and the adapter
  (``croco_patches/obr_croco*``), replaced on every install;
- ``namelist_obridge`` (the ``&namobridge`` switches) and ``jobcomp`` when the
  folder has none (a user's copy is kept).

Every file is prepared in a staging folder first: a refused anchor leaves the
run folder as it was. Installing twice changes nothing; ``--dry-run`` prints
the diffs and writes nothing.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from deploy.install.patching import Patch, PatchError, apply_patches, load_table, remove_blocks, write_atomic

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PATCH_DIR = REPO / "croco_patches"
FORTRAN_DIR = REPO / "bridge" / "fortran"
BRIDGE_SOURCES = ("obr_core.F90", "obr_mpi_defs.F90", "obr_mpi_wait.F90", "obr_mpi.F90", "obridge.F90",
                  "obr_host_nml.F90", "obr_host.F90")
OASIS_SOURCE = "obr_oasis.F90"
ADAPTER_SOURCES = ("obr_croco_nml.F90", "obr_croco_cpl.F90", "obr_croco.F", "obr_croco_state.F")
NAMELIST = "namelist_obridge"
PATCHED = ("cppdefs.h", "param.h", "main.F", "step.F", "testkeys.F", "Makefile")
BACKENDS = ("mpi", "oasis")
OASIS_ONLY = {"cppdefs-oasis"}


class InstallError(RuntimeError):
    """The run folder cannot be prepared; the message names the file or option and the cause."""


@dataclass(frozen=True)
class InstallOptions:
    """What ``oceanbridge install croco`` was asked; checked on creation."""

    croco: Path
    run_dir: Path
    np_xi: int = 1
    np_eta: int = 1
    backend: str = "mpi"
    dry_run: bool = False

    def __post_init__(self):
        if self.np_xi < 1 or self.np_eta < 1:
            raise InstallError(f"--np-xi {self.np_xi} --np-eta {self.np_eta}: both must be >= 1")
        if self.backend not in BACKENDS:
            raise InstallError(f"--backend '{self.backend}' is not one of {BACKENDS}")
        if not (self.ocean / "main.F").is_file():
            raise InstallError(f"--croco {self.croco}: no OCEAN/main.F there; give the root of a CROCO v2.1.3 "
                               "source tree (the folder that holds OCEAN/)")
        if self.backend == "oasis" and not (FORTRAN_DIR / OASIS_SOURCE).is_file():
            raise InstallError(f"--backend oasis: {FORTRAN_DIR / OASIS_SOURCE} is missing: this oceanbridge has "
                               "no OASIS3-MCT backend yet; use --backend mpi")

    @property
    def ocean(self) -> Path:
        """The CROCO source folder (``--croco`` may name the root or OCEAN itself)."""
        root = Path(self.croco)
        return root if (root / "main.F").is_file() and root.name == "OCEAN" else root / "OCEAN"


def table(opts: InstallOptions) -> list[Patch]:
    """The patch table for these options: decomposition filled in, OASIS entries only for that backend."""
    patches = []
    for p in load_table(PATCH_DIR / "patches.toml"):
        if p.id in OASIS_ONLY and opts.backend != "oasis":
            continue
        if p.id == "param-decomposition":
            p = replace(p, text=p.text.format(np_xi=opts.np_xi, np_eta=opts.np_eta))
        patches.append(p)
    return patches


def _stage_sources(opts: InstallOptions, stage: Path) -> dict[str, tuple[str, bool]]:
    """Copy the files to patch into ``stage`` (run folder's copy first); returns (text, from run folder)."""
    originals = {}
    for name in PATCHED:
        src = opts.run_dir / name if (opts.run_dir / name).is_file() else opts.ocean / name
        if not src.is_file():
            raise InstallError(f"{src}: not found; is {opts.croco} a CROCO v2.1.3 source tree?")
        text = src.read_text()
        originals[name] = (text, src.parent == opts.run_dir)
        if opts.backend != "oasis":
            text = remove_blocks(text, OASIS_ONLY)      # a former --backend oasis install
        (stage / name).write_text(text)
    return originals


def _patch_stage(stage: Path, patches: list[Patch]) -> None:
    """Apply the table in ``stage``.

    The engine's per-patch log lines would name the staging folder, so they are
    muted here; ``install`` reports per file in the run folder instead."""
    engine_log = logging.getLogger("deploy.install.patching")
    level = engine_log.level
    engine_log.setLevel(logging.WARNING)
    try:
        apply_patches(stage, patches)
    finally:
        engine_log.setLevel(level)


def _copies(opts: InstallOptions) -> list[tuple[Path, Path, bool]]:
    """(source, destination, replace_existing) for every file copied as it is."""
    bridge = BRIDGE_SOURCES + ((OASIS_SOURCE,) if opts.backend == "oasis" else ())
    out = [(FORTRAN_DIR / n, opts.run_dir / n, True) for n in bridge]
    out += [(PATCH_DIR / n, opts.run_dir / n, True) for n in ADAPTER_SOURCES]
    out += [(PATCH_DIR / NAMELIST, opts.run_dir / NAMELIST, False), (opts.ocean / "jobcomp", opts.run_dir / "jobcomp", False)]
    return out


def install(opts: InstallOptions, show=print) -> list[tuple[str, str]]:
    """Prepare the run folder; returns (file, action) pairs. Raises InstallError or PatchError."""
    actions = []
    with tempfile.TemporaryDirectory(prefix="obridge-croco-") as tmp:
        stage = Path(tmp)
        originals = _stage_sources(opts, stage)
        _patch_stage(stage, table(opts))
        for name in PATCHED:
            new, (old, local) = (stage / name).read_text(), originals[name]
            if local and new == old:
                actions.append((name, "unchanged"))
                continue
            actions.append((name, "patched" if local else "copied from OCEAN/ and patched"))
            if opts.dry_run:
                show("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                  f"a/{name}", f"b/{name}")))
            else:
                opts.run_dir.mkdir(parents=True, exist_ok=True)
                write_atomic(opts.run_dir / name, new)
    for src, dst, overwrite in _copies(opts):
        if dst.exists() and (not overwrite or dst.read_bytes() == src.read_bytes()):
            actions.append((dst.name, "kept" if not overwrite else "unchanged"))
            continue
        actions.append((dst.name, "copied"))
        if not opts.dry_run:
            shutil.copy2(src, dst)
    return actions


def next_steps(opts: InstallOptions) -> str:
    """What the user runs after the install."""
    n = opts.np_xi * opts.np_eta
    return (f"next: cd {opts.run_dir} && ./jobcomp --src {opts.ocean}\n"
            f"      set ln_obridge = .true. in {NAMELIST}, then launch CROCO with its worker, e.g.\n"
            f"      mpirun -np {n} ./croco croco.in : -np 1 oceanbridge worker --config <deploy.toml>\n"
            f"      (NP_XI x NP_ETA = {opts.np_xi} x {opts.np_eta}: -np must be {n})")


def parse_args(argv: list[str]) -> InstallOptions:
    """Command-line options -> InstallOptions."""
    ap = argparse.ArgumentParser(prog="oceanbridge install croco", description=__doc__.split("\n\n")[0])
    ap.add_argument("--croco", required=True, type=Path, help="CROCO v2.1.3 source root (holds OCEAN/)")
    ap.add_argument("--run-dir", required=True, type=Path, help="the run folder where jobcomp builds croco")
    ap.add_argument("--np-xi", type=int, default=1, help="MPI subdomains in XI (param.h NP_XI), default 1")
    ap.add_argument("--np-eta", type=int, default=1, help="MPI subdomains in ETA (param.h NP_ETA), default 1")
    ap.add_argument("--backend", choices=BACKENDS, default="mpi", help="bridge backend (default mpi)")
    ap.add_argument("--dry-run", action="store_true", help="print the diffs, write nothing")
    a = ap.parse_args(argv)
    return InstallOptions(a.croco, a.run_dir, a.np_xi, a.np_eta, a.backend, a.dry_run)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``oceanbridge install croco``; 0 on success, 2 on a refused install."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        opts = parse_args(list(argv or []))
        actions = install(opts)
    except (InstallError, PatchError) as exc:
        print(f"oceanbridge install croco: error: {exc}")
        return 2
    for name, what in actions:
        print(f"  {name:<22} {what}{' (dry run)' if opts.dry_run and what not in ('unchanged', 'kept') else ''}")
    print(next_steps(opts))
    return 0
