"""``oceanbridge install nemo``: put the bridge into a NEMO 5.0 configuration.

    oceanbridge install nemo --nemo <NEMO root> --cfg <CFG> [--backend mpi|oasis] [--dry-run]

What it does in ``cfgs/<CFG>``, checking everything before writing anything:

1. copies the adapter (``nemo_patches/*.F90``) and the bridge
   (``bridge/fortran/*.F90``, never hand-kept copies) into ``MY_SRC``;
2. inserts the hooks of ``nemo_patches/hooks.toml`` into the configuration's
   own ``MY_SRC`` copies of ``nemogcm.F90``, ``stprk3.F90``, ``stpmlf.F90`` and
   ``cpl_oasis3.F90`` (copied from ``src/OCE`` when ``MY_SRC`` has none);
3. adds ``key_obridge`` (and ``key_obridge_oasis`` with ``--backend oasis``) to
   ``cpp_<CFG>.fcm``;
4. inserts the ``&namobridge`` block (``nemo_patches/namobridge.nml``) into the
   ``namelist_ref`` that ``EXP00`` reads (a symlink into ``cfgs/SHARED`` is
   followed: other configurations never read the group).

Running it again is a no-op; a newer oceanbridge upgrades the blocks in place;
``--uninstall`` takes everything out again.
Then rebuild: ``./makenemo -n <CFG> -m <arch> -j 2``.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .patching import Patch, PatchError, apply_patches, load_table, remove_blocks, write_atomic

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PATCHES = REPO / "nemo_patches"
BRIDGE_FORTRAN = REPO / "bridge" / "fortran"
KEYS = {"mpi": ["key_obridge"], "oasis": ["key_obridge", "key_obridge_oasis"]}
FPPKEYS = "bld::tool::fppkeys"


class NemoInstallError(RuntimeError):
    """The NEMO tree or configuration cannot take the patches; the message says which file and why."""


@dataclass
class Plan:
    """Every file the installer will write (path -> (old text or None, new text)) or delete."""

    writes: dict[Path, tuple[str | None, str]] = field(default_factory=dict)
    deletes: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, path: Path, new: str) -> None:
        old = path.read_text() if path.is_file() else None
        if old != new:
            self.writes[path] = (old, new)

    def commit(self, dry_run: bool, show) -> None:
        """Write (or, with ``dry_run``, show) every planned change; each write is atomic."""
        for path, (old, new) in self.writes.items():
            if dry_run:
                if path.suffix == ".fcm":
                    show("".join(difflib.unified_diff((old or "").splitlines(True), new.splitlines(True),
                                                      f"a/{path.name}", f"b/{path.name}")))
                else:
                    show(f"would {'create' if old is None else 'update'} {path}")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, new)
                log.info("%s %s", "created" if old is None else "updated", path)
        for path in self.deletes:
            if dry_run:
                show(f"would remove {path}")
            else:
                path.unlink()
                log.info("removed %s", path)
        for note in self.notes:
            show(f"note: {note}")


def check_patches() -> None:
    """The NEMO patches ship in the source tree, beside the bridge package."""
    if not (PATCHES / "hooks.toml").is_file():
        raise NemoInstallError(f"{PATCHES}/hooks.toml not found: run oceanbridge from its source checkout "
                               f"(pip install -e .), where nemo_patches/ sits beside bridge/")


def cfg_dir(nemo: Path, cfg: str) -> Path:
    """``cfgs/<cfg>`` of a NEMO tree, checked to be a configuration made by makenemo."""
    nemo = Path(nemo)
    if not (nemo / "src" / "OCE").is_dir():
        raise NemoInstallError(f"{nemo}: not a NEMO source tree (no src/OCE); give the root with --nemo")
    folder = nemo / "cfgs" / cfg
    if not (folder / f"cpp_{cfg}.fcm").is_file():
        raise NemoInstallError(f"{folder}/cpp_{cfg}.fcm not found: create the configuration first, e.g. "
                               f"./makenemo -r GYRE_PISCES -n {cfg} -m <arch> -d OCE --del_key 'key_top key_xios'")
    return folder


def source_of(nemo: Path, my_src: Path, basename: str) -> Path:
    """The configuration's own copy of a NEMO file, else the single one under ``src/OCE``."""
    own = my_src / basename
    if own.is_file():
        return own
    found = sorted((Path(nemo) / "src" / "OCE").rglob(basename))
    if len(found) != 1:
        raise NemoInstallError(f"{basename}: expected one file under {nemo}/src/OCE, found {len(found)} "
                               f"({', '.join(map(str, found[:4]))}); is this NEMO 5.0?")
    return found[0]


