"""DINO (NEMO 5.0, MLF time stepping, its own MY_SRC/nemogcm.F90) with the oceanbridge patches.

Needs NEMO_DIR with cfgs/DINO_OCE built after 'oceanbridge install nemo' (deploy/nemo/README.md, DINO).
The state sent after stp_ctl (MLF: time level Nnn) is compared with NEMO's own restart of the same step.
"""
from __future__ import annotations

import os

import nemo_run as nr
import numpy as np
import pytest

NEMO_DIR = os.environ.get("NEMO_DIR")
CFG = "DINO_OCE"
pytestmark = [pytest.mark.nemo, pytest.mark.mpi,
              pytest.mark.skipif(bool(nr.built(NEMO_DIR, CFG)), reason=nr.built(NEMO_DIR, CFG) or "built")]
NAMRUN = {"ln_rstart": False}        # DINO's reference run starts from a restart file we do not have


def test_dino_received_state_equals_restart(tmp_path):
    probe = nr.prepare(NEMO_DIR, tmp_path / "probe", itend=1, namrun=NAMRUN, cfg_name=CFG)
    res = nr.run_alone(probe, 1, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]
    nlev, ny, nx = nr.restart_fields(probe, 1, names=("tn",))["tn"].shape
    obr = dict(ln_obridge=True, cn_obr_send=["sst", "ssh", "tem3d", "mask"], nn_obr_freq=2, rn_obr_timeout=120.0)
    folder = nr.prepare(NEMO_DIR, tmp_path / "run", itend=4, obridge=obr, namrun=NAMRUN, cfg_name=CFG)
    peer = nr.receiver_argv("record", "--nx", str(nx), "--ny", str(ny), "--nlev", str(nlev))
    res = nr.launch(nr.coupled_cmd(2, peer), folder, timeout=400)
    assert res.returncode == 0, res.stdout[-4000:]
    got = np.load(folder / "worker.npz")
    rst = nr.restart_fields(folder, 4, names=("tn", "sshn"))
    assert np.array_equal(got["tem3d@4"], rst["tn"])
    assert np.array_equal(got["sst@4"], rst["tn"][:1])
    assert np.array_equal(got["ssh@4"], rst["sshn"])
    assert not np.array_equal(got["tem3d@2"], got["tem3d@4"])
