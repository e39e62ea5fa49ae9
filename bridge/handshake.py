"""Definitions exchanged at end of definitions, and their validation.

Every rank of every component (Fortran or Python) contributes fixed-width text
records: one header (component, global grid, its box, field count, wire
protocol version) and one record per field (name, peer, direction, levels).
All ranks gather all
records, so every rank reaches the same verdict on the same data: errors stop
both sides with the same message and nobody waits on a peer that has already
given up. The layout is mirrored by ``bridge/fortran/obr_mpi_defs.F90``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import DefinitionError, ProtocolError
from .partition import BoxPartition, check_tiling, split_1d

RECORD_LEN = 160
NAME_LEN = 64
INT_WIDTH = 12
IN, OUT = 1, 2
# The wire protocol this code speaks, written in the last VERSION_WIDTH
# characters of the header record. Version 1 (blank there, the unversioned
# code) sent a (step, tag) header then one message per level; version 2 sent
# chunks of at most 65536 points and then a trailer (TRAILER); version 3 sends
# chunks of at most CHUNK points; version 4 adds the partition record (PART_TAG)
# after the fields: whether the component's ranks may leave points of the grid
# to no rank (gaps: land-only subdomains removed). Bump it with every change of what travels
# on the wire, here and in obr_mpi_defs.F90.
PROTOCOL_VERSION = 4
UNVERSIONED = 1
VERSION_WIDTH = 8
# A route travels as chunks of whole rows of one level, of at most CHUNK
# points (8 MiB) unless one row is longer. Every message costs a rendezvous
# and a page pinning on the receiver: version 2's 512 KiB chunks moved 0.86-0.92
# of the bytes per second of one message per pair (bench_bridge, raw patterns
# chunked vs isend), 8 MiB ones 0.93-1.01. A copy-mode put still overlaps its
# copy with the transfer of the puts before it (the ring).
CHUNK = 1 << 20
# After its chunks, a route sends one trailer of TRAILER int64 on the same
# tag: step, tag, NaN/Inf values in the whole put, 1 if the put was rejected.
TRAILER = 4
PART_TAG = "OBRP"  # the partition record: gaps (1: declared) -- version 4
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
    protocol: int = PROTOCOL_VERSION  # wire protocol version of the code that wrote the records
    gaps: bool = False  # its component's ranks may cover only part of the grid (the rest is land)


@dataclass(frozen=True)
class Coupling:
    """One field travelling from ``src`` to ``dst``; ``tag`` is its MPI tag."""

    tag: int
    name: str
    src: str
    dst: str
    src_field: FieldDef
    dst_field: FieldDef


@dataclass(frozen=True)
class Chunk:
    """One data message of a route: rows ``row0 .. row0+nrows-1`` (relative to the
    route's j0) of level ``lev``, at ``offset`` in the route's packed points."""

    lev: int
    row0: int
    nrows: int
    offset: int


def chunks(box: BoxPartition, nlev: int, chunk: int = CHUNK) -> list[Chunk]:
    """The data messages of a route, in sending order (obr_mpi_defs.F90's route_chunk agrees):
    per level, its rows split as evenly as possible into the fewest pieces of at most
    ``chunk`` points (a single row longer than ``chunk`` is one piece)."""
    per_level = chunks_per_level(box, chunk)
    return [Chunk(lev, row0, nrows, (lev * box.nj + row0) * box.ni)
            for lev in range(nlev) for row0, nrows in split_1d(box.nj, per_level)]


def chunks_per_level(box: BoxPartition, chunk: int = CHUNK) -> int:
    """How many chunks one level of a route takes."""
    rows = max(1, chunk // box.ni)
    return -(-box.nj // rows)


def _text(value: str, width: int = NAME_LEN) -> str:
    if len(value) > width:
        raise DefinitionError(f"name '{value}' is longer than {width} characters")
    return value.ljust(width)


def _ints(*values: int) -> str:
    return "".join(f"{v:{INT_WIDTH}d}" for v in values)


def encode(component: str, box: BoxPartition, fields: list[FieldDef], protocol: int = PROTOCOL_VERSION,
           gaps: bool = False) -> bytes:
    """The records of one rank, as the Fortran side writes them."""
    b = box
    head = "OBRH" + _text(component) + _ints(b.nx, b.ny, b.i0, b.j0, b.ni, b.nj, len(fields))
    recs = [head.ljust(RECORD_LEN - VERSION_WIDTH) + f"{protocol:{VERSION_WIDTH}d}"]
    recs += ["OBRF" + _text(f.name) + _text(f.peer) + _ints(f.direction, f.nlev) for f in fields]
    recs += [PART_TAG + _ints(int(gaps))] if protocol >= 4 else []
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
    version = head[RECORD_LEN - VERSION_WIDTH:].strip()  # blank: written by the unversioned code
    protocol = int(version) if version.isdigit() else UNVERSIONED
    fields = []
    for rec in recs[1:1 + ints[6]]:
        name, peer = rec[4:4 + NAME_LEN].strip(), rec[4 + NAME_LEN:4 + 2 * NAME_LEN].strip()
        direction, nlev = _read_ints(rec[4 + 2 * NAME_LEN:], 2)
        fields.append(FieldDef(name, direction, nlev, peer))
    part = [rec for rec in recs[1 + ints[6]:] if rec.startswith(PART_TAG)]
    gaps = bool(_read_ints(part[0][len(PART_TAG):], 1)[0]) if part else False
    return RankDefs(rank, component, box, tuple(fields), protocol, gaps)


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
    check_protocol(all_defs)
    groups = components(all_defs)
    for comp, ranks in groups.items():
        check_tiling({d.rank: d.box for d in ranks}, comp, _gaps(comp, ranks))
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


def check_protocol(all_defs: list[RankDefs], mine: int = PROTOCOL_VERSION) -> None:
    """Raise ProtocolError naming the first rank whose records carry another wire protocol version."""
    for d in sorted(all_defs, key=lambda d: d.rank):
        if d.protocol != mine:
            age = "older" if d.protocol < mine else "newer"
            raise ProtocolError(
                f"rank {d.rank} (component '{d.component}') speaks bridge protocol version {d.protocol}, {age} "
                f"than this rank's version {mine}: the two sides were built from different oceanbridge versions; "
                f"rerun `oceanbridge install` and rebuild the model")


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


def _gaps(comp: str, ranks: list[RankDefs]) -> bool:
    """Whether the component declared gaps; every rank must say the same."""
    declared = [d.rank for d in ranks if d.gaps]
    if declared and len(declared) != len(ranks):
        silent = [d.rank for d in ranks if not d.gaps]
        raise DefinitionError(f"component '{comp}': ranks {declared} declare gaps in the partition (gaps=True) but "
                              f"ranks {silent} do not; every rank of a component must declare the same")
    return bool(declared)


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
