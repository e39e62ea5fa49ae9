"""The OASIS-only calls of the Fortran API, in the default (MPI) build: obr_def_time is accepted and
checked, obr_init_from_oasis says how to get the OASIS backend.  Needs no OASIS."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from oasis_jobs import BUILD, make_bridge

PROGRAM = """\
program api
   use obridge
   implicit none
   integer :: kinfo
   call obr_def_time(1, 600._8, kinfo)
   print '(a,i0)', 'def_time ', kinfo
   call obr_def_time(1, 0._8, kinfo)
   print '(a,i0,a)', 'def_time dt=0 ', kinfo, ' '//obr_last_error()
   call obr_init_from_oasis('oceanx', 1, 0, kinfo)
   print '(a,i0,a)', 'init_from_oasis ', kinfo, ' '//obr_last_error()
end program api
"""


def test_oasis_calls_in_the_mpi_build(tmp_path):
    if not shutil.which("mpif90"):
        pytest.skip("no mpif90")
    moddir = make_bridge(BUILD, None)
    (tmp_path / "api.f90").write_text(PROGRAM)
    subprocess.run(["mpif90", f"-I{moddir}", "api.f90", f"-L{BUILD / 'lib'}", "-lobridge", "-o", "api"],
                   cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "api")], capture_output=True, text=True, timeout=60).stdout
    assert "def_time 0\n" in out
    assert "def_time dt=0 -4 obr_def_time: time step dt must be > 0 seconds" in out
    assert ("init_from_oasis -4 obr_init_from_oasis('oceanx'): this oceanbridge was built with the MPI backend; "
            "rebuild it with -Dkey_obridge_oasis") in out, out