def bridge_sources(backend: str) -> list[Path]:
    """The Fortran files of the bridge (module obridge and its backends), copied at install time."""
    files = sorted(BRIDGE_FORTRAN.glob("*.F90"))
    if backend == "oasis" and not (BRIDGE_FORTRAN / "obr_oasis.F90").is_file():
        raise NemoInstallError(f"--backend oasis: {BRIDGE_FORTRAN}/obr_oasis.F90 is missing in this oceanbridge")
    if not files:
        raise NemoInstallError(f"{BRIDGE_FORTRAN}: no bridge sources (*.F90)")
    return files


def plan_sources(plan: Plan, my_src: Path, backend: str) -> None:
    """Adapter and bridge sources into MY_SRC, by basename."""
    for src in sorted(PATCHES.glob("*.F90")) + bridge_sources(backend):
        plan.add(my_src / src.name, src.read_text())


def plan_hooks(plan: Plan, nemo: Path, my_src: Path, patches: list[Patch], dry_run: bool, show) -> list:
    """Patch the MY_SRC copies of the hooked NEMO files (in a staging folder first)."""
    with tempfile.TemporaryDirectory(prefix="obr-nemo-") as tmp:
        stage = Path(tmp)
        for target in dict.fromkeys(p.target for p in patches):
            shutil.copyfile(source_of(nemo, my_src, target), stage / target)
        results = apply_patches(stage, patches, dry_run=dry_run, show=show, label=my_src)
        for target in dict.fromkeys(p.target for p in patches):
            plan.add(my_src / target, (stage / target).read_text())
    return results


def with_keys(text: str, keys: list[str], drop: list[str], path: Path) -> str:
    """``cpp_<CFG>.fcm`` text with ``keys`` added to (and ``drop`` removed from) the fppkeys line."""
    lines = text.split("\n")
    hits = [k for k, line in enumerate(lines) if line.strip().startswith(FPPKEYS)]
    if len(hits) != 1:
        raise NemoInstallError(f"{path}: expected one '{FPPKEYS}' line, found {len(hits)}")
    head, *have = lines[hits[0]].split()
    have = [k for k in have if k not in drop]
    lines[hits[0]] = " ".join([head + "  "] + have + [k for k in keys if k not in have])
    return "\n".join(lines)


def namelist_patch() -> Patch:
    """The &namobridge block, inserted before &namrun (the first group of NEMO's namelist_ref)."""
    return Patch(id="namobridge", target="namelist_ref", regex=r"^\s*&namrun\b", position="before",
                 text=(PATCHES / "namobridge.nml").read_text(), description="bridge switches (oceanbridge install nemo)")


def namelist_ref_path(folder: Path) -> Path:
    """The namelist_ref that EXP00 reads (its symlink followed)."""
    exp = folder / "EXP00" / "namelist_ref"
    if not exp.exists():
        raise NemoInstallError(f"{exp} not found: build the configuration once with makenemo to create EXP00")
    return exp.resolve()


def plan_namelist(plan: Plan, folder: Path, dry_run: bool, show) -> list:
    real = namelist_ref_path(folder)
    with tempfile.TemporaryDirectory(prefix="obr-nml-") as tmp:
        staged = Path(tmp) / "namelist_ref"
        shutil.copyfile(real, staged)
        results = apply_patches(Path(tmp), [namelist_patch()], dry_run=dry_run, show=show, label=real.parent)
        plan.add(real, staged.read_text())
    if real != (folder / "EXP00" / "namelist_ref").absolute():
        plan.notes.append(f"EXP00/namelist_ref is a link to {real}: &namobridge goes there "
                          f"(other configurations do not read it)")
    return results


