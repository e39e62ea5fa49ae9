"""gyre coupled to a Python worker through the bridge (MPMD): sends, emulator, spin-up, absent or dead worker."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gyre_testlib import assert_ok, gyrerun, read_nc, small_cfg

WORKER = Path(__file__).resolve().parent / "gyre_worker.py"
pytestmark = pytest.mark.mpi


def _worker(*args) -> list[str]:
    return [sys.executable, str(WORKER), *map(str, args)]


def _coupled_cfg(namobridge: dict, **blocks) -> dict:
    obr = {"ln_obridge": True, "rn_obr_timeout": 20.0}
    obr.update(namobridge)
    return small_cfg(namobridge=obr, **blocks)


def _masks(mask: np.ndarray) -> dict[str, np.ndarray]:
    """Ocean masks of each field from the T mask (ny, nx): u on east faces, v on north faces."""
    pad = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=mask.dtype)
    pad[:-1, :-1] = mask
    umask = pad[:-1, :-1] * pad[:-1, 1:]
    vmask = pad[:-1, :-1] * pad[1:, :-1]
    return {"ssh": mask == 1, "u": umask == 1, "v": vmask == 1, "temp": mask == 1, "sst": mask == 1}


def test_worker_receives_exactly_what_is_written(gyre_coupled_exe, rundir):
    cfg = _coupled_cfg({"nn_obr_freq": 2, "cn_obr_send": ["ssh", "u", "v", "sst"]},
                       namrun={"nn_itend": 12, "nn_write": 2}, namdom={"jpni": 2, "jpnj": 1})
    rd = rundir("cpl", cfg)
    res = gyrerun.run_gyre(rd, 2, worker=_worker("record"), exe=gyre_coupled_exe, timeout=120)
    assert_ok(res)
    got = np.load(rd / "worker.npz")
    nc = read_nc(rd / "gyre_fields.nc")
    assert list(nc["step"]) == list(range(0, 13, 2))
    for rec, step in enumerate(nc["step"]):
        for name, var in (("ssh", "ssh"), ("u", "u"), ("v", "v"), ("sst", "temp")):
            a = got[f"{name}@{step}"]
            assert a.shape == (1, 24, 32)
            assert np.array_equal(a[0], nc[var][rec]), f"{name} at step {step} differs from the netCDF output"
    assert np.abs(got["u@12"]).max() > 0


@pytest.mark.parametrize("mode", ["replace", "increment"])
def test_emulator_state_is_applied(gyre_coupled_exe, rundir, mode):
    cfg = _coupled_cfg({"nn_obr_freq": 1, "ln_obr_emulator": True, "cn_obr_emu_mode": mode, "nn_obr_emu_freq": 3},
                       namrun={"nn_itend": 9, "nn_write": 1}, namdom={"jpni": 1, "jpnj": 2})
    rd = rundir(f"emu-{mode}", cfg)
    res = gyrerun.run_gyre(rd, 2, worker=_worker("emulate"), exe=gyre_coupled_exe, timeout=120)
    assert_ok(res)
    got = np.load(rd / "worker.npz")
    nc = read_nc(rd / "gyre_fields.nc")
    masks = _masks(nc["mask"])
    steps = list(nc["step"])
    for step in range(1, 10):
        rec = steps.index(step)
        for name in ("ssh", "u", "v", "temp"):
            state = nc[name][rec]
            physics = got[f"{name}@{step}"][0]          # what the model sent at this step, before applying
            ocean = masks[name]
            if step % 3:
                assert np.array_equal(state, physics), f"{name} at step {step}: no emulator step, yet changed"
                continue
            sent = got[f"{name}_emu@{step}"][0]
            expect = sent if mode == "replace" else physics + sent
            assert np.array_equal(state[ocean], expect[ocean]), f"{name} at step {step}: emulated state not applied"
            assert np.array_equal(state[~ocean], physics[~ocean]), f"{name} at step {step}: land was changed"
    # the emulated state is the model's state from then on: the next step starts from it (it differs from
    # a run without the emulator)
    ref = rundir(f"ref-{mode}", small_cfg(namrun={"nn_itend": 9, "nn_write": 1}))
    assert_ok(gyrerun.run_gyre(ref, 1, exe=gyre_coupled_exe))
    assert not np.array_equal(read_nc(ref / "gyre_fields.nc")["ssh"][4], nc["ssh"][4])


def test_spinup_replaces_the_initial_state(gyre_coupled_exe, rundir):
    cfg = _coupled_cfg({"nn_obr_freq": 1, "ln_obr_spinup": True}, namrun={"nn_itend": 3, "nn_write": 1})
    rd = rundir("spinup", cfg)
    res = gyrerun.run_gyre(rd, 2, worker=_worker("spinup"), exe=gyre_coupled_exe, timeout=120)
    assert_ok(res)
    assert "initial state replaced" in res.stdout
    got = np.load(rd / "worker.npz")
    nc = read_nc(rd / "gyre_fields.nc")
    masks = _masks(nc["mask"])
    assert nc["step"][0] == 0
    for name in ("ssh", "u", "v", "temp"):
        init = got[f"{name}_init@0"][0]
        ocean = masks[name]
        assert np.array_equal(nc[name][0][ocean], init[ocean])
        assert np.array_equal(got[f"{name}@0"][0], nc[name][0])     # and the first put sends it back


@pytest.mark.parametrize("required", [True, False])
def test_worker_absent(gyre_coupled_exe, rundir, required):
    cfg = _coupled_cfg({"ln_obr_required": required, "rn_obr_timeout": 3.0}, namrun={"nn_itend": 6, "nn_write": 3})
    rd = rundir("absent", cfg)
    res = gyrerun.run_gyre(rd, 2, exe=gyre_coupled_exe, timeout=90)
    assert "no component receives it" in res.output
    if required:
        assert res.returncode != 0 and "gyre: normal end" not in res.stdout
        assert "ln_obr_required = .true." in res.output
    else:
        assert_ok(res)
        assert "continuing UNCOUPLED" in res.stdout
        assert list(read_nc(rd / "gyre_fields.nc")["step"]) == [0, 3, 6]


@pytest.mark.parametrize("required", [True, False])
@pytest.mark.parametrize("how", ["quit", "silent"])
def test_worker_dies(gyre_coupled_exe, rundir, required, how):
    """The worker leaves (quit) or stops answering (silent) after step 3: stop or go on uncoupled, never hang.

    quit + required used to hang under load: gyre's MPI_Abort meets the worker waiting in MPI_Finalize's fence,
    and Open MPI 4.1's mpirun then hangs with every process ended (or crashes in PMIx_server_finalize), about 1 run
    in 4. gyre itself stops correctly; gyrerun stops such an orphaned mpirun (bridge.mpirun.wait_mpirun)."""
    cfg = _coupled_cfg({"ln_obr_required": required, "rn_obr_timeout": 3.0, "ln_obr_emulator": True,
                        "nn_obr_emu_freq": 2}, namrun={"nn_itend": 10, "nn_write": 5})
    rd = rundir(f"dies-{how}", cfg)
    res = gyrerun.run_gyre(rd, 2, worker=_worker(how, 3, 8), exe=gyre_coupled_exe, timeout=120)
    assert "failed at step 4" in res.output, res.output
    if required:
        assert res.returncode != 0 and "gyre: normal end" not in res.stdout
        assert "stopping because ln_obr_required = .true." in res.output
    else:
        assert "continuing UNCOUPLED" in res.stdout
        assert "gyre: normal end" in res.stdout
        assert list(read_nc(rd / "gyre_fields.nc")["step"]) == [0, 5, 10]


def test_worker_killed_never_hangs(gyre_coupled_exe, rundir):
    """A worker killed by a signal takes the MPMD job down (mpirun's rule): gyre ends at once, it does not hang."""
    cfg = _coupled_cfg({"ln_obr_required": False, "rn_obr_timeout": 3.0}, namrun={"nn_itend": 20000, "nn_write": 0})
    rd = rundir("killed", cfg)
    res = gyrerun.run_gyre(rd, 2, worker=_worker("kill", 3), exe=gyre_coupled_exe, timeout=60)
    assert res.returncode != 0 and "gyre: normal end" not in res.stdout
