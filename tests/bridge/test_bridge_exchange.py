"""End-to-end: a Fortran component and a Python component exchange analytic
fields bit for bit under mpirun, across decompositions, and fail loudly on
bad input instead of hanging."""
from __future__ import annotations

import re

import pytest
from mpmd_jobs import PYTHON, REPO, run_mpmd

pytestmark = pytest.mark.mpi

NX, NY, NLEV, NSTEPS = 13, 11, 4, 3
OCEAN_LAYOUTS = {1: (1, 1), 2: (2, 1), 3: (1, 3), 4: (2, 2)}  # uneven: 13 = 7+6, 11 = 4+4+3
WORKER_LAYOUTS = {1: (1, 1), 2: (1, 2)}
# Every route of these layouts on this grid holds more than handshake.CHUNK points per level (half of
# 1600 x 1400 is 1 120 000): two or more chunks per level.
BIG_GRID = (1600, 1400, 2)
WORKER = str(REPO / "bridge" / "examples" / "exchange_worker.py")


def exchange(fortran_build, n_ocean=2, n_worker=2, ocean_mode="normal", worker_mode="normal", env=None, timeout=120,
             keep_going=False, grid=(NX, NY, NLEV), worker_layout=None, ocean_layout=None, n_ocean_ranks=None):
    """``ocean_layout`` (px, py) and ``n_ocean_ranks`` override the layout of n_ocean ranks (subdomains removed)."""
    px, py = ocean_layout or OCEAN_LAYOUTS[n_ocean]
    n_ocean = n_ocean_ranks or n_ocean
    wx, wy = worker_layout or WORKER_LAYOUTS[n_worker]
    nx, ny, nlev = grid
    ocean = [str(fortran_build / "bin" / "obr_exchange_ocean"), *map(str, (nx, ny, nlev, px, py, NSTEPS)), ocean_mode]
    worker = [PYTHON, WORKER, *map(str, (nx, ny, nlev, NSTEPS, wx, wy)), worker_mode]
    return run_mpmd([(n_ocean, ocean), (n_worker, worker)], env=env, timeout=timeout, keep_going=keep_going)


@pytest.mark.parametrize("n_worker", [1, 2])
@pytest.mark.parametrize("n_ocean", [1, 2, 3, 4])
def test_bit_exact_both_directions(fortran_build, n_ocean, n_worker):
    run = exchange(fortran_build, n_ocean, n_worker)
    assert run.returncode == 0, run.stdout
    for r in range(n_ocean):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout
    # ranks' lines may interleave on one line of the merged output
    received = sum(int(n) for n in re.findall(r"worker rank \d+: \d+ steps, (\d+) values received", run.stdout))
    assert received == NSTEPS * NX * NY * (1 + NLEV)  # every point of a2 and b3, every step, exactly once


@pytest.mark.parametrize("put_mode", ["copy", "direct"])
@pytest.mark.parametrize("n_ocean,n_worker", [(1, 1), (2, 1), (2, 2)])
def test_bit_exact_large_levels_one_message_per_level(fortran_build, n_ocean, n_worker, put_mode):
    """Routes of >= 8192 points per level travel one level per message; the direct
    put mode sends straight from the Fortran array. Both stay bit-exact."""
    grid = (200, 100, 3)
    run = exchange(fortran_build, n_ocean, n_worker, env={"OBRIDGE_PUT_MODE": put_mode}, grid=grid)
    assert run.returncode == 0, run.stdout
    received = sum(int(n) for n in re.findall(r"worker rank \d+: \d+ steps, (\d+) values received", run.stdout))
    assert received == NSTEPS * 200 * 100 * (1 + 3)


def test_shape_mismatch_stops_both_sides_naming_field_and_shapes(fortran_build):
    run = exchange(fortran_build, ocean_mode="shape")
    assert run.returncode != 0
    want = "field 'b3': shapes disagree: component 'ocean' declares 13x11 with 5 level(s), component 'worker' declares 13x11 with 4 level(s)"
    assert "oceanbridge ERROR (component 'ocean'" in run.stdout and "oceanbridge ERROR (component 'worker'" in run.stdout
    assert run.stdout.count(want) >= 2, run.stdout


@pytest.mark.parametrize("mode,want", [
    ("gap", "component 'worker': partitions leave a gap: they cover 137 of 13x11"),
    ("overlap", "component 'worker': partitions of ranks 2 and 3 overlap at i=0..12, j=5..5"),
])
def test_partition_gap_or_overlap_is_an_error_at_enddef(fortran_build, mode, want):
    run = exchange(fortran_build, worker_mode=mode)
    assert run.returncode != 0
    for side in ("ocean", "worker"):
        assert f"oceanbridge ERROR (component '{side}'" in run.stdout, run.stdout
    assert run.stdout.count(want) >= 2, run.stdout


def test_unknown_field_id_in_fortran_put(fortran_build):
    run = exchange(fortran_build, ocean_mode="badid")
    assert run.returncode != 0
    assert "put at step 0: unknown field id 11 (ids are 1..4)" in run.stdout, run.stdout


def test_unknown_field_name_in_python(fortran_build):
    run = exchange(fortran_build, worker_mode="badname")
    assert run.returncode != 0
    assert "component 'worker': unknown field 'sst'; defined: 'a2' (peer 'ocean')" in run.stdout, run.stdout


def test_silent_peer_times_out_with_a_message(fortran_build):
    run = exchange(fortran_build, ocean_mode="waitget", worker_mode="silent")
    assert run.returncode != 0
    assert ("field 'c2': get at step 0 received nothing from world rank(s) 2 3 of component 'worker' within 3.0 s"
            in run.stdout), run.stdout


