"""NEMO 5.0 GYRE with key_oasis3 + key_obridge_oasis: the bridge joins NEMO's own OASIS component ('oceanx')
and defines its fields before NEMO's oasis_enddef. The peer is the OASIS sink stand-in of tests/oasis
(pyoasis 5 is not available here). Needs OASIS_DIR (OASIS3-MCT BLD) and NEMO_DIR with cfgs/GYRE_OAS built
after 'oceanbridge install nemo --backend oasis' (key_oasis3 in cpp_GYRE_OAS.fcm, OASIS in the arch file).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nemo_run as nr
import numpy as np
import pytest

NEMO_DIR, OASIS_DIR = os.environ.get("NEMO_DIR"), os.environ.get("OASIS_DIR")
CFG, NT, DT = "GYRE_OAS", 6, 14400
WHY = "OASIS_DIR is not set" if not OASIS_DIR else nr.built(NEMO_DIR, CFG)
pytestmark = [pytest.mark.nemo, pytest.mark.oasis, pytest.mark.mpi, pytest.mark.skipif(bool(WHY), reason=WHY or "ok")]


def no_atmosphere(folder: Path) -> None:
    """NEMO's own OASIS coupling off: every active namsbc_cpl entry of namelist_ref set to 'none'."""
    import re
    ref = (folder / "namelist_ref").read_text()
    block = re.search(r"(?ms)^&namsbc_cpl\b.*?^/", ref).group(0)
    names = [n for n, v in re.findall(r"(?m)^\s*(sn_\w+)\s*=\s*'([^']*)'", block) if v != "none"]
    with open(folder / "namelist_cfg", "a") as f:
        f.write("&namsbc_cpl\n" + "".join(f"   {n} = 'none'\n" for n in names) + "/\n")


def test_oasis_backend_sends_nemo_state(tmp_path):
    sys.path.insert(0, str(nr.REPO / "tests" / "oasis"))
    from oasis_jobs import namcouple_text

    from bridge.transport.naming import oasis_name
    oasis = Path(OASIS_DIR)
    sink = tmp_path / "sink_worker"
    subprocess.run(["mpif90", "-O1", f"-I{oasis}/build/lib/psmile.MPI1", f"-I{oasis}/build/lib/mct",
                    str(nr.REPO / "tests" / "oasis" / "sink_worker.F90"), "-o", str(sink), f"-L{oasis}/lib",
                    "-lpsmile.MPI1", "-lmct", "-lmpeu", "-lscrip", "-lnetcdff", "-lnetcdf"], check=True)
    obr = dict(ln_obridge=True, cn_obr_send=["sst", "ssh"], nn_obr_freq=1)
    folder = nr.prepare(NEMO_DIR, tmp_path / "run", itend=NT, obridge=obr, cfg_name=CFG)
    no_atmosphere(folder)
    pairs = [(oasis_name("oceanx", n), oasis_name("worker", n, peer="oceanx"), n) for n in ("sst", "ssh")]
    (folder / "namcouple").write_text(namcouple_text(pairs, 32, 22, runtime=(NT + 1) * DT, period=DT))
    peer = [str(sink), "32", "22", str(NT), str(DT)] + [dst for _, dst, _ in pairs]
    res = nr.launch(nr.coupled_cmd(1, peer), folder, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]
    assert f"WORKER_OCEANX_SST receptions {NT + 1}" in res.stdout
    rst = nr.restart_fields(folder, NT, names=("tn", "sshn"))
    for dst, want in (("WORKER_OCEANX_SST", rst["tn"][0]), ("WORKER_OCEANX_SSH", rst["sshn"][0])):
        got = np.fromfile(folder / f"sink_{dst}.bin", dtype="<f8").reshape(22, 32)
        assert np.array_equal(got, want), dst


def test_oceanbridge_worker_emulates_into_nemo_on_oasis(tmp_path):
    """train + emulate through OASIS: 'oceanbridge worker' (on the pyoasis stand-in of tests/oasis, over real
    OASIS3-MCT) and NEMO exchange '<name>_emu' at t = 0 too (NEMO discards it), and at every emulator step
    NEMO's own min/max over its ocean points right after the apply equal those of the state the worker sent."""
    sys.path.insert(0, str(nr.REPO / "tests" / "oasis"))
    from oasis_jobs import build_pyoasis_standin

    from bridge.config.config import load_config
    from deploy.launch import build_command
    from deploy.mpmd import job_env
    from deploy.oasis_fortran import find_oasis_fortran
    from deploy.preprod import preprod
    try:
        library = build_pyoasis_standin(find_oasis_fortran(), tmp_path / "standin")
    except ValueError as err:
        pytest.skip(f"the Python worker cannot run on this OASIS3-MCT: {err}")
    folder = nr.prepare(NEMO_DIR, tmp_path / "emu", itend=20, cfg_name=CFG)
    no_atmosphere(folder)
    (folder / "emu.toml").write_text(nr.emulator_toml("oasis", ocean_name="oceanx"))  # NEMO's own component
    cfg = load_config(folder / "emu.toml")
    preprod(cfg)
    env = {**job_env(cfg), "OBRIDGE_PYOASIS_STANDIN": str(library),
           "PYTHONPATH": os.pathsep.join([str(nr.REPO), str(nr.REPO / "tests" / "oasis" / "standin_module")])}
    res = nr.launch(build_command(cfg, "mpirun"), folder, timeout=400, env=env)
    assert res.returncode == 0, res.stdout[-4000:]
    nr.check_emulator_applied(folder, [5, 10, 15, 20])
