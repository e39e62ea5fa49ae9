"""CROCO BASIN built with the cpp key OBRIDGE, coupled to a Python receiver (marker ``croco``).

Needs ``CROCO_DIR``: a run folder prepared by ``oceanbridge install croco`` and
built by ``jobcomp`` for BASIN with ``OUT_DOUBLE`` (croco_testlib.py). Run it
once per decomposition (e.g. a 1-rank and a 2-rank build).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mpmd_jobs import PYTHON, REPO, run_mpmd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from croco_testlib import CROCO_DIR, NLEV, NX, NY, croco_ranks, deploy_config, history, run_folder  # noqa: E402

pytestmark = [pytest.mark.croco, pytest.mark.mpi,
              pytest.mark.skipif(not CROCO_DIR, reason="CROCO_DIR is not set (a BASIN run folder built with "
                                                       "the cpp key OBRIDGE and OUT_DOUBLE, see croco_patches/README.md)")]

WORKER = str(Path(__file__).resolve().parent / "croco_worker.py")
STEPS = 12
COUPLED = {"ln_obridge": ".true.", "nn_obr_freq": "1", "cn_obr_send": "'temp', 'ssh', 'u', 'v', 'sst', 'mask'",
           "ln_obr_required": ".true.", "rn_obr_timeout": "60."}


def coupled_run(folder: Path, mode: str, switches: dict[str, str], ranks: int | None = None):
    """Run CROCO (its param.h rank count) with the receiver; returns (output, worker.npz, history)."""
    src = Path(CROCO_DIR)
    run = run_folder(src, folder, STEPS, 3, switches)
    n = ranks or croco_ranks(src)
    res = run_mpmd([(n, ["./croco", "croco.in"]), (1, [PYTHON, WORKER, mode, str(NX), str(NY), str(NLEV)])],
                   cwd=run, timeout=240)
    assert res.returncode == 0, res.stdout[-4000:]
    return res.stdout, dict(np.load(run / "worker.npz")), history(run)


def test_received_fields_equal_crocos_history(tmp_path):
    out, got, his = coupled_run(tmp_path, "record", COUPLED)
    assert "OBRIDGE: 6 field(s) sent every 1 steps" in out
    assert sorted(his) == [0, 3, 6, 9, 12]
    for kt, fields in his.items():
        for name, want in fields.items():
            assert got[f"{name}@{kt}"].shape == want.shape, name
            np.testing.assert_array_equal(got[f"{name}@{kt}"], want, err_msg=f"{name} at step {kt}")
        np.testing.assert_array_equal(got[f"sst@{kt}"][0], fields["temp"][-1])
    assert all(f"temp@{kt}" in got for kt in range(STEPS + 1))
    np.testing.assert_array_equal(got["mask@0"], np.ones((1, NY, NX)))   # BASIN has no land


def test_coupling_leaves_the_state_unchanged(tmp_path):
    """The same BASIN run, bridge off (key compiled in, ln_obridge = .false.: the other switches are ignored)
    and on, gives the same history."""
    off = run_folder(Path(CROCO_DIR), tmp_path / "off", STEPS, 3, {
        "ln_obridge": ".false.", "cn_obr_send": "'temp'", "ln_obr_spinup": ".true.", "ln_obr_emulator": ".true."})
    res = run_mpmd([(croco_ranks(Path(CROCO_DIR)), ["./croco", "croco.in"])], cwd=off, timeout=240)
    assert res.returncode == 0, res.stdout[-4000:]
    _, _, on = coupled_run(tmp_path / "on", "record", COUPLED)
    for kt, fields in history(off).items():
        for name, want in fields.items():
            np.testing.assert_array_equal(on[kt][name], want, err_msg=f"{name} at step {kt}")


@pytest.mark.parametrize("mode, shift", [("replace", 1.0), ("increment", 0.5)])
def test_emulator_changes_crocos_state(tmp_path, mode, shift):
    """temp_emu (received temp + 1, or an increment of 0.5; ssh likewise) at steps 4 and 8 shifts CROCO's
    temperature by that much each time; before step 4 the run is the reference run, bit for bit."""
    _, ref, _ = coupled_run(tmp_path / "ref", "record", COUPLED)
    emu = {**COUPLED, "cn_obr_send": "'temp', 'ssh'", "ln_obr_emulator": ".true.", "nn_obr_emu_freq": "4",
           "cn_obr_emu_mode": f"'{mode}'"}
    _, got, his = coupled_run(tmp_path / "emu", "emulate", emu)
    for kt in range(0, 5):                 # before the first emulated state is applied: the same run
        np.testing.assert_array_equal(got[f"temp@{kt}"], ref[f"temp@{kt}"])
    d5 = got["temp@5"] - ref["temp@5"]
    assert abs(d5.mean() - shift) < 0.02 and d5.min() > 0.5 * shift, (d5.mean(), d5.min())
    d9 = got["temp@9"] - ref["temp@9"]          # a second shift at step 8, on top of the first
    assert abs(d9.mean() - 2 * shift) < 0.05, d9.mean()
    np.testing.assert_array_equal(his[6]["temp"], got["temp@6"])   # CROCO's own output carries the change


def test_spinup_replaces_the_initial_state(tmp_path):
    spin = {**COUPLED, "cn_obr_send": "'temp', 'ssh'", "ln_obr_spinup": ".true."}
    _, got, his = coupled_run(tmp_path, "spinup", spin)
    for name in ("temp", "ssh"):
        np.testing.assert_array_equal(got[f"{name}@0"], got[f"{name}_init@0"])
        np.testing.assert_array_equal(his[0][name], got[f"{name}_init@0"])


def test_rank_mismatch_is_named(tmp_path):
    n = croco_ranks(Path(CROCO_DIR))
    run = run_folder(Path(CROCO_DIR), tmp_path, STEPS, 3, {"ln_obridge": ".false."})
    res = run_mpmd([(n + 1, ["./croco", "croco.in"])], cwd=run, timeout=120)
    assert res.returncode != 0
    assert f"= {n} CROCO ranks, but mpirun started {n + 1} CROCO ranks" in res.stdout, res.stdout[-3000:]


@pytest.mark.parametrize("required", [True, False])
def test_absent_worker(tmp_path, required):
    """No worker in the job: ln_obr_required stops CROCO naming the cause, else CROCO runs on uncoupled."""
    sw = {**COUPLED, "ln_obr_required": ".true." if required else ".false.", "rn_obr_timeout": "5."}
    run = run_folder(Path(CROCO_DIR), tmp_path, STEPS, 3, sw)
    res = run_mpmd([(croco_ranks(Path(CROCO_DIR)), ["./croco", "croco.in"])], cwd=run, timeout=240)
    assert "bridge: end of definitions failed" in res.stdout, res.stdout[-3000:]
    if required:
        assert res.returncode != 0 and "stopping because ln_obr_required = .true." in res.stdout
    else:
        assert res.returncode == 0 and "continuing UNCOUPLED" in res.stdout and "MAIN: DONE" in res.stdout


def test_oceanbridge_worker_trains_on_crocos_states(tmp_path):
    """`oceanbridge preprod` + `launch` with the real worker (train mode): every state arrives and trains."""
    steps, freq = 24, 3
    src = Path(CROCO_DIR)
    run = run_folder(src, tmp_path, steps, 12, {"ln_obridge": ".false."})
    cfg = deploy_config(run, steps, freq, croco_ranks(src))
    env = {"PYTHONPATH": str(REPO)}
    for verb in ("preprod", "launch"):
        res = subprocess.run([PYTHON, "-m", "deploy.cli", verb, str(cfg)], cwd=run, capture_output=True, text=True,
                             timeout=600, env={**os.environ, **env})
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "OBRIDGE: 3 field(s) sent every 3 steps" in res.stdout + res.stderr
    summary = json.loads((run / "worker_summary.json").read_text())
    assert summary["counters"]["received"] == steps // freq + 1
    assert summary["counters"]["pairs"] == steps // freq and summary["counters"]["rejected"] == 0
