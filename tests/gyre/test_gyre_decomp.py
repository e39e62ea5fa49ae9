"""Decomposition independence: 1, 2, 3 and 4 ranks (even and uneven splits) give bit-identical fields."""
from __future__ import annotations

import numpy as np
import pytest
from gyre_testlib import FIELDS, assert_ok, gyrerun, read_nc, small_cfg

LAYOUTS = [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)]   # jpni x jpnj; 32x24 on 3x1 is uneven (11, 11, 10)


def _mask_file(path, nx=32, ny=24):
    """A netCDF mask with a peninsula from the west coast and an isolated lake-free island."""
    import netCDF4
    mask = np.ones((ny, nx), dtype=np.int32)
    mask[10:13, 0:12] = 0      # peninsula
    mask[18:20, 22:25] = 0     # island
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", ny)
        ds.createDimension("x", nx)
        ds.createVariable("tmask", "i4", ("y", "x"))[:] = mask
    return mask


VARIANTS = {
    "laplacian-noslip-island": small_cfg(),
    "biharmonic-freeslip-maskfile": small_cfg(
        namphys={"ln_dynldf_lap": False, "ln_dynldf_blp": True, "rn_bhm": 2.0e13, "rn_shlat": 0.0, "rn_apvm": 0.25},
        nammask={"rn_island(:,1)": [-1.0, -1.0, -1.0, -1.0], "cn_mask_file": "../mask.nc", "cn_mask_var": "tmask"}),
    "een-both-partialslip-island": small_cfg(
        namphys={"ln_dynvor_een": True, "ln_dynldf_lap": True, "ln_dynldf_blp": True, "rn_bhm": 2.0e13, "rn_shlat": 1.0}),
}


@pytest.mark.mpi
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_decomposition_independence(gyre_exe, tmp_path, variant):
    mask = _mask_file(tmp_path / "mask.nc")
    results = {}
    for px, py in LAYOUTS:
        cfg = {b: dict(v) for b, v in VARIANTS[variant].items()}
        cfg["namdom"].update(jpni=px, jpnj=py)
        rd = gyrerun.make_rundir(tmp_path / f"r{px}x{py}", cfg)
        res = gyrerun.run_gyre(rd, px * py, exe=gyre_exe, timeout=120)
        assert_ok(res)
        assert f"{px*py} rank(s) as {px} x {py} tiles" in res.stdout
        results[(px, py)] = (read_nc(rd / "gyre_fields.nc"), read_nc(rd / "gyre_00000020_restart.nc"),
                             read_nc(rd / "gyre_diag.nc"))
    ref_f, ref_r, ref_d = results[(1, 1)]
    assert list(ref_f["step"]) == [0, 5, 10, 15, 20]
    # the flow has moved everywhere it can: a meaningful comparison
    assert np.abs(ref_r["u"]).max() > 1e-2 and np.abs(ref_r["ssh"]).max() > 1e-3
    if "maskfile" in variant:
        assert np.array_equal(ref_f["mask"], mask)
        assert np.all(ref_r["u"][mask == 0] == 0.0)
    for layout, (f, r, d) in results.items():
        for name in FIELDS:
            assert np.array_equal(f[name], ref_f[name]), f"{name} of the fields file differs on {layout}"
            assert np.array_equal(r[name], ref_r[name]), f"{name} of the restart differs on {layout}"
        for name in ("ke", "volume", "volume_anomaly", "heat", "umax", "hmin"):
            assert np.array_equal(d[name], ref_d[name]), f"diagnostic {name} differs on {layout}"


@pytest.mark.mpi
def test_fields_file_convention(gyre_exe, rundir):
    """The fields file follows the convention the ML code reads (names, units, parameters)."""
    import netCDF4
    rd = rundir("cf")
    assert_ok(gyrerun.run_gyre(rd, 1, exe=gyre_exe))
    with netCDF4.Dataset(rd / "gyre_fields.nc") as ds:
        assert ds.dimensions["time"].isunlimited()
        assert ds["time"].units == "seconds since 2000-01-01 00:00:00"
        assert ds["x"].units == "m" and ds["y"].units == "m"
        for name, std, units in (("ssh", "sea_surface_height_above_geoid", "m"), ("u", "sea_water_x_velocity", "m s-1"),
                                 ("v", "sea_water_y_velocity", "m s-1"), ("temp", "sea_surface_temperature", "degC")):
            assert ds[name].dimensions == ("time", "y", "x")
            assert (ds[name].standard_name, ds[name].units) == (std, units)
        assert ds["mask"].dimensions == ("y", "x")
        assert ds.parameters.split() == ["tau0", "ahm", "gprime", "rdrag", "trelax"]
        assert float(ds["tau0"][...]) == 0.5 and ds["tau0"].units == "N m-2"
        assert all(ds[p].long_name and ds[p].units for p in ds.parameters.split())
        assert list(ds["time"][:]) == [k * 2400.0 for k in ds["step"][:]]
