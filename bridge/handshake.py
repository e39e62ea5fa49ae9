"""Definitions exchanged at end of definitions, and their validation.

Every rank of every component (Fortran or Python) contributes fixed-width text
records: one header (component, global grid, its box, field count) and one
record per field (name, peer, direction, levels). All ranks gather all
records, so every rank reaches the same verdict on the same data: errors stop
both sides with the same message and nobody waits on a peer that has already
given up. The layout is mirrored by ``bridge/fortran/obr_mpi_defs.F90``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import DefinitionError
from .partition import BoxPartition, check_tiling

RECORD_LEN = 160
NAME_LEN = 64
INT_WIDTH = 12
IN, OUT = 1, 2
# A route of at least this many points per level travels as one message per
# level: each level is contiguous on both sides, so MPI can move it with a
# single copy (CMA) straight into the receiver's array.
CHUNK_MIN_POINTS = 8192
DIRECTIONS = {"in": IN, "out": OUT}
DIRECTION_NAMES = {IN: "in", OUT: "out"}


@dataclass(frozen=True)
class FieldDef:
    """One field as one component declares it."""

    name: str
    direction: int
    nlev: int
    peer: str = ""  # empty: the unique other component that declares the field


@dataclass(frozen=True)
class RankDefs:
    """Everything one rank declared before end of definitions."""

    rank: int
    component: str
    box: BoxPartition
    fields: tuple[FieldDef, ...]


@dataclass(frozen=True)
class Coupling:
    """One field travelling from ``src`` to ``dst``; ``tag`` is its MPI tag."""

    tag: int
    name: str
    src: str
    dst: str
    src_field: FieldDef
    dst_field: FieldDef


def messages_per_route(box: BoxPartition, nlev: int) -> int:
    """How many data messages carry one route's points (the Fortran side agrees)."""
    return nlev if nlev > 1 and box.ni * box.nj >= CHUNK_MIN_POINTS else 1


def _text(value: str, width: int = NAME_LEN) -> str:
    if len(value) > width:
        raise DefinitionError(f"name '{value}' is longer than {width} characters")
    return value.ljust(width)


def _ints(*values: int) -> str:
    return "".join(f"{v:{INT_WIDTH}d}" for v in values)


def encode(component: str, box: BoxPartition, fields: list[FieldDef]) -> bytes:
    """The records of one rank, as the Fortran side writes them."""
    b = box
    recs = ["OBRH" + _text(component) + _ints(b.nx, b.ny, b.i0, b.j0, b.ni, b.nj, len(fields))]
    recs += ["OBRF" + _text(f.name) + _text(f.peer) + _ints(f.direction, f.nlev) for f in fields]
    return "".join(r.ljust(RECORD_LEN) for r in recs).encode("ascii")


def decode(rank: int, data: bytes) -> RankDefs:
    """Parse the records one rank sent (the inverse of :func:`encode`)."""
    text = data.decode("ascii")
    recs = [text[k:k + RECORD_LEN] for k in range(0, len(text), RECORD_LEN)]
    head = recs[0]
    if not head.startswith("OBRH"):
        raise DefinitionError(f"rank {rank}: malformed definition record {head[:20]!r}")
    component = head[4:4 + NAME_LEN].strip()
    ints = _read_ints(head[4 + NAME_LEN:], 7)
    box = BoxPartition(*ints[:6])
    fields = []
    for rec in recs[1:1 + ints[6]]:
        name, peer = rec[4:4 + NAME_LEN].strip(), rec[4 + NAME_LEN:4 + 2 * NAME_LEN].strip()
        direction, nlev = _read_ints(rec[4 + 2 * NAME_LEN:], 2)
        fields.append(FieldDef(name, direction, nlev, peer))
    return RankDefs(rank, component, box, tuple(fields))


def _read_ints(text: str, count: int) -> list[int]:
    return [int(text[k * INT_WIDTH:(k + 1) * INT_WIDTH]) for k in range(count)]


