"""Property tests of partitions and routes: random decompositions tile the
grid, and routing between any two of them moves every point exactly once."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import DefinitionError
from bridge.handshake import IN, OUT, FieldDef, RankDefs, decode, encode, validate
from bridge.partition import BoxPartition, check_tiling, decompose, split_1d
from bridge.routing import routes


@st.composite
def grids_and_layouts(draw):
    nx, ny = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    px, py = draw(st.integers(1, min(nx, 6))), draw(st.integers(1, min(ny, 6)))
    return nx, ny, px, py


@st.composite
def random_cuts(draw, n, parts):
    """An uneven split of n points into parts pieces at random cut positions."""
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), min_size=parts - 1, max_size=parts - 1))) if parts > 1 else []
    edges = [0, *cuts, n]
    return [(a, b - a) for a, b in zip(edges, edges[1:])]


@st.composite
def random_decomposition(draw, nx, ny):
    px, py = draw(st.integers(1, min(nx, 5))), draw(st.integers(1, min(ny, 5)))
    xs, ys = draw(random_cuts(nx, px)), draw(random_cuts(ny, py))
    return [BoxPartition(nx, ny, i0, j0, ni, nj) for (j0, nj) in ys for (i0, ni) in xs]


def coverage(boxes, nx, ny):
    count = np.zeros((ny, nx), dtype=int)
    for b in boxes:
        count[b.j0:b.j0 + b.nj, b.i0:b.i0 + b.ni] += 1
    return count


@given(grids_and_layouts())
def test_decompose_tiles_the_grid(case):
    nx, ny, px, py = case
    boxes = decompose(nx, ny, px, py)
    assert len(boxes) == px * py
    assert (coverage(boxes, nx, ny) == 1).all()
    check_tiling(dict(enumerate(boxes)), "test")  # must not raise


@given(st.integers(1, 500), st.integers(1, 50))
def test_split_1d_is_balanced(n, parts):
    if parts > n:
        with pytest.raises(DefinitionError):
            split_1d(n, parts)
        return
    pieces = split_1d(n, parts)
    extents = [e for _, e in pieces]
    assert sum(extents) == n and max(extents) - min(extents) <= 1
    assert all(o == sum(extents[:k]) for k, (o, _) in enumerate(pieces))


@settings(max_examples=200, deadline=None)  # no per-example deadline: CI machines are shared and slow
@given(st.data())
def test_routes_cover_every_point_exactly_once(data):
    nx, ny = data.draw(st.integers(1, 30)), data.draw(st.integers(1, 30))
    src = data.draw(random_decomposition(nx, ny))
    dst = data.draw(random_decomposition(nx, ny))
    peers = {100 + k: b for k, b in enumerate(dst)}
    sent = np.zeros((ny, nx), dtype=int)
    received = np.zeros((ny, nx), dtype=int)
    for s in src:  # what each source rank sends, summed over its routes
        for r in routes(s, peers):
            assert s.intersect(r.box) == r.box and peers[r.peer].intersect(r.box) == r.box
            sent[r.box.j0:r.box.j0 + r.box.nj, r.box.i0:r.box.i0 + r.box.ni] += 1
    for d in dst:  # and what each destination rank receives: the same points
        for r in routes(d, dict(enumerate(src))):
            received[r.box.j0:r.box.j0 + r.box.nj, r.box.i0:r.box.i0 + r.box.ni] += 1
    assert (sent == 1).all() and (received == 1).all()


@given(st.data())
def test_tiling_check_finds_gaps_and_overlaps(data):
    nx, ny = data.draw(st.integers(2, 20)), data.draw(st.integers(2, 20))
    boxes = data.draw(random_decomposition(nx, ny))
    k = data.draw(st.integers(0, len(boxes) - 1))
    b = boxes[k]
    if b.ni > 1:  # shrink one box: a gap
        shrunk = dict(enumerate(boxes)) | {k: BoxPartition(nx, ny, b.i0, b.j0, b.ni - 1, b.nj)}
        with pytest.raises(DefinitionError, match="leave a gap"):
            check_tiling(shrunk, "ocean")
    extra = dict(enumerate(boxes)) | {len(boxes): BoxPartition(nx, ny, b.i0, b.j0, 1, 1)}
    with pytest.raises(DefinitionError, match="overlap"):
        check_tiling(extra, "ocean")


def test_records_round_trip():
    box = BoxPartition(64, 48, 32, 0, 32, 24)
    fields = [FieldDef("sst", OUT, 1), FieldDef("temp_emu", IN, 31, peer="worker")]
    rd = decode(5, encode("nemo_3", box, fields))
    assert rd == RankDefs(5, "nemo_3", box, tuple(fields))


def test_validate_pairs_members_by_peer_and_names_shape_mismatch():
    whole = BoxPartition.whole(8, 6)
    defs = [RankDefs(0, "gyre_1", whole, (FieldDef("ssh", OUT, 1),)),
            RankDefs(1, "gyre_2", whole, (FieldDef("ssh", OUT, 1),)),
            RankDefs(2, "worker", whole, (FieldDef("ssh", IN, 1, "gyre_1"), FieldDef("ssh", IN, 1, "gyre_2")))]
    couplings = validate(defs)
    assert [(c.tag, c.src, c.dst, c.dst_field.peer) for c in couplings] == [
        (0, "gyre_1", "worker", "gyre_1"), (1, "gyre_2", "worker", "gyre_2")]
    bad = defs[:2] + [RankDefs(2, "worker", BoxPartition.whole(8, 5),
                               (FieldDef("ssh", IN, 1, "gyre_1"), FieldDef("ssh", IN, 1, "gyre_2")))]
    with pytest.raises(DefinitionError, match=r"field 'ssh': shapes disagree: component 'gyre_1' declares 8x6 "
                                              r"with 1 level\(s\), component 'worker' declares 8x5"):
        validate(bad)


def test_validate_rejects_two_senders_for_one_input():
    whole = BoxPartition.whole(4, 4)
    defs = [RankDefs(0, "a", whole, (FieldDef("x", OUT, 1),)), RankDefs(1, "b", whole, (FieldDef("x", OUT, 1),)),
            RankDefs(2, "w", whole, (FieldDef("x", IN, 1),))]
    with pytest.raises(DefinitionError, match="both 'a' and 'b' send it"):
        validate(defs)
