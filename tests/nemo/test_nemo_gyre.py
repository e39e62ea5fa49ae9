"""Patched NEMO 5.0 GYRE_OCE coupled to Python (needs NEMO_DIR: a tree built after 'oceanbridge install nemo').

What the Python side receives is compared with NEMO's own restart file of the same step (the state at Nbb
after stp_ctl, which is what the RK3 hook sends), bit for bit, on 1 and 2 NEMO ranks.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nemo_run as nr
import numpy as np
import pytest

NEMO_DIR = os.environ.get("NEMO_DIR")
pytestmark = [pytest.mark.nemo, pytest.mark.mpi,
              pytest.mark.skipif(bool(nr.built(NEMO_DIR)), reason=nr.built(NEMO_DIR) or "built")]

SEND = ["sst", "sss", "ssh", "u", "v", "tem3d", "mask"]
SURFACE3 = ("sst", "sss", "ssh")
# wire name -> (restart variable, level slice)
RESTART = {"sst": ("tn", slice(0, 1)), "sss": ("sn", slice(0, 1)), "ssh": ("sshn", slice(None)),
           "u": ("un", slice(None)), "v": ("vn", slice(None)), "tem3d": ("tn", slice(None))}


def coupled(folder, nemo_ranks: int, mode: str, *args: str, py_ranks: int = 1, timeout: float = 300,
            keep_going: bool = False) -> subprocess.CompletedProcess:
    cmd = nr.coupled_cmd(nemo_ranks, nr.receiver_argv(mode, *args), py_ranks, keep_going)
    try:
        return nr.launch(cmd, folder, timeout)
    except TimeoutError as exc:
        pytest.fail(f"coupled NEMO job hung: {exc}")


@pytest.mark.parametrize("nemo_ranks, py_ranks", [(1, 1), (2, 1), (2, 3)])
def test_received_state_equals_nemo_restart(tmp_path, nemo_ranks, py_ranks):
    obr = dict(ln_obridge=True, cn_obr_send=SEND, nn_obr_freq=5, rn_obr_timeout=60.0)
    folder = nr.prepare(NEMO_DIR, tmp_path / "run", itend=10, obridge=obr)
    res = coupled(folder, nemo_ranks, "record", py_ranks=py_ranks)
    assert res.returncode == 0, res.stdout[-4000:]
    got = np.load(folder / "worker.npz")
    assert sorted(got) == sorted([f"{n}@{k}" for n in SEND if n != "mask" for k in (0, 5, 10)] + ["mask@0"])
    rst = nr.restart_fields(folder, 10)
    for name, (var, lev) in RESTART.items():
        assert np.array_equal(got[f"{name}@10"], rst[var][lev]), f"{name} differs from restart '{var}'"
    assert not np.array_equal(got["sst@5"], got["sst@10"])             # the state moved between sends
    assert set(np.unique(got["mask@0"])) == {0.0, 1.0}
    assert np.all(got["tem3d@10"][got["mask@0"] == 0] == 0)            # land is NEMO's land


def test_emulator_replaces_ocean_points(tmp_path):
    """ln_obr_emulator (replace) at step 5 on 2 NEMO ranks: NEMO's own min/max over ocean points right after
    the apply (printed by obn_step) are exactly those of what the worker sent; one step later the 3-D
    temperature is still near the emulated one, far from NEMO's own state before it."""
    obr = dict(ln_obridge=True, cn_obr_send=["ssh", "tem3d", "mask"], nn_obr_freq=1, rn_obr_timeout=60.0,
               ln_obr_emulator=True, nn_obr_emu_freq=5, cn_obr_emu_mode="replace")
    folder = nr.prepare(NEMO_DIR, tmp_path / "emu", itend=6, obridge=obr)
    res = coupled(folder, 2, "emulate")
    assert res.returncode == 0, res.stdout[-4000:]
    got = np.load(folder / "worker.npz")
    mask = got["mask@0"] == 1
    applied = nr.obn_applied(folder)
    assert sorted(applied) == [5], "expected one 'obn_step: applied' block, for step 5, in ocean.output"
    for name, ocean in (("ssh", mask[:1]), ("tem3d", mask)):
        sent = got[f"{name}_emu@5"]
        assert applied[5][name] == (sent[ocean].min(), sent[ocean].max()), name
    emu, before, after = got["tem3d_emu@5"][mask], got["tem3d@4"][mask], got["tem3d@6"][mask]
    assert np.abs(after - emu).mean() < 0.1 * np.abs(before - emu).mean()
    assert np.all(got["tem3d@6"][~mask] == 0)                            # land untouched


