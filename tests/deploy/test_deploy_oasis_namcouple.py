"""The namcouple preprod writes, read by a real OASIS3-MCT: 2 members x 2 ranks + 1 worker rank.

Fortran stand-ins (tests/deploy/oasis_standins) play the ocean members and
the worker, so this needs only an OASIS3-MCT build (Fortran libraries and
modules under $OASIS_DIR), not pyoasis.  It checks that OASIS accepts the
file, matches every symbolic name, exchanges at the configured periods and
delivers every value exactly.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bridge.config.config import load_config
from bridge.mpirun import mpirun_prefix
from deploy.oasis_fortran import find_oasis_fortran
from deploy.preprod import preprod

pytestmark = pytest.mark.oasis
HERE = Path(__file__).resolve().parent

CONFIG = """\
[run]
backend = "oasis"
run_dir = "run"
dt = 100
steps = 12
[ocean]
model = "gyre"
executable = "ocean.exe"
ranks = 2
members = 2
nx = 8
ny = 6
[worker]
modes = ["train", "emulate"]
[[fields]]
name = "ssh"
direction = "ocean_to_worker"
freq = 2
[[fields]]
name = "u"
direction = "ocean_to_worker"
nlev = 3
freq = 2
[[fields]]
name = "ssh_emu"
direction = "worker_to_ocean"
freq = 4
[[fields]]
name = "u_emu"
direction = "worker_to_ocean"
nlev = 3
freq = 4
"""


def _compile(tmp: Path) -> None:
    try:
        oasis = find_oasis_fortran()
    except ValueError as err:
        pytest.skip(f"OASIS3-MCT not available: {err}")
    flags = ["mpif90", "-fallow-argument-mismatch", *oasis.compile_flags]
    src = HERE / "oasis_standins"
    subprocess.run([*flags, "-c", str(src / "standin_common.F90")], cwd=tmp, check=True)
    for name in ("ocean", "worker"):
        subprocess.run([*flags, str(src / f"standin_{name}.F90"), "standin_common.o", *oasis.link_flags,
                        "-o", f"{name}.exe"], cwd=tmp, check=True)


def test_oasis_reads_the_written_namcouple(tmp_path):
    _compile(tmp_path)
    (tmp_path / "cfg.toml").write_text(CONFIG)
    cfg = load_config(tmp_path / "cfg.toml")
    preprod(cfg)
    members = [(cfg.member_dir(k), comp, k) for k, comp in enumerate(cfg.components, start=1)]
    cmd = mpirun_prefix(5)
    for wdir, comp, k in members:
        cmd += ["-np", "2", "-wdir", str(wdir), str(tmp_path / "ocean.exe"), comp, str(k), ":"]
    cmd += ["-np", "1", "-wdir", str(cfg.run.run_dir), str(tmp_path / "worker.exe")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    # 2 members x 2 fields x 6 puts (every 2 of 12 steps), every value exact
    assert "worker receptions: 24 wrong values: 0" in out, out
    for comp in cfg.components:
        assert out.count(f"{comp} rank ") == 2 and f"{comp} rank 0 bad emu receptions: 0" in out, out
        emu_times = sorted(line.split("t=")[1].split()[0] for line in out.splitlines()
                           if line.startswith(f"{comp} SSH_EMU get"))
        assert emu_times == ["0", "400", "800"], out  # every 4 steps of 100 s
