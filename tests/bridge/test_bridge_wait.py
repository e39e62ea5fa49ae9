"""Wait modes ($OBRIDGE_WAIT): exchanges stay bit-exact whether waits spin or yield,
and 'auto' spins only when the job's processes fit the node's cores."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from mpmd_jobs import PYTHON, REPO, run_mpmd
from test_bridge_exchange import NLEV, NSTEPS, NX, NY, exchange

PROBE = ("import sys; from mpi4py import MPI; from bridge.transport import wait; "  # one write: ranks may interleave
         "sys.stdout.write(f'rank {MPI.COMM_WORLD.Get_rank()} spin {wait.configure(MPI.COMM_WORLD)}\\n')")


def received(stdout: str) -> int:
    return sum(int(n) for n in re.findall(r"worker rank \d+: \d+ steps, (\d+) values received", stdout))


@pytest.mark.mpi
@pytest.mark.parametrize("wait", ["spin", "yield"])
@pytest.mark.parametrize("n_ocean,n_worker", [(1, 1), (3, 2)])  # the other layouts run under auto
def test_bit_exact_under_each_wait_mode(fortran_build, wait, n_ocean, n_worker):
    run = exchange(fortran_build, n_ocean, n_worker, env={"OBRIDGE_WAIT": wait})
    assert run.returncode == 0, run.stdout
    for r in range(n_ocean):
        assert f"ocean rank {r}: {NSTEPS} steps exchanged bit-exactly" in run.stdout
    assert received(run.stdout) == NSTEPS * NX * NY * (1 + NLEV)


@pytest.mark.mpi
@pytest.mark.parametrize("wait", ["spin", "yield"])
@pytest.mark.parametrize("put_mode", ["copy", "direct"])
def test_bit_exact_large_levels_under_each_wait_mode(fortran_build, wait, put_mode):
    run = exchange(fortran_build, 2, 2, env={"OBRIDGE_WAIT": wait, "OBRIDGE_PUT_MODE": put_mode}, grid=(200, 100, 3))
    assert run.returncode == 0, run.stdout
    assert received(run.stdout) == NSTEPS * 200 * 100 * (1 + 3)


def probe(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "OBRIDGE_WAIT"}
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO,
                          env={**base, "PYTHONPATH": str(REPO), **env}, timeout=60)


@pytest.mark.parametrize("mode,spins", [("spin", True), ("yield", False), ("auto", True), ("AUTO", True)])
def test_wait_mode_of_a_single_process(mode, spins):
    run = probe(OBRIDGE_WAIT=mode)
    assert run.returncode == 0, run.stderr
    assert f"rank 0 spin {spins}" in run.stdout


@pytest.mark.parametrize("value", ["fast", "", "spinning"])
def test_bad_wait_mode_is_named(value):
    run = probe(OBRIDGE_WAIT=value)
    assert run.returncode != 0
    assert f"OBRIDGE_WAIT={value!r}: the wait mode must be one of auto, spin, yield" in run.stderr


@pytest.mark.mpi
def test_auto_yields_when_the_node_is_oversubscribed():
    cores = len(os.sched_getaffinity(0))
    if cores > 7:
        pytest.skip(f"{cores} cores: oversubscribing them takes {cores + 1} processes")
    fits = run_mpmd([(cores, [PYTHON, "-c", PROBE])], timeout=120)
    over = run_mpmd([(cores + 1, [PYTHON, "-c", PROBE])], timeout=120)
    assert fits.stdout.count("spin True") == cores, fits.stdout
    assert over.stdout.count("spin False") == cores + 1, over.stdout
    forced = run_mpmd([(cores + 1, [PYTHON, "-c", PROBE])], env={"OBRIDGE_WAIT": "spin"}, timeout=120)
    assert forced.stdout.count("spin True") == cores + 1, forced.stdout


@pytest.mark.parametrize("env,spins_after", [("auto", False), ("spin", True)])
def test_a_busy_thread_stops_auto_spinning(monkeypatch, env, spins_after):
    """The worker's training thread needs the core a spinning receiver would take: under auto the
    process yields once told; an explicit OBRIDGE_WAIT=spin is obeyed."""
    from bridge.transport import wait
    monkeypatch.setenv("OBRIDGE_WAIT", env)
    monkeypatch.setattr(wait, "_spin", True)
    wait.yield_to_busy_thread("a test thread")
    assert wait.spinning() is spins_after
