"""The bridge's exchange example on the OASIS3-MCT backend, against a Fortran stand-in worker.

pyoasis 5 is not reachable here, so tests/oasis/worker_standin.F90 plays the
Python worker with the same field table (component 'worker', OASIS names
WORKER_OCEAN_<FIELD>).  The two sides use different decompositions (ocean:
j-split, worker: i-split), so MCT reroutes every point; every value of the 2-D
and 3-D fields, both directions, 3 steps, is checked bit for bit.  Needs an
OASIS3-MCT build under $OASIS_DIR; skipped with the reason otherwise.
"""
from __future__ import annotations

import re

import pytest
from oasis_jobs import BUILD, build_programs, exchange_namcouple, run_mpmd

from deploy.oasis_fortran import find_oasis_fortran

pytestmark = [pytest.mark.oasis, pytest.mark.mpi]
NX, NY, NLEV, NSTEPS = 13, 11, 3, 3
TIME_AXIS = {"OBRIDGE_DT": "1", "OBRIDGE_NIT000": "1"}  # exchange_ocean.F90 does not call obr_def_time: t = step


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    try:
        oasis = find_oasis_fortran()
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT not available: {err}")
    return build_programs(oasis, BUILD, tmp_path_factory.mktemp("oasis_standins"))


def _run(programs, tmp_path, ocean_argv, n_ocean, n_worker, namcouple, timeout=120):
    (tmp_path / "namcouple").write_text(namcouple)
    worker = [str(programs["worker_standin"]), *map(str, (NX, NY, NLEV, n_worker, 1, NSTEPS))]
    return run_mpmd([(n_ocean, ocean_argv), (n_worker, worker)], cwd=tmp_path, env=TIME_AXIS, timeout=timeout)


def _assert_worker_exact(out: str, n_worker: int) -> None:
    for r in range(n_worker):
        assert f"worker stand-in rank {r}: receptions {2 * NSTEPS} of {2 * NSTEPS}, wrong values 0" in out, out


@pytest.mark.parametrize("n_ocean,n_worker", [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_exchange_bit_exact(programs, tmp_path, n_ocean, n_worker):
    ocean = [str(programs["ocean"]), *map(str, (NX, NY, NLEV, 1, n_ocean, NSTEPS))]
    run = _run(programs, tmp_path, ocean, n_ocean, n_worker, exchange_namcouple(NX, NY, NSTEPS))
    assert run.returncode == 0, run.stdout
    for r in range(n_ocean):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout, run.stdout
    _assert_worker_exact(run.stdout, n_worker)


def test_field_missing_from_namcouple_is_named(programs, tmp_path):
    ocean = [str(programs["ocean"]), *map(str, (NX, NY, NLEV, 1, 1, NSTEPS))]
    run = _run(programs, tmp_path, ocean, 1, 1, exchange_namcouple(NX, NY, NSTEPS, missing=("b3",)), timeout=60)
    assert run.returncode != 0
    assert "oceanbridge ABORT (component 'ocean', world rank 0)" in run.stdout, run.stdout
    assert "field 'b3': its OASIS name 'OCEAN_B3' is not in the namcouple" in run.stdout, run.stdout


def test_host_that_owns_oasis(programs, tmp_path):
    """obr_init_from_oasis: the host calls oasis_init_comp, oasis_enddef and oasis_terminate itself.
    Had obr_enddef called oasis_enddef too, the host's call would abort ('enddef called already')."""
    host = [str(programs["host_standin"]), *map(str, (NX, NY, NLEV, NSTEPS))]
    run = _run(programs, tmp_path, host, 2, 1, exchange_namcouple(NX, NY, NSTEPS))
    assert run.returncode == 0, run.stdout
    for r in range(2):
        assert f"host stand-in rank {r}: receptions {2 * NSTEPS} of {2 * NSTEPS}, wrong values 0" in run.stdout
    _assert_worker_exact(run.stdout, 1)


def test_skipped_coupling_time_is_named(programs, tmp_path):
    """OASIS aborts when a field misses a coupling time (here the gets of t = 0); the bridge stops first
    and says which field, which time, and the rule."""
    host = [str(programs["host_standin"]), *map(str, (NX, NY, NLEV, NSTEPS, 1))]
    run = _run(programs, tmp_path, host, 1, 1, exchange_namcouple(NX, NY, NSTEPS), timeout=60)
    assert run.returncode != 0
    assert ("field 'c2' (OASIS 'OCEAN_C2', period 1 s) missed a coupling time before t = 1 s, where field 'a2' "
            "is exchanged at step 1") in run.stdout, run.stdout
    assert "OASIS needs every field put/got at every coupling time from t = 0" in run.stdout


@pytest.mark.parametrize("n_worker", [1, 2])
def test_removed_land_subdomains_couple_on_oasis(programs, tmp_path, n_worker):
    """The ocean (2 x 2) removes subdomain 3 and declares the gaps, which on OASIS means the global size passed
    to oasis_def_partition (ig_size): OASIS couples it; the worker stand-in receives the analytic values bit for
    bit on every point an ocean rank owns, and reports what OASIS gives where none does; the ocean's own gets
    are bit-exact (every point of its boxes is the worker's)."""
    ocean = [str(programs["ocean"]), *map(str, (NX, NY, NLEV, 2, 2, NSTEPS)), "drop=3"]
    worker = [str(programs["worker_standin"]), *map(str, (NX, NY, NLEV, n_worker, 1, NSTEPS, 2, 2, 3))]
    (tmp_path / "namcouple").write_text(exchange_namcouple(NX, NY, NSTEPS))
    run = run_mpmd([(3, ocean), (n_worker, worker)], cwd=tmp_path, env=TIME_AXIS, timeout=120)
    assert run.returncode == 0, run.stdout
    for r in range(3):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout, run.stdout
    _assert_worker_exact(run.stdout, n_worker)
    gaps = re.findall(r"points no ocean rank owns (\d+), values there other than 0: (\d+)", run.stdout)
    assert sum(int(n) for n, _ in gaps) == 6 * 5  # the removed subdomain: i = 7..12, j = 6..10
    assert all(int(bad) == 0 for _, bad in gaps), run.stdout  # OASIS gives 0 there, as the MPI backend's GAP_FILL


def test_the_gap_check_fails_when_it_expects_other_land(programs, tmp_path):
    """The same job with the stand-in told subdomain 0 was removed: it finds analytic values where it expects 0
    and 0 where it expects analytic values (so the check above can fail)."""
    ocean = [str(programs["ocean"]), *map(str, (NX, NY, NLEV, 2, 2, NSTEPS)), "drop=3"]
    worker = [str(programs["worker_standin"]), *map(str, (NX, NY, NLEV, 1, 1, NSTEPS, 2, 2, 0))]
    (tmp_path / "namcouple").write_text(exchange_namcouple(NX, NY, NSTEPS))
    run = run_mpmd([(3, ocean), (1, worker)], cwd=tmp_path, env=TIME_AXIS, timeout=120)
    bad = re.search(r"wrong values (\d+)", run.stdout)
    nonzero = re.search(r"values there other than 0: (\d+)", run.stdout)
    assert bad and int(bad.group(1)) > 0 and nonzero and int(nonzero.group(1)) > 0, run.stdout
