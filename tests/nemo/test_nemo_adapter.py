"""The NEMO adapter (nemo_patches/obridge_nemo*.F90) without NEMO: it is preprocessed as makenemo does
(cpp -P -traditional, key_obridge, key_RK3), compiled with NEMO's -fdefault-real-8 against stand-ins of the
NEMO modules it uses (tests/nemo/stubs), and run in a stand-in time loop coupled to tests/nemo/nemo_receiver.py.

Stand-in state at global interior point (i, j, k), 1-based: T = i + 100 j + 10000 k, S = -T, u = T/2,
ssh = i + 100 j; each step adds 1; land is the column i = 1.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nemo_run as nr
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
SOURCES = [HERE / "stubs" / "nemo_standins.F90"] + \
    [nr.REPO / "bridge" / "fortran" / f for f in ("obr_core.F90", "obr_mpi_defs.F90", "obr_mpi_wait.F90", "obr_mpi.F90",
                                                     "obridge.F90", "obr_host_nml.F90", "obr_host.F90")] + \
    [nr.REPO / "nemo_patches" / f for f in ("obridge_nemo_nml.F90", "obridge_nemo.F90")] + \
    [HERE / "stubs" / "standin_ocean.F90"]
NX, NY, NZ, ITEND = 12, 10, 3, 4

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not (shutil.which("mpif90") and shutil.which("cpp")),
                                                   reason="needs mpif90 and cpp")]


def compile_like_makenemo(sources: list[Path], build: Path, keys: list[str], incs: tuple[str, ...] = ()) -> None:
    """cpp -P -traditional with the cpp keys, then mpif90 with NEMO's -fdefault-real-8, in dependency order."""
    for src in sources:
        f90 = build / (src.stem + ".f90")
        subprocess.run(["cpp", "-P", "-traditional"] + [f"-D{k}" for k in keys] + [f"-I{HERE / 'stubs'}", str(src),
                        str(f90)], check=True)
        res = subprocess.run(["mpif90", "-c", "-fdefault-real-8", "-O1", "-ffree-line-length-none", "-Wall",
                              "-Wno-unused-dummy-argument", *incs, f90.name, "-o", src.stem + ".o"], cwd=build,
                             capture_output=True, text=True)
        assert res.returncode == 0, f"{src.name} does not compile with {keys}:\n{res.stderr}"


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    """Build the stand-in ocean with the adapter and the bridge, as makenemo would (cpp, then compile)."""
    build = tmp_path_factory.mktemp("standin")
    compile_like_makenemo(SOURCES, build, ["key_obridge", "key_RK3"])
    subprocess.run(["mpif90", "-o", "standin_ocean.exe"] + [s.stem + ".o" for s in SOURCES], cwd=build, check=True)
    return build / "standin_ocean.exe"


@pytest.mark.oasis
@pytest.mark.skipif(not os.environ.get("OASIS_DIR"), reason="OASIS_DIR (an OASIS3-MCT build, BLD) is not set")
def test_oasis_path_of_the_adapter_compiles(tmp_path):
    """key_oasis3 + key_obridge_oasis: obn_define joins NEMO's OASIS component (obr_init_from_oasis, ncomp_id)."""
    oasis = Path(os.environ["OASIS_DIR"])
    sources = SOURCES[:1] + [HERE / "stubs" / "cpl_oasis3_standin.F90"] + \
        [nr.REPO / "bridge" / "fortran" / f for f in ("obr_core.F90", "obr_mpi_defs.F90", "obr_oasis.F90",
                                                       "obridge.F90", "obr_host_nml.F90", "obr_host.F90")] + SOURCES[-3:-1]
    incs = tuple(f"-I{p}" for p in (oasis / "build/lib/psmile.MPI1", oasis / "build/lib/mct", oasis / "include"))
    compile_like_makenemo(sources, tmp_path, ["key_obridge", "key_obridge_oasis", "key_oasis3", "key_RK3"], incs)
    assert (tmp_path / "obridge_nemo.o").is_file()