def install(nemo: str | Path, cfg: str, *, backend: str = "mpi", dry_run: bool = False, show=print) -> Plan:
    """Plan every change, then (unless ``dry_run``) write them; raises before writing on any refusal."""
    if backend not in KEYS:
        raise NemoInstallError(f"--backend {backend!r}: choose one of {sorted(KEYS)}")
    check_patches()
    nemo = Path(nemo)
    folder = cfg_dir(nemo, cfg)
    my_src = folder / "MY_SRC"
    plan = Plan()
    plan_sources(plan, my_src, backend)
    plan_hooks(plan, nemo, my_src, load_table(PATCHES / "hooks.toml"), dry_run, show)
    fcm = folder / f"cpp_{cfg}.fcm"
    drop = [] if backend == "oasis" else ["key_obridge_oasis"]
    plan.add(fcm, with_keys(fcm.read_text(), KEYS[backend], drop, fcm))
    if backend == "oasis" and "key_oasis3" not in plan.writes.get(fcm, (None, fcm.read_text()))[1]:
        plan.notes.append(f"{fcm}: add key_oasis3 too (NEMO owns the OASIS component the bridge joins)")
    plan_namelist(plan, folder, dry_run, show)
    plan.commit(dry_run, show)
    return plan


def uninstall(nemo: str | Path, cfg: str, *, dry_run: bool = False, show=print) -> Plan:
    """Take oceanbridge out of a configuration: blocks, copied sources, keys and &namobridge.

    A hooked file that is then identical to NEMO's ``src/OCE`` one (the installer copied it) is removed."""
    check_patches()
    nemo = Path(nemo)
    folder = cfg_dir(nemo, cfg)
    my_src = folder / "MY_SRC"
    plan = Plan()
    shipped = {p.name for p in PATCHES.glob("*.F90")} | {p.name for p in BRIDGE_FORTRAN.glob("*.F90")}
    plan.deletes += [my_src / name for name in sorted(shipped) if (my_src / name).is_file()]
    for target in dict.fromkeys(p.target for p in load_table(PATCHES / "hooks.toml")):
        path = my_src / target
        if not path.is_file():
            continue
        stripped = remove_blocks(path.read_text())
        original = sorted((nemo / "src" / "OCE").rglob(target))
        if len(original) == 1 and original[0].read_text() == stripped:
            plan.deletes.append(path)
        else:
            plan.add(path, stripped)
    fcm = folder / f"cpp_{cfg}.fcm"
    plan.add(fcm, with_keys(fcm.read_text(), [], sum(KEYS.values(), []), fcm))
    real = namelist_ref_path(folder)
    plan.add(real, remove_blocks(real.read_text(), {"namobridge"}))
    plan.commit(dry_run, show)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oceanbridge install nemo",
                                     description="Copy the oceanbridge adapter and hooks into a NEMO 5.0 configuration.")
    parser.add_argument("--nemo", required=True, type=Path, help="root of the NEMO source tree (has src/ and cfgs/)")
    parser.add_argument("--cfg", required=True, help="configuration name (cfgs/<CFG>), e.g. GYRE_OCE")
    parser.add_argument("--backend", choices=sorted(KEYS), default="mpi", help="bridge transport (default mpi)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change (diffs), write nothing")
    parser.add_argument("--uninstall", action="store_true", help="take oceanbridge out of the configuration")
    args = parser.parse_args(argv)
    try:
        if args.uninstall:
            plan = uninstall(args.nemo, args.cfg, dry_run=args.dry_run)
        else:
            plan = install(args.nemo, args.cfg, backend=args.backend, dry_run=args.dry_run)
    except (NemoInstallError, PatchError) as exc:
        print(f"oceanbridge install nemo: {exc}", file=sys.stderr, flush=True)
        return 1
    verb = "would write" if args.dry_run else "wrote"
    print(f"oceanbridge install nemo: {verb} {len(plan.writes)} file(s), "
          f"{'would remove' if args.dry_run else 'removed'} {len(plan.deletes)} in {args.nemo}/cfgs/{args.cfg}; "
          f"rebuild with: ./makenemo -n {args.cfg} -m <arch> -j 2")
    return 0
