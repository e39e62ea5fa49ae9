"""Component and OASIS symbolic names: the one place where the naming rule lives.

The Fortran side, the pyoasis transport, the namcouple writer and the launch
checks must agree character for character, so they all call these functions.
It lives in the coupling library, which the transport needs and deployment
builds on (``bridge.transport.naming`` re-exports it for the deploy modules).
"""
from __future__ import annotations

import re

# OASIS3-MCT stores variable, model and grid names in CHARACTER(len=ic_lvar).
# ic_lvar is 80 in the OASIS3-MCT 4.0 sources (mod_oasis_kinds.F90, COSIMA
# mirror commit b390404); some patched builds raise it to 128.  We enforce the
# smaller value so a name valid here is valid in every build.
OASIS_NAME_MAX = 80

_COMPONENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_OASIS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # a word of the namcouple: no blank, no '#', no '$'
MEMBER_PLACEHOLDER = "{k}"  # in a user-given OASIS name: the member number 1..K


def check_component(name: str) -> str:
    """Return ``name`` if it is a valid component name (lower case, [a-z0-9_])."""
    if not _COMPONENT_RE.match(name):
        raise ValueError(f"invalid component name {name!r}: use lower-case letters, digits and '_', "
                         "starting with a letter")
    return name


def check_field(name: str) -> str:
    """Return ``name`` if it is a valid field name (lower case, [a-z0-9_])."""
    if not _FIELD_RE.match(name):
        raise ValueError(f"invalid field name {name!r}: use lower-case letters, digits and '_', "
                         "starting with a letter")
    return name


def member_component(base: str, k: int, members: int) -> str:
    """Name of ensemble member ``k`` (1-based) of ``members``: ``gyre`` or ``gyre_3``."""
    if not 1 <= k <= members:
        raise ValueError(f"member index {k} outside 1..{members}")
    return check_component(base if members == 1 else f"{base}_{k}")


def oasis_name(component: str, field: str, peer: str | None = None) -> str:
    """OASIS symbolic name of one endpoint of a coupled field.

    An endpoint on a Fortran (ocean) component has no peer:
    ``oasis_name("gyre_1", "ssh") == "GYRE_1_SSH"``.  A Python component talks
    to several members, so its endpoint names the peer:
    ``oasis_name("worker", "ssh", peer="gyre_1") == "WORKER_GYRE_1_SSH"``.
    """
    parts = [check_component(component)]
    if peer is not None:
        parts.append(check_component(peer))
    parts.append(check_field(field))
    name = "_".join(parts).upper()
    if len(name) > OASIS_NAME_MAX:
        raise ValueError(f"OASIS name {name!r} has {len(name)} characters, more than the "
                         f"{OASIS_NAME_MAX} OASIS3-MCT accepts: shorten the component or field name")
    return name


def check_oasis_name(name: str) -> str:
    """Return ``name`` if it is a valid user-given OASIS name: a letter, then letters, digits and '_'
    (a namcouple word), at most OASIS_NAME_MAX characters.  OASIS compares names case-sensitively."""
    if not isinstance(name, str) or not _OASIS_RE.match(name):
        raise ValueError(f"invalid OASIS name {name!r}: use a letter, then letters, digits and '_' "
                         "(no blank: the namcouple separates names by blanks)")
    if len(name) > OASIS_NAME_MAX:
        raise ValueError(f"OASIS name {name!r} has {len(name)} characters, more than the {OASIS_NAME_MAX} "
                         "OASIS3-MCT accepts: shorten it")
    return name


def member_oasis_name(template: str, k: int) -> str:
    """A user-given OASIS name for member ``k`` (1-based): ``{k}`` becomes the member number,
    ``member_oasis_name("E_IN_{k}", 2) == "E_IN_2"``; the result is checked (check_oasis_name)."""
    rest = template.replace(MEMBER_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ValueError(f"OASIS name {template!r}: the only placeholder is {MEMBER_PLACEHOLDER} "
                         "(the member number)")
    return check_oasis_name(template.replace(MEMBER_PLACEHOLDER, str(k)))