def components(all_defs: list[RankDefs]) -> dict[str, list[RankDefs]]:
    """Ranks grouped by component, components in order of their first rank."""
    groups: dict[str, list[RankDefs]] = {}
    for d in sorted(all_defs, key=lambda d: d.rank):
        groups.setdefault(d.component, []).append(d)
    return groups


def validate(all_defs: list[RankDefs]) -> list[Coupling]:
    """Check every component and field, and pair each output with its input.

    Raises DefinitionError with a message that names the component, the field
    and both sides' declarations. The tags are the coupling indices, in the
    same order on every rank."""
    groups = components(all_defs)
    for comp, ranks in groups.items():
        check_tiling({d.rank: d.box for d in ranks}, comp)
        _check_same_fields(comp, ranks)
    grids = {comp: (ranks[0].box.nx, ranks[0].box.ny) for comp, ranks in groups.items()}
    endpoints = [(comp, f) for comp, ranks in groups.items() for f in ranks[0].fields]
    couplings = []
    for comp, f in endpoints:
        if f.direction == OUT:
            couplings.append(_pair(len(couplings), comp, f, endpoints, grids))
    matched = _check_single_sender(couplings)
    for comp, f in endpoints:
        if f.direction == IN and (comp, f) not in matched:
            raise DefinitionError(
                f"field '{f.name}' (in, component '{comp}'{_peer_text(f)}): no component sends it; "
                f"is the peer launched and does it define '{f.name}' as out?")
    return couplings


def _check_single_sender(couplings: list[Coupling]) -> set:
    senders: dict = {}
    for c in couplings:
        key = (c.dst, c.dst_field)
        if key in senders:
            raise DefinitionError(
                f"field '{c.name}' (in, component '{c.dst}'): both '{senders[key]}' and '{c.src}' send it; "
                f"name the peer on the receiving side")
        senders[key] = c.src
    return set(senders)


def _check_same_fields(comp: str, ranks: list[RankDefs]) -> None:
    first = ranks[0]
    for d in ranks[1:]:
        if d.fields != first.fields:
            raise DefinitionError(
                f"component '{comp}': rank {d.rank} defines fields {_names(d.fields)} but rank {first.rank} "
                f"defines {_names(first.fields)}; every rank of a component must define the same fields")


def _names(fields) -> str:
    return "[" + ", ".join(f"{f.name}({DIRECTION_NAMES.get(f.direction, '?')},{f.nlev})" for f in fields) + "]"


def _peer_text(f: FieldDef) -> str:
    return f", peer '{f.peer}'" if f.peer else ""


def _accepts(comp: str, f: FieldDef, other_comp: str) -> bool:
    return other_comp != comp and (not f.peer or f.peer == other_comp)


def _pair(tag, src, f, endpoints, grids) -> Coupling:
    candidates = [(comp, g) for comp, g in endpoints
                  if g.direction == IN and g.name == f.name and _accepts(src, f, comp) and _accepts(comp, g, src)]
    if not candidates:
        raise DefinitionError(
            f"field '{f.name}' (out, component '{src}'{_peer_text(f)}): no component receives it; "
            f"is the peer launched and does it define '{f.name}' as in?")
    if len(candidates) > 1:
        raise DefinitionError(
            f"field '{f.name}' (out, component '{src}'): several components receive it "
            f"({', '.join(c for c, _ in candidates)}); name the peer on the receiving side")
    dst, g = candidates[0]
    (snx, sny), (dnx, dny) = grids[src], grids[dst]
    if (snx, sny, f.nlev) != (dnx, dny, g.nlev):
        raise DefinitionError(
            f"field '{f.name}': shapes disagree: component '{src}' declares {snx}x{sny} with {f.nlev} level(s), "
            f"component '{dst}' declares {dnx}x{dny} with {g.nlev} level(s) (nx x ny, nlev)")
    return Coupling(tag, f.name, src, dst, f, g)