def run(standin: Path, folder: Path, obr: dict, mode: str | None = "record", *args: str, ranks: int = 2,
        py_ranks: int = 1, keep_going: bool = False, extra_line: str = "", xios: bool = False):
    import f90nml
    folder.mkdir()
    (folder / "namelist_ref").write_text((nr.REPO / "nemo_patches" / "namobridge.nml").read_text()
                                         + f"&namrun\n nn_it000 = 1\n nn_itend = {ITEND}\n/\n")
    send = obr.get("cn_obr_send", [])
    obr = {**obr, "cn_obr_send": list(send) + [""] * (nr.MAXSEND - len(send))} if send else obr
    f90nml.write({"namrun": {"nn_it000": 1, "nn_itend": ITEND}, "namstandin": {"nx": NX, "ny": NY, "nz": NZ, "ln_xios": xios},
                  "namobridge": obr}, str(folder / "namelist_cfg"))
    if extra_line:                                    # a line slipped into &namobridge of namelist_cfg
        cfg = folder / "namelist_cfg"
        cfg.write_text(cfg.read_text().replace("&namobridge\n", f"&namobridge\n    {extra_line}\n"))
    (folder / "nemo").symlink_to(standin)
    if mode is None:                                  # the stand-in alone
        return nr.run_alone(folder, ranks, timeout=60), {}
    peer = nr.receiver_argv(mode, *args, "--nx", str(NX), "--ny", str(NY), "--nlev", str(NZ))
    res = nr.launch(nr.coupled_cmd(ranks, peer, py_ranks, keep_going), folder, timeout=120)
    got = np.load(folder / "worker.npz") if (folder / "worker.npz").exists() else {}
    return res, got


def truth(name: str, kt: int) -> np.ndarray:
    """The stand-in state of step kt, (nlev, ny, nx)."""
    k, j, i = np.meshgrid(np.arange(1, NZ + 1), np.arange(1, NY + 1), np.arange(1, NX + 1), indexing="ij")
    t = i + 100.0 * j + 10000.0 * k + kt
    return {"sst": t[:1], "tem3d": t, "sss": -t[:1] + 2 * kt, "u": 0.5 * (t - kt) + kt,
            "ssh": (i + 100.0 * j)[:1] + kt}[name]


@pytest.mark.parametrize("ranks, py_ranks", [(1, 1), (2, 3)])
def test_fields_arrive_exactly_on_the_global_grid(standin, tmp_path, ranks, py_ranks):
    obr = dict(ln_obridge=True, cn_obr_send=["sst", "sss", "ssh", "u", "tem3d", "mask"], nn_obr_freq=2)
    res, got = run(standin, tmp_path / "rec", obr, ranks=ranks, py_ranks=py_ranks)
    assert res.returncode == 0 and "nstop = 0" in res.stdout, res.stdout[-3000:]
    assert sorted(got) == sorted([f"{n}@{k}" for n in ("sst", "sss", "ssh", "u", "tem3d") for k in (0, 2, 4)]
                                 + ["mask@0"])
    for key in got:
        name, kt = key.split("@")
        want = (truth("tem3d", 0) % 100 != 1).astype(float) if name == "mask" else truth(name, int(kt))
        assert np.array_equal(got[key], want), key


@pytest.mark.parametrize("mode", ["replace", "increment"])
def test_emulated_state_is_applied_on_ocean_points_only(standin, tmp_path, mode):
    obr = dict(ln_obridge=True, cn_obr_send=["ssh", "tem3d", "mask"], ln_obr_emulator=True, nn_obr_emu_freq=2,
               cn_obr_emu_mode=mode)
    res, got = run(standin, tmp_path / mode, obr, "emulate")
    assert res.returncode == 0, res.stdout[-3000:]
    ocean = got["mask@0"] == 1
    for name in ("ssh", "tem3d"):
        sea = ocean[: got[f"{name}@3"].shape[0]]
        base = got[f"{name}@2"] if mode == "increment" else 0.0      # what was there when the emulator came
        want = np.where(sea, base + got[f"{name}_emu@2"] + 1.0, truth(name, 3))   # then one stand-in step
        assert np.array_equal(got[f"{name}@3"], want), name
    assert "obn_step: applied tem3d_emu at step 2" in res.stdout


