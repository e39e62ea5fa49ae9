"""Land-only subdomains removed (&namdom ln_landdom, as NEMO's mpp_is_ocean): fewer ranks, the same answer.

A jpni x jpnj layout whose land boxes cover whole tiles runs, with ln_landdom = .true., on as many ranks as there
are tiles with ocean. Its fields, restarts and diagnostics are bit-identical to the run that keeps every tile
(jpni*jpnj ranks) and to one rank; a coupled worker receives exactly the full layout's fields (0 on the removed
tiles, where the full layout sends land, i.e. 0, too). The configurations use the EEN vorticity flux, partial
slip, biharmonic viscosity and APVM, whose stencils read the halo corners that a removed tile would relay.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gyre_testlib import FIELDS, assert_ok, gyrerun, read_nc, small_cfg

pytestmark = pytest.mark.mpi

WORKER = Path(__file__).resolve().parent / "gyre_worker.py"
DIAGS = ("ke", "volume", "volume_anomaly", "heat", "umax", "hmin")
NX, NY = 32, 24          # small_cfg's grid, 40 km spacing: T point i is at x = (i - 0.5) * 40 km

# 3 x 2: tiles of 11, 11, 10 x 12 points; the land box covers tile (2,0) (x 900..1260 km, y 20..460 km)
EEN_PHYS = {"ln_dynvor_een": True, "ln_dynldf_lap": True, "ln_dynldf_blp": True, "rn_bhm": 2.0e13, "rn_shlat": 1.0}
BLP_PHYS = {"ln_dynldf_lap": False, "ln_dynldf_blp": True, "rn_bhm": 2.0e13, "rn_shlat": 0.0, "rn_apvm": 0.25}


def _mask_4x2(path: Path) -> np.ndarray:
    """A mask file whose land covers tiles (3,0) and (0,1) of a 4 x 2 layout (8 x 12 points each), plus an island."""
    import netCDF4
    mask = np.ones((NY, NX), dtype=np.int32)
    mask[0:12, 24:32] = 0      # tile (3,0), south-east
    mask[12:24, 0:8] = 0       # tile (0,1), north-west
    mask[14:16, 13:17] = 0     # an island in tile (1,1)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", NY)
        ds.createDimension("x", NX)
        ds.createVariable("tmask", "i4", ("y", "x"))[:] = mask
    return mask


# name: (jpni, jpnj, removed tiles (i, j), physics, &nammask)
CASES = {
    "3x2-island-een": (3, 2, [(2, 0)], EEN_PHYS, {"rn_island(:,2)": [890.0, 1300.0, 0.0, 470.0]}),
    "4x2-maskfile-blp-apvm": (4, 2, [(3, 0), (0, 1)], BLP_PHYS,
                              {"rn_island(:,1)": [-1.0, -1.0, -1.0, -1.0], "cn_mask_file": "../mask.nc",
                               "cn_mask_var": "tmask"}),
}


def _cfg(case: str, layout: tuple[int, int], landdom: bool, **blocks) -> dict:
    _, _, _, phys, mask = CASES[case]
    cfg = small_cfg(namrun={"nn_stock": 10}, namphys=dict(phys), nammask=dict(mask))
    cfg["namdom"].update(jpni=layout[0], jpnj=layout[1], ln_landdom=landdom)
    for block, values in blocks.items():
        cfg.setdefault(block, {}).update(values)
    return cfg


def _tile_slices(case: str, tile: tuple[int, int]) -> tuple[slice, slice]:
    """(y, x) slices of a tile of the case's layout (gyre_mpp's split: the first tiles one point longer)."""
    px, py = CASES[case][:2]

    def split(n, p, k):
        b, r = divmod(n, p)
        start = k * b + min(k, r)
        return slice(start, start + b + (1 if k < r else 0))
    return split(NY, py, tile[1]), split(NX, px, tile[0])


def _outputs(rd: Path) -> dict[str, dict]:
    return {f: read_nc(rd / f) for f in ("gyre_fields.nc", "gyre_00000010_restart.nc", "gyre_00000020_restart.nc",
                                         "gyre_diag.nc")}


def _assert_identical(got: dict, ref: dict, what: str) -> None:
    for fname, ref_vars in ref.items():
        names = FIELDS + ("mask",) if fname == "gyre_fields.nc" else FIELDS if "restart" in fname else DIAGS
        for name in names:
            assert np.array_equal(got[fname][name], ref_vars[name]), f"{what}: {name} of {fname} differs"


@pytest.mark.parametrize("case", sorted(CASES))
def test_removed_land_tiles_bit_identical(gyre_exe, tmp_path, case):
    """ln_landdom on jpni*jpnj - k ranks == every tile on jpni*jpnj ranks == 1 rank (fields, restarts, diag)."""
    px, py, removed, _, _ = CASES[case]
    _mask_4x2(tmp_path / "mask.nc")
    runs = {"full": ((px, py), False, px * py), "landdom": ((px, py), True, px * py - len(removed)),
            "one": ((1, 1), False, 1)}
    out = {}
    for name, (layout, landdom, nranks) in runs.items():
        rd = gyrerun.make_rundir(tmp_path / name, _cfg(case, layout, landdom))
        res = gyrerun.run_gyre(rd, nranks, exe=gyre_exe, timeout=120)
        assert_ok(res)
        if name == "landdom":
            assert f"{nranks} rank(s) as {px} x {py} tiles, {len(removed)} land-only tile(s) removed" in res.stdout
            assert "removed tiles (i,j), 0-based: " + " ".join(f"({i},{j})" for i, j in removed) in res.stdout
        out[name] = _outputs(rd)
    ref = out["full"]
    # a meaningful comparison: the flow has moved, and the removed tiles are land in the full layout's output
    assert np.abs(ref["gyre_00000020_restart.nc"]["u"]).max() > 1e-2
    for tile in removed:
        sy, sx = _tile_slices(case, tile)
        assert not ref["gyre_fields.nc"]["mask"][sy, sx].any()
        for name in FIELDS:
            assert not ref["gyre_fields.nc"][name][:, sy, sx].any(), f"{name} is not 0 on removed tile {tile}"
    _assert_identical(out["landdom"], ref, f"{case} with land tiles removed")
    _assert_identical(out["one"], ref, f"{case} on 1 rank")


def test_restart_across_layouts(gyre_exe, tmp_path):
    """A restart of the full layout continues bit-identically on the layout without its land tile, and back."""
    case = "3x2-island-een"
    full = gyrerun.make_rundir(tmp_path / "full", _cfg(case, (3, 2), False))
    assert_ok(gyrerun.run_gyre(full, 6, exe=gyre_exe, timeout=120))
    ref = read_nc(full / "gyre_00000020_restart.nc")
    rst = {"namrun": {"ln_rstart": True, "cn_ocerst_in": str(full / "gyre_00000010_restart.nc")}}
    cont = gyrerun.make_rundir(tmp_path / "cont", _cfg(case, (3, 2), True, **rst))
    assert_ok(gyrerun.run_gyre(cont, 5, exe=gyre_exe, timeout=120))
    got = read_nc(cont / "gyre_00000020_restart.nc")
    for name in FIELDS:
        assert np.array_equal(got[name], ref[name]), f"{name} of the continued restart differs"


@pytest.mark.parametrize("nranks, landdom, jpni, expect", [
    (6, True, 3, ["ln_landdom", "3 x 2 layout has 5 tile(s) with ocean", "1 land-only removed", "6 MPI ranks"]),
    (4, True, 3, ["ln_landdom", "has 5 tile(s) with ocean", "4 MPI ranks"]),
    (5, False, 3, ["jpni*jpnj = 3*2", "5 MPI ranks"]),
    (5, True, 0, ["ln_landdom = .true. needs the layout", "jpni > 0 and jpnj > 0"]),
])
def test_wrong_rank_count_stops(gyre_exe, rundir, nranks, landdom, jpni, expect):
    """The failing counterpart: a rank count that does not match the tiles with ocean stops, naming both numbers."""
    cfg = _cfg("3x2-island-een", (jpni, 2), landdom)
    res = gyrerun.run_gyre(rundir("bad", cfg), nranks, exe=gyre_exe, timeout=90)
    assert res.returncode != 0 and "gyre: normal end" not in res.stdout
    for text in expect:
        assert text in res.output, f"{text!r} not in the output:\n{res.output}"


def test_perturbed_run_differs(gyre_exe, tmp_path):
    """The comparison can fail: the same layout with a wind 1e-9 stronger is not bit-identical."""
    case = "3x2-island-een"
    out = {}
    for name, tau in (("ref", 0.5), ("pert", 0.5 * (1 + 1e-9))):
        rd = gyrerun.make_rundir(tmp_path / name, _cfg(case, (3, 2), True, namphys={"rn_tau0": tau}))
        assert_ok(gyrerun.run_gyre(rd, 5, exe=gyre_exe, timeout=120))
        out[name] = read_nc(rd / "gyre_00000020_restart.nc")
    for name in FIELDS:
        assert not np.array_equal(out["pert"][name], out["ref"][name]), f"{name} did not change"
        assert np.abs(out["pert"][name] - out["ref"][name]).max() < 1e-6


@pytest.mark.parametrize("mode", ["record", "emulate"])
def test_coupled_worker_gets_the_same_fields(gyre_coupled_exe, tmp_path, mode):
    """Coupled: the worker receives exactly the full layout's fields (ld_gaps: 0 on the removed tile, land in
    the full layout too), and with the emulator the model's answer is the same."""
    case = "3x2-island-een"
    obr = {"ln_obridge": True, "rn_obr_timeout": 30.0, "nn_obr_freq": 2, "cn_obr_send": ["ssh", "u", "v", "sst", "mask"]}
    if mode == "emulate":
        obr.update(ln_obr_emulator=True, cn_obr_emu_mode="replace", nn_obr_emu_freq=4)
    got, nc = {}, {}
    for name, landdom, nranks in (("full", False, 6), ("landdom", True, 5)):
        cfg = _cfg(case, (3, 2), landdom, namrun={"nn_itend": 12, "nn_write": 2}, namobridge=obr)
        rd = gyrerun.make_rundir(tmp_path / name, cfg)
        res = gyrerun.run_gyre(rd, nranks, worker=[sys.executable, str(WORKER), mode], exe=gyre_coupled_exe,
                               timeout=180)
        assert_ok(res)
        got[name] = dict(np.load(rd / "worker.npz"))
        nc[name] = read_nc(rd / "gyre_fields.nc")
    full, land = got["full"], got["landdom"]
    assert sorted(full) == sorted(land) and "mask@0" in full and "u@12" in full
    sy, sx = _tile_slices(case, (2, 0))
    for key in full:
        assert np.array_equal(land[key], full[key]), f"the worker received a different {key}"
        if "_emu" not in key:
            assert not land[key][0][sy, sx].any(), f"{key} is not 0 (land / GAP_FILL) on the removed tile"
    assert np.array_equal(land["mask@0"][0], nc["full"]["mask"])
    assert np.abs(land["u@12"]).max() > 1e-2
    for name in FIELDS + ("mask",):
        assert np.array_equal(nc["landdom"][name], nc["full"][name]), f"{name} of the coupled run differs"
