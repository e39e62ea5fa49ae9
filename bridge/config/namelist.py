"""Edit and check Fortran namelists with f90nml, keeping everything else intact.

``f90nml.patch`` rewrites only the values it is given and keeps comments,
layout and other groups, so a user's hand-written namelist_cfg survives
``preprod``.  ``namelist_diffs`` is the check that ``launch`` runs: it lists
every value that differs from what the config wants, by group and variable.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import f90nml

GROUP = "namobridge"

# The &namobridge switches (deploy/README.md): name -> (Python type, meaning).
SWITCHES: Mapping[str, tuple[type, str]] = MappingProxyType({
    "ln_obridge": (bool, "master switch"),
    "nn_obr_freq": (int, "send the state every N steps"),
    "cn_obr_send": (list, "fields to send"),
    "ln_obr_emulator": (bool, "receive emulated states and apply them"),
    "cn_obr_emu_mode": (str, "'replace' or 'increment'"),
    "nn_obr_emu_freq": (int, "ask for an emulated state every N steps"),
    "ln_obr_spinup": (bool, "at start, replace the initial state by a generated one"),
    "ln_obr_required": (bool, "stop if the worker is absent or dies"),
    "rn_obr_timeout": (float, "seconds to wait in a receive"),
    # Proposed addition: the component name of an ensemble member (gyre_3).
    # Written only when members > 1, so single runs work with hosts that lack it.
    "cn_obr_name": (str, "component name of this member"),
})

Patch = Mapping[str, Mapping[str, Any]]  # group -> variable -> value


class NamelistError(ValueError):
    """A namelist cannot be edited as asked; the message names the switch or file."""


def check_switches(switches: Mapping[str, Any]) -> None:
    """Raise NamelistError naming the first unknown or ill-typed &namobridge switch."""
    for name, value in switches.items():
        if name.lower() not in SWITCHES:
            raise NamelistError(f"unknown &{GROUP} switch '{name}' (known: {', '.join(SWITCHES)})")
        kind = SWITCHES[name.lower()][0]
        if not _is_kind(value, kind):
            raise NamelistError(f"&{GROUP} switch '{name}' must be a {kind.__name__}, got {value!r}")


def _is_kind(value: Any, kind: type) -> bool:
    if kind is list:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def set_namobridge(path: Path, switches: Mapping[str, Any], out: Path | None = None) -> Path:
    """Set &namobridge switches in ``path`` (in place, or into ``out``)."""
    check_switches(switches)
    return patch_namelist(path, {GROUP: switches}, out)


def patch_namelist(path: Path, patch: Patch, out: Path | None = None) -> Path:
    """Apply ``patch`` to the namelist ``path``; comments and other content stay.

    Groups missing from the file are appended.  Writing in place goes through a
    temporary file and a rename, so an interrupted run never leaves half a file.
    """
    path, out = Path(path), Path(out or path)
    data = {g: {k: _to_fortran(v) for k, v in vals.items()} for g, vals in patch.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    source = tmp + ".src"
    try:
        Path(source).write_text(_drop_resized_lists(path.read_text(), f90nml.read(str(path)), data))
        f90nml.patch(source, data, tmp)
        shutil.copymode(path, tmp)  # mkstemp makes 0600 files; keep the template's mode
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, source):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return out


_ASSIGNMENT = re.compile(r"^\s*(\w+)\s*(\([^)]*\))?\s*=")
_GROUP_START = re.compile(r"^\s*[&$](\w+)")
_GROUP_END = re.compile(r"^\s*(/|[&$]end\b)", re.IGNORECASE)


def _drop_resized_lists(text: str, current: Mapping, data: Patch) -> str:
    """Remove the assignments that the patch gives a list of another length.

    f90nml 1.5's ``patch`` corrupts a group when it lengthens a list (checked: a
    5-item ``cn_obr_send`` patched to 6 items drops the next variable and writes
    ``'tem3d' = .false.``); without the old assignment, ``patch`` appends the
    variable whole at the end of its group instead."""
    resized = {(g.lower(), k.lower()) for g, vals in data.items() for k, v in vals.items()
               if isinstance(v, list) and _length(current.get(g, {}).get(k)) not in (None, len(v))}
    if not resized:
        return text
    kept, group, dropping = [], None, False
    for line in text.splitlines(keepends=True):
        if (start := _GROUP_START.match(line)) and not _GROUP_END.match(line):
            group, dropping = start.group(1).lower(), False
        elif _GROUP_END.match(line):
            group, dropping = None, False
        elif (assign := _ASSIGNMENT.match(line)) and group:
            dropping = (group, assign.group(1).lower()) in resized
        if not dropping:
            kept.append(line)
    return "".join(kept)


def _length(value: Any) -> int | None:
    """Items in a namelist value (1 for a scalar), None when absent."""
    if value is None:
        return None
    return len(value) if isinstance(value, list) else 1


def write_namelist(path: Path, patch: Patch) -> Path:
    """Write a new namelist file holding only ``patch`` (for files owned by the bridge)."""
    nml = f90nml.Namelist({g: {k: _to_fortran(v) for k, v in vals.items()} for g, vals in patch.items()})
    path = Path(path)
    with open(path, "w") as fh:
        fh.write("! written by oceanbridge preprod\n")
        nml.write(fh)
    return path


def _to_fortran(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def namelist_diffs(path: Path, patch: Patch) -> list[str]:
    """Every value of ``patch`` that ``path`` lacks or holds differently."""
    try:
        nml = f90nml.read(str(path))
    except FileNotFoundError:
        return [f"{path}: missing"]
    problems = []
    for group, values in patch.items():
        have = nml.get(group.lower())
        if have is None:
            problems.append(f"{path}: group &{group} is missing")
            continue
        for var, want in values.items():
            got = have.get(var.lower())
            if not _same(got, want):
                problems.append(f"{path}: &{group} {var} is {_show(got)}, the config gives {_show(want)}")
    return problems


def unknown_switches(path: Path) -> list[str]:
    """&namobridge variables in ``path`` that no host reads (a Fortran read would stop on them)."""
    try:
        group = f90nml.read(str(path)).get(GROUP) or {}
    except FileNotFoundError:
        return []
    return [f"{path}: unknown &{GROUP} switch '{name}'" for name in group if name not in SWITCHES]


def read_value(path: Path, group: str, var: str) -> Any:
    """One value of a namelist file (None when the group or variable is absent)."""
    return (f90nml.read(str(path)).get(group.lower()) or {}).get(var.lower())


def has_group(path: Path, group: str = GROUP) -> bool:
    return group.lower() in f90nml.read(str(path))


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (list, tuple)):
        return _str_list(got) == _str_list(list(want))  # blank entries only clear the reference's
    if isinstance(want, str):
        return isinstance(got, str) and got.strip() == want.strip()
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=0.0)
    return False


def _str_list(value: Any) -> list[str] | None:
    """f90nml gives a str for one item and may pad arrays with None."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    return [v.strip() for v in value if isinstance(v, str) and v.strip()]


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return ".true." if value else ".false."
    if isinstance(value, (list, tuple)):
        return ", ".join(repr(v) for v in value)
    return repr(value)