def test_killed_worker_ocean_stops_after_timeout(fortran_build):
    run = exchange(fortran_build, ocean_mode="waitget", worker_mode="die", keep_going=True)
    assert run.returncode != 0
    assert "field 'c2': get at step 0 received nothing from world rank(s) 2 3 of component 'worker'" in run.stdout


def test_dead_ocean_worker_stops_after_timeout(fortran_build):
    run = exchange(fortran_build, ocean_mode="die", env={"OBRIDGE_TIMEOUT": "3"}, keep_going=True)
    assert run.returncode != 0
    assert "get at step 0 received nothing from world rank(s) [0, 1] of component 'ocean'" in run.stdout, run.stdout
    assert "(timeout 3 s)" in run.stdout


def test_errors_through_kinfo_return_code_and_message(fortran_build):
    run = exchange(fortran_build, n_worker=1, ocean_mode="kinfo", worker_mode="silent", env={"OBRIDGE_TIMEOUT": "20"})
    assert "kinfo=-2 message: field 'c2': get at step 0 received nothing from world rank(s) 2 of component 'worker'" \
        in run.stdout, run.stdout


@pytest.mark.parametrize("alone", ["ocean", "worker"])
def test_side_that_never_arrives_is_named(fortran_build, alone):
    ocean = [str(fortran_build / "bin" / "obr_exchange_ocean"), *map(str, (NX, NY, NLEV, 2, 1, NSTEPS))]
    worker = [PYTHON, WORKER, *map(str, (NX, NY, NLEV, NSTEPS, 1, 2))]
    run = run_mpmd([(2, ocean if alone == "ocean" else worker)], timeout=60)
    assert run.returncode != 0
    if alone == "ocean":
        want = "field 'a2' (out, component 'ocean'): no component receives it; is the peer launched"
    else:
        want = "field 'c2' (out, component 'worker', peer 'ocean'): no component receives it; is the peer launched"
    assert want in run.stdout, run.stdout


def test_nan_put_is_rejected_naming_the_field(fortran_build):
    run = exchange(fortran_build, n_ocean=1, n_worker=1, ocean_mode="nan")
    assert run.returncode != 0
    assert "field 'a2': put at step 1 holds 1 NaN/Inf value(s)" in run.stdout, run.stdout


def test_nan_policy_warn_sends_anyway(fortran_build):
    run = exchange(fortran_build, n_ocean=1, n_worker=1, ocean_mode="nan", worker_mode="nanwarn",
                   env={"OBRIDGE_NAN_POLICY": "warn"})
    assert run.returncode == 0, run.stdout
    assert "oceanbridge WARNING (component 'ocean', world rank 0): field 'a2': put at step 1 holds 1 NaN/Inf" in run.stdout


def test_process_that_never_joins_stops_the_job(fortran_build, tmp_path):
    """A worker that fails before joining (before MPI starts) must not leave the ocean waiting:
    the default launch stops the job and the worker's own error is shown."""
    ocean = [str(fortran_build / "bin" / "obr_exchange_ocean"), *map(str, (NX, NY, NLEV, 1, 1, NSTEPS))]
    crash = tmp_path / "crash.py"
    crash.write_text("raise SystemExit('worker failed before joining')\n")
    run = run_mpmd([(1, ocean), (1, [PYTHON, str(crash)])], timeout=60)
    assert run.returncode != 0
    assert "worker failed before joining" in run.stdout


@pytest.mark.parametrize("put_mode", ["copy", "direct"])
@pytest.mark.parametrize("n_ocean,n_worker", [(1, 1), (2, 1), (1, 2)])
def test_bit_exact_several_chunks_per_level(fortran_build, n_ocean, n_worker, put_mode):
    """Routes of 2-3 chunks per level (handshake.chunks and obr_mpi_defs' route_chunk must agree
    chunk for chunk), 2-D and 3-D, both directions; (2, 1) stages on the Python side (its rows are
    wider than the route), (1, 2) receives in place on both sides."""
    from bridge import decompose
    from bridge.handshake import chunks

    grid = BIG_GRID
    ocean_boxes = decompose(*grid[:2], *OCEAN_LAYOUTS[n_ocean])
    worker_boxes = decompose(*grid[:2], *WORKER_LAYOUTS[n_worker])
    per_level = {len(chunks(ov, 1)) for a in ocean_boxes for b in worker_boxes if (ov := a.intersect(b))}
    assert min(per_level) >= 2, per_level
    run = exchange(fortran_build, n_ocean, n_worker, env={"OBRIDGE_PUT_MODE": put_mode}, grid=grid)
    assert run.returncode == 0, run.stdout
    for r in range(n_ocean):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout
    received = sum(int(n) for n in re.findall(r"worker rank \d+: \d+ steps, (\d+) values received", run.stdout))
    assert received == NSTEPS * grid[0] * grid[1] * (1 + grid[2])


@pytest.mark.parametrize("grid", [(NX, NY, NLEV), BIG_GRID])
@pytest.mark.parametrize("n_ocean", [1, 2])
def test_bit_exact_workers_split_across_ocean_rows(fortran_build, n_ocean, grid):
    """Workers split in i: the ocean packs part rows (row by row, from its contiguous array) and the
    worker stages them; BIG_GRID takes several chunks per level."""
    run = exchange(fortran_build, n_ocean, 2, env={"OBRIDGE_PUT_MODE": "direct"}, grid=grid, worker_layout=(2, 1))
    assert run.returncode == 0, run.stdout
    for r in range(n_ocean):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout
    received = sum(int(n) for n in re.findall(r"worker rank \d+: \d+ steps, (\d+) values received", run.stdout))
    assert received == NSTEPS * grid[0] * grid[1] * (1 + grid[2])
