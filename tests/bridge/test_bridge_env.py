"""Environment settings ($OBRIDGE_*): a bad value is named, with the variable and the
value, before anything starts, on the Python and the Fortran side; good values are taken."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mpmd_jobs import REPO, run_mpmd

OBRIDGE = [k for k in os.environ if k.startswith("OBRIDGE_")]


def clean_env(**env) -> dict:
    return {**{k: v for k, v in os.environ.items() if k not in OBRIDGE}, **env}


def import_transport(**env) -> subprocess.CompletedProcess:
    code = "import bridge.transport.mpi as m; print('ring', m.RING, 'timeout', m.DEFAULT_TIMEOUT, 'put mode', m.DEFAULT_PUT_MODE)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=clean_env(**env))


@pytest.mark.parametrize("value", ["0", "four", "-2", "2.5"])
def test_bad_ring_depth_is_named(value):
    run = import_transport(OBRIDGE_RING=value)
    assert run.returncode != 0
    assert f"OBRIDGE_RING={value!r}: the put ring depth must be a whole number >= 1" in run.stderr


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", ""])
def test_bad_timeout_is_named(value):
    run = import_transport(OBRIDGE_TIMEOUT=value)
    assert run.returncode != 0
    assert f"OBRIDGE_TIMEOUT={value!r}: must be a number of seconds > 0" in run.stderr


def test_ring_depth_and_timeout_default_and_override():
    assert "ring 4 timeout 300.0" in import_transport().stdout
    assert "ring 7 timeout 2.5" in import_transport(OBRIDGE_RING="7", OBRIDGE_TIMEOUT="2.5").stdout


@pytest.mark.parametrize("value", ["fast", "", "direct copy"])
def test_bad_put_mode_is_named(value):
    run = import_transport(OBRIDGE_PUT_MODE=value)
    assert run.returncode != 0
    assert f"OBRIDGE_PUT_MODE={value!r}: the put mode must be one of copy, direct" in run.stderr


def test_put_mode_default_and_override():
    assert "put mode copy" in import_transport().stdout
    assert "put mode direct" in import_transport(OBRIDGE_PUT_MODE=" Direct").stdout


FORTRAN_BAD = [  # (variable, value, what the message says it must be)
    ("OBRIDGE_RING", "four", "must be a whole number >= 1 (the put ring depth)"),
    ("OBRIDGE_RING", "0", "must be a whole number >= 1 (the put ring depth)"),
    ("OBRIDGE_RING", "2.5", "must be a whole number >= 1 (the put ring depth)"),
    ("OBRIDGE_RING", "4 5", "must be a whole number >= 1 (the put ring depth)"),
    ("OBRIDGE_TIMEOUT", "-3", "must be a number of seconds > 0"),
    ("OBRIDGE_TIMEOUT", "soon", "must be a number of seconds > 0"),
    ("OBRIDGE_TIMEOUT", "1,5", "must be a number of seconds > 0"),
    ("OBRIDGE_DT", "0", "must be a time step in seconds > 0"),
    ("OBRIDGE_NIT000", "1.5", "must be a whole number (the first step index)"),
    ("OBRIDGE_PUT_MODE", "fast", "must be one of copy direct"),
    ("OBRIDGE_NAN_POLICY", "ignore", "must be one of off warn error"),
    ("OBRIDGE_WAIT", "busy", "must be one of auto spin yield"),
]


def fortran_ocean(build) -> list[str]:
    return [str(build / "bin" / "obr_exchange_ocean"), "13", "11", "4", "1", "1", "1"]


@pytest.mark.parametrize("name,value,want", FORTRAN_BAD)
def test_fortran_bad_setting_is_named(fortran_build, name, value, want):
    """obr_init stops before MPI starts, naming the variable and its value."""
    run = subprocess.run(fortran_ocean(fortran_build), capture_output=True, text=True, env=clean_env(**{name: value}),
                         timeout=60)
    assert run.returncode != 0
    assert f"oceanbridge ABORT (obr_init): {name}='{value}': {want}" in run.stderr, run.stderr


@pytest.mark.mpi
def test_fortran_good_settings_are_taken(fortran_build):
    """Well-formed values pass obr_init: the lone ocean gets as far as enddef, which finds no peer."""
    env = {"OBRIDGE_RING": "7", "OBRIDGE_TIMEOUT": "2.5e1", "OBRIDGE_DT": "900", "OBRIDGE_NIT000": "-3",
           "OBRIDGE_PUT_MODE": "direct", "OBRIDGE_NAN_POLICY": "warn", "OBRIDGE_WAIT": " yield"}
    run = run_mpmd([(1, fortran_ocean(fortran_build))], env=env, timeout=60)
    assert run.returncode != 0
    assert "OBRIDGE_" not in run.stdout, run.stdout
    assert "field 'a2' (out, component 'ocean'): no component receives it" in run.stdout, run.stdout


@pytest.fixture(scope="module")
def init_kinfo(fortran_build, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("init_kinfo")
    exe = out / "init_kinfo"
    subprocess.run(["mpif90", f"-I{fortran_build / 'include'}", f"-J{out}", str(Path(__file__).with_name("init_kinfo.F90")),
                    "-o", str(exe), f"-L{fortran_build / 'lib'}", "-lobridge"], check=True, cwd=out)
    return exe


def test_fortran_bad_setting_comes_back_through_kinfo(init_kinfo):
    """With a status argument obr_init returns OBR_ERR_USAGE (-4) and obr_last_error() names the variable."""
    run = subprocess.run([str(init_kinfo)], capture_output=True, text=True, env=clean_env(OBRIDGE_RING="four"),
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "kinfo -4" in run.stdout, run.stdout
    assert "error: OBRIDGE_RING='four': must be a whole number >= 1 (the put ring depth)" in run.stdout, run.stdout


@pytest.mark.parametrize("how,call", [("", "obr_init"), ("oasis", "obr_init_from_oasis")])
def test_fortran_bad_component_name_comes_back_through_kinfo(init_kinfo, how, call):
    """Both ways of joining check the name before anything starts (obridge.F90's ready_to_join)."""
    run = subprocess.run([str(init_kinfo), "sea ice", *([how] if how else [])], capture_output=True, text=True,
                         env=clean_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "kinfo -4" in run.stdout, run.stdout
    assert f"error: {call}: component name 'sea ice' must be 1..64 characters without blanks" in run.stdout, \
        run.stdout
