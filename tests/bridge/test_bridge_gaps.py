"""Partitions with gaps (issue 20): an ocean that removed its land-only subdomains couples, under mpirun.

The Fortran ocean of the exchange example drops subdomains of its PX x PY layout (MODE drop=K[,K2]) and declares
the gaps; the Python worker, on its own decomposition, receives the analytic fields bit for bit on every point an
ocean rank owns and GAP_FILL (0) on every point of the removed subdomains, and sends its fields back, of which
the ocean receives exactly its own boxes (the rest is dropped, as OASIS does).  The other direction of the fill:
a Python side that declares a gap (its rank 0 leaves a column to no rank) gives the Fortran ocean 0 there.
An undeclared gap still stops both sides naming the first missing point, and the checks fail when the fill or
the layout they expect is wrong (so they can fail).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from test_bridge_exchange import NLEV, NSTEPS, NX, NY, exchange

from bridge import BoxPartition, decompose
from bridge.errors import DefinitionError
from bridge.handshake import FieldDef, OUT, RankDefs, decode, encode, validate
from bridge.partition import GAP_FILL, check_tiling, unowned

# ocean layout (px, py) and the subdomains it removes (0-based, i fastest): 1 or 2 of them
DROPS = {"one removed": ((2, 2), (3,)), "two removed": ((3, 2), (0, 4))}


def gapped(fortran_build, drop: str, n_worker: int, declared: bool = True, worker_mode: str | None = None):
    (px, py), removed = DROPS[drop]
    items = ",".join(map(str, removed))
    ocean_mode = f"{'drop' if declared else 'dropsilent'}={items}"
    worker_mode = worker_mode or f"drop={px},{py},{items}"
    return exchange(fortran_build, n_ocean=2, n_worker=n_worker, ocean_mode=ocean_mode, worker_mode=worker_mode,
                    ocean_layout=(px, py), n_ocean_ranks=px * py - len(removed))


def owned_points(drop: str) -> int:
    (px, py), removed = DROPS[drop]
    return NX * NY - sum(decompose(NX, NY, px, py)[k].size for k in removed)


@pytest.mark.mpi
@pytest.mark.parametrize("n_worker", [1, 2])
@pytest.mark.parametrize("drop", list(DROPS))
def test_removed_subdomains_are_land_to_the_worker_and_the_rest_is_bit_exact(fortran_build, drop, n_worker):
    run = gapped(fortran_build, drop, n_worker)
    assert run.returncode == 0, run.stdout
    (px, py), removed = DROPS[drop]
    for r in range(px * py - len(removed)):  # the ocean's gets of the worker's fields: bit-exact on its boxes
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout, run.stdout
    # the worker checked every point of its boxes: analytic where an ocean rank owns it, GAP_FILL elsewhere
    received = sum(int(n) for n in re.findall(r"worker rank \d+: \d+ steps, (\d+) values received", run.stdout))
    assert received == NSTEPS * NX * NY * (1 + NLEV)
    assert owned_points(drop) < NX * NY


@pytest.mark.mpi
def test_the_worker_check_fails_when_it_expects_other_land(fortran_build):
    """The same job, with the worker told the wrong subdomain was removed: its bit-exact check must fail."""
    run = gapped(fortran_build, "one removed", 2, worker_mode="drop=2,2,2")
    assert run.returncode != 0
    assert "a2 differs at step 0" in run.stdout, run.stdout


@pytest.mark.mpi
def test_an_undeclared_gap_stops_both_sides_naming_the_first_missing_point(fortran_build):
    run = gapped(fortran_build, "one removed", 2, declared=False)
    assert run.returncode != 0
    want = ("component 'ocean': partitions leave a gap: they cover 113 of 13x11=143 points (first missing point: "
            "i=7, j=6); if no rank owns those points because they are land (land-only subdomains removed), "
            "declare it: def_partition(box, gaps=True) (Fortran: obr_def_partition(..., ld_gaps=.true.))")
    for side in ("ocean", "worker"):  # the Fortran and the Python rank, each with its own check
        assert f"oceanbridge ERROR (component '{side}', world rank " in run.stdout, run.stdout
    assert run.stdout.count(want) >= 2, run.stdout


@pytest.mark.mpi
@pytest.mark.parametrize("ocean_expects_gap", [True, False])
def test_a_python_side_gap_gives_the_fortran_receiver_zeros(fortran_build, ocean_expects_gap):
    """The worker's rank 0 (of 1 x 2) leaves the last column of its box to no rank and declares it: the ocean's
    gets hold GAP_FILL there.  An ocean that expects the analytic value there finds the mismatch."""
    run = exchange(fortran_build, n_ocean=2, n_worker=2, worker_mode="gapdeclared",
                   ocean_mode="wgap=1,2" if ocean_expects_gap else "normal")
    if ocean_expects_gap:
        assert run.returncode == 0, run.stdout
        assert run.stdout.count(f"steps exchanged bit-exactly") == 2, run.stdout
    else:
        assert run.returncode != 0
        assert "received values differ from the analytic field" in run.stdout, run.stdout


# ---- the rules, without MPI ----


def test_declared_gaps_pass_the_tiling_check_but_overlaps_and_undeclared_gaps_do_not():
    boxes = {0: BoxPartition(8, 4, 0, 0, 4, 4), 1: BoxPartition(8, 4, 4, 0, 2, 4)}  # columns 6, 7 owned by none
    check_tiling(boxes, "ocean", gaps=True)
    with pytest.raises(DefinitionError, match=r"leave a gap: they cover 24 of 8x4=32 points \(first missing point: "
                                              r"i=6, j=0\)"):
        check_tiling(boxes, "ocean")
    with pytest.raises(DefinitionError, match="partitions of ranks 0 and 1 overlap at"):
        check_tiling({**boxes, 1: BoxPartition(8, 4, 3, 0, 2, 4)}, "ocean", gaps=True)


def test_the_gap_declaration_travels_in_the_partition_record_and_must_agree():
    box = BoxPartition(8, 4, 0, 0, 4, 4)
    assert decode(0, encode("ocean", box, [], gaps=True)).gaps is True
    assert decode(0, encode("ocean", box, [])).gaps is False
    assert decode(0, encode("ocean", box, [], protocol=3)).gaps is False  # version 3 had no partition record
    defs = [RankDefs(0, "ocean", box, (FieldDef("sst", OUT, 1),), gaps=True),
            RankDefs(1, "ocean", BoxPartition(8, 4, 4, 0, 2, 4), (FieldDef("sst", OUT, 1),), gaps=False)]
    with pytest.raises(DefinitionError, match=r"ranks \[0\] declare gaps in the partition \(gaps=True\) but ranks "
                                              r"\[1\] do not; every rank of a component must declare the same"):
        validate(defs)


def test_unowned_marks_exactly_the_points_no_route_covers():
    box = BoxPartition(10, 6, 2, 1, 6, 4)
    assert unowned(box, [box]) is None
    routes = [BoxPartition(10, 6, 2, 1, 3, 4), BoxPartition(10, 6, 5, 3, 3, 2)]
    missing = unowned(box, routes)
    want = np.zeros((4, 6), dtype=bool)
    want[0:2, 3:6] = True  # rows j=1..2 of columns i=5..7
    assert np.array_equal(missing, want)
    assert GAP_FILL == 0.0