def test_invalid_switches_stop_naming_them(standin, tmp_path):
    obr = dict(ln_obridge=False, nn_obr_freq=0, cn_obr_emu_mode="swap", cn_obr_send=["sst", "salinity"])
    res, _ = run(standin, tmp_path / "bad", obr, None)
    assert "nstop = 3 error(s)" in res.stdout
    for msg in ("invalid nn_obr_freq: must be >= 1, got 0",
                "invalid cn_obr_emu_mode: 'swap' is not 'replace' or 'increment'",
                "invalid cn_obr_send: 'salinity' is not a NEMO field"):
        assert f"obn_nml_read: &namobridge: {msg}" in res.stdout
    # coupled, the whole job stops at once (the worker would otherwise wait at its end of definitions)
    res, _ = run(standin, tmp_path / "bad_coupled", {**obr, "ln_obridge": True})
    assert res.returncode != 0 and "nemo: invalid &namobridge switch" in res.stdout


@pytest.mark.parametrize("required", [False, True])
def test_worker_leaving_continue_uncoupled_or_stop(standin, tmp_path, required):
    obr = dict(ln_obridge=True, cn_obr_send=["sst"], ln_obr_emulator=True, rn_obr_timeout=3.0,
               ln_obr_required=required)
    res, _ = run(standin, tmp_path / "gone", obr, "silent" if required else "quit", "2",
                 keep_going=not required)
    assert "emulator get failed at step 3" in res.stdout, res.stdout[-3000:]
    if required:
        assert res.returncode != 0 and "stopping because ln_obr_required = .true." in res.stdout
    else:
        assert "continuing UNCOUPLED" in res.stdout and "obn_finalize: 4 steps" in res.stdout


def test_spinup_replaces_the_initial_state(standin, tmp_path):
    obr = dict(ln_obridge=True, cn_obr_send=["ssh", "tem3d", "mask"], ln_obr_spinup=True)
    res, got = run(standin, tmp_path / "spin", obr, "spinup")
    assert res.returncode == 0 and "initial state replaced by the received one at step 0" in res.stdout, \
        res.stdout[-3000:]
    ocean = got["mask@0"] == 1
    for name in ("ssh", "tem3d"):
        sea = ocean[: got[f"{name}@0"].shape[0]]
        for kt in (0, 1):       # the initial state sent at step 0 is the generated one, and NEMO starts from it
            assert np.array_equal(got[f"{name}@{kt}"], np.where(sea, got[f"{name}_init@0"] + kt, truth(name, kt)))


def test_unreadable_namobridge_stops_the_job_at_once(standin, tmp_path):
    """A garbled &namobridge (as f90nml 1.5's patch writes when it extends a list) must not let NEMO guess
    ln_obridge: a wrong guess would put NEMO and the worker in one communicator and hang them both."""
    obr = dict(ln_obridge=True, cn_obr_send=["sst"])
    res, _ = run(standin, tmp_path / "garbled", obr, extra_line="'tem3d' = .false.")
    assert res.returncode != 0
    assert "oceanbridge: NEMO stops: namelist_cfg: &namobridge cannot be read" in res.stdout, res.stdout[-3000:]


def test_xios_branch_stops_instead_of_running_uncoupled(standin, tmp_path):
    """With key_xios NEMO never calls obn_start: ln_obridge must stop it, not let it run silently uncoupled."""
    res, _ = run(standin, tmp_path / "xios", dict(ln_obridge=True, cn_obr_send=["sst"]), None, xios=True)
    assert "ln_obridge = .true. but the bridge was not started before mpp_start" in res.stdout, res.stdout[-3000:]
    assert "nstop = 1 error(s)" in res.stdout
