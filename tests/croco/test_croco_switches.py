"""Bad &namobridge values and a param.h/mpirun mismatch stop CROCO with a message naming them.

The adapter's lifecycle (croco_patches/obr_croco_nml.F90 + obr_croco_cpl.F90) is
compiled against the bridge library with a small driver that calls it as
CROCO's main.F does, so these run without CROCO.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mpmd_jobs import run_mpmd

from deploy.install import croco

HERE = Path(__file__).resolve().parent
GOOD = {"ln_obridge": ".false.", "nn_obr_freq": "2", "cn_obr_send": "'sst', 'ssh'", "cn_obr_emu_mode": "'replace'"}


@pytest.fixture(scope="module")
def driver(fortran_build: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("croco_driver")
    srcs = [croco.PATCH_DIR / "obr_croco_nml.F90", croco.PATCH_DIR / "obr_croco_cpl.F90", HERE / "obr_croco_driver.F90"]
    exe = out / "obr_croco_driver"
    subprocess.run(["mpif90", "-O1", "-ffree-line-length-none", f"-I{fortran_build / 'include'}", f"-J{out}",
                    *map(str, srcs), "-o", str(exe), f"-L{fortran_build / 'lib'}", "-lobridge"], check=True, cwd=out)
    return exe


def run(driver: Path, folder: Path, values: dict[str, str], np_xi: int = 1, np_eta: int = 1, ranks: int = 1,
        nnodes: int | None = None):
    body = "\n".join(f"   {k} = {v}" for k, v in values.items())
    (folder / "namelist_obridge").write_text(f"&namobridge\n{body}\n/\n")
    nodes = [] if nnodes is None else [str(nnodes)]
    return run_mpmd([(ranks, [str(driver), str(np_xi), str(np_eta), *nodes])], cwd=folder, timeout=60)


@pytest.mark.mpi
def test_good_switches_start(driver, tmp_path):
    res = run(driver, tmp_path, GOOD)
    assert res.returncode == 0 and "obr_croco_driver: started" in res.stdout, res.stdout


@pytest.mark.mpi
@pytest.mark.parametrize("switch, value, message", [
    ("cn_obr_emu_mode", "'replce'", "cn_obr_emu_mode = 'replce' is neither 'replace' nor 'increment'"),
    ("nn_obr_freq", "0", "nn_obr_freq must be >= 1"),
    ("rn_obr_timeout", "-1.", "rn_obr_timeout must be > 0"),
    ("cn_obr_send", "'sst', 'vorticity'", "cn_obr_send(2) = 'vorticity' is not a CROCO field"),
    ("cn_obr_send", "'ssh', 'ssh'", "cn_obr_send lists 'ssh' twice"),
    ("ln_obr_emulatr", ".true.", "unknown switch"),
    ("nn_obr_emu_freq", "'often'", "namelist_obridge"),
])
def test_bad_switch_stops_naming_it(driver, tmp_path, switch, value, message):
    res = run(driver, tmp_path, {**GOOD, switch: value})
    assert res.returncode != 0
    assert "OBRIDGE ERROR" in res.stdout and message in res.stdout, res.stdout
    assert "obr_croco_driver: started" not in res.stdout


@pytest.mark.mpi
def test_missing_namelist_is_named(driver, tmp_path):
    res = run_mpmd([(1, [str(driver), "1", "1"])], cwd=tmp_path, timeout=60)
    assert res.returncode != 0 and "namelist_obridge not found" in res.stdout, res.stdout


@pytest.mark.mpi
def test_decomposition_mismatch_names_both_numbers(driver, tmp_path):
    res = run(driver, tmp_path, GOOD, np_xi=2, np_eta=1, ranks=1)
    assert res.returncode != 0
    assert "NP_XI x NP_ETA = 2 x 1 = 2 CROCO ranks, but mpirun started 1 CROCO ranks" in res.stdout, res.stdout


@pytest.mark.mpi
def test_mpi_noland_runs_on_nnodes_ranks_and_names_a_wrong_count(driver, tmp_path):
    """CROCO's MPI_NOLAND removes land-only subdomains: NNODES (param.h) < NP_XI x NP_ETA ranks start, and the
    adapter declares the gaps; any other count stops naming NNODES."""
    assert run(driver, tmp_path, GOOD, np_xi=2, np_eta=2, ranks=3, nnodes=3).returncode == 0
    res = run(driver, tmp_path, GOOD, np_xi=2, np_eta=2, ranks=2, nnodes=3)
    assert res.returncode != 0
    assert ("param.h NNODES = 3 ocean subdomains of NP_XI x NP_ETA = 2 x 2 (MPI_NOLAND), but mpirun started 2 CROCO "
            "ranks (-np)") in res.stdout, res.stdout