@pytest.mark.parametrize("required", [False, True])
def test_worker_gone_continue_or_stop(tmp_path, required):
    """The worker leaves (quit) or goes deaf (silent) after step 3: NEMO goes on uncoupled or stops the whole
    job, per ln_obr_required; it never hangs."""
    obr = dict(ln_obridge=True, cn_obr_send=["sst"], nn_obr_freq=1, rn_obr_timeout=5.0, ln_obr_emulator=True,
               ln_obr_required=required)
    folder = nr.prepare(NEMO_DIR, tmp_path / "dead", itend=8, obridge=obr)
    res = coupled(folder, 1, "silent" if required else "quit", "3", timeout=240, keep_going=not required)
    log = (folder / "ocean.output").read_text()
    assert re.search(r"emulator get failed at step [34]\b", res.stdout + log), res.stdout[-3000:]
    if required:
        assert res.returncode != 0 and "stopping because ln_obr_required = .true." in res.stdout
    else:
        assert "continuing UNCOUPLED" in log and "obn_finalize: 8 steps" in log, res.stdout[-3000:]


def test_invalid_switch_stops_naming_it(tmp_path):
    obr = dict(ln_obridge=False, cn_obr_send=["sst", "salinity"], cn_obr_emu_mode="swap")
    folder = nr.prepare(NEMO_DIR, tmp_path / "bad", itend=2, obridge=obr)
    res = nr.run_alone(folder, 1, timeout=240)
    log = (folder / "ocean.output").read_text()
    assert "&namobridge: invalid cn_obr_emu_mode: 'swap' is not 'replace' or 'increment'" in log
    assert "&namobridge: invalid cn_obr_send: 'salinity' is not a NEMO field" in log
    assert "obn_finalize: 2 steps" not in log    # NEMO stopped before its time loop




def test_oceanbridge_worker_trains_on_nemo(tmp_path):
    """preprod + launch of a deploy config: 2 NEMO ranks stream SST/SSS/SSH to 'oceanbridge worker' (train)."""
    folder = nr.prepare(NEMO_DIR, tmp_path / "train", itend=60)
    fields = "".join(f'[[fields]]\nname = "{n}"\ndirection = "ocean_to_worker"\nfreq = 1\n\n' for n in SURFACE3)
    (folder / "train.toml").write_text(nr.TRAIN_TOML + "\n" + fields)
    cli = [sys.executable, "-m", "deploy.cli"]
    pre = subprocess.run(cli + ["preprod", "train.toml"], cwd=folder, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(nr.REPO)})
    assert pre.returncode == 0, pre.stderr
    res = nr.launch(cli + ["launch", "train.toml"], folder, timeout=400)
    assert res.returncode == 0, res.stdout[-4000:]
    summary = json.loads((folder / "worker_summary.json").read_text())
    assert summary["counters"]["received"] == 61 and summary["counters"]["pairs"] == 60
    assert summary["train_steps"] >= 60
    assert summary["loss_last"] < 0.85 * summary["loss_first"], summary


def test_spinup_replaces_initial_state(tmp_path):
    """ln_obr_spinup: the state NEMO sends at step nit000-1 is the one the worker generated, on ocean points."""
    obr = dict(ln_obridge=True, cn_obr_send=["sss", "tem3d", "mask"], nn_obr_freq=1, rn_obr_timeout=60.0,
               ln_obr_spinup=True)
    folder = nr.prepare(NEMO_DIR, tmp_path / "spin", itend=2, obridge=obr)
    res = coupled(folder, 2, "spinup")
    assert res.returncode == 0, res.stdout[-4000:]
    got = np.load(folder / "worker.npz")
    mask = got["mask@0"] == 1
    assert np.array_equal(got["tem3d@0"][mask], got["tem3d_init@0"][mask])
    assert np.array_equal(got["sss@0"][mask[:1]], got["sss_init@0"][mask[:1]])
    assert np.all(got["tem3d@0"][~mask] == 0)
    assert "initial state replaced by the received one at step 0" in (folder / "ocean.output").read_text()


def test_oceanbridge_worker_emulates_into_nemo(tmp_path):
    """train + emulate: at every emulator step NEMO's own min/max over its ocean points right after the apply
    equal those of the state 'oceanbridge worker' sent (its emulated.nc)."""
    folder = nr.prepare(NEMO_DIR, tmp_path / "emu", itend=20)
    (folder / "emu.toml").write_text(nr.emulator_toml())
    cli = [sys.executable, "-m", "deploy.cli"]
    env = {**os.environ, "PYTHONPATH": str(nr.REPO)}
    assert subprocess.run(cli + ["preprod", "emu.toml"], cwd=folder, env=env).returncode == 0
    res = nr.launch(cli + ["launch", "emu.toml"], folder, timeout=400)
    assert res.returncode == 0, res.stdout[-4000:]
    nr.check_emulator_applied(folder, [5, 10, 15, 20])
