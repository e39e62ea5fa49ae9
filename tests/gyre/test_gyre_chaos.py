"""The default configuration eddies and is (weakly) chaotic.

Slow: a spin-up of 2 model years, then twin runs of one year from the same state, one with a 1e-6 m bump of
ssh. The bump first radiates gravity waves (the difference shrinks), then the balanced part grows: by about
an order of magnitude over the year (an e-folding time of the order of 100 days; see gyre/README.md).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from gyre_testlib import assert_ok, gyrerun, read_nc

SPINUP = 52560          # 2 years of 72 steps per day
TWIN = 26280            # one year


@pytest.mark.slow
@pytest.mark.mpi
def test_default_configuration_is_eddying_and_chaotic(gyre_exe, tmp_path):
    spin = gyrerun.make_rundir(tmp_path / "spin", {"namrun": {"nn_itend": SPINUP, "nn_diag": 72, "nn_write": 0}})
    assert_ok(gyrerun.run_gyre(spin, 2, exe=gyre_exe, timeout=1800))
    diag = read_nc(spin / "gyre_diag.nc")
    assert diag["hmin"].min() > 100.0                    # the layer never outcrops
    runs = {}
    for name, eps in (("control", 0.0), ("perturbed", 1e-6)):
        rd = gyrerun.make_rundir(tmp_path / name, {"namrun": {
            "ln_rstart": True, "cn_ocerst_in": "start", "nn_itend": SPINUP + TWIN, "nn_write": 1460, "nn_diag": 72}})
        shutil.copy(spin / f"gyre_{SPINUP:08d}_restart.nc", rd / "start.nc")
        if eps:
            import netCDF4
            with netCDF4.Dataset(rd / "start.nc", "a") as ds:
                ds["ssh"][64, 64] = ds["ssh"][64, 64] + eps
        assert_ok(gyrerun.run_gyre(rd, 1, exe=gyre_exe, timeout=1800))
        runs[name] = read_nc(rd / "gyre_fields.nc")
    ke = read_nc(tmp_path / "control" / "gyre_diag.nc")["ke"]
    assert ke.std() / ke.mean() > 0.02                   # the kinetic energy keeps fluctuating
    diff = [np.sqrt(np.mean((a - b) ** 2)) for a, b in zip(runs["control"]["ssh"], runs["perturbed"]["ssh"])]
    assert diff[-1] > 4 * min(diff), f"the perturbation does not grow: {diff}"
