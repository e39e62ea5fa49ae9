"""Patched NEMO 5.0 with land-only subdomains removed (issue 20; needs NEMO_DIR: GYRE_OCE built after
'oceanbridge install nemo').

NEMO writes its own GYRE_OCE domain (ln_write_cfg); a land block then covers the north-east subdomain of a
2 x 2 layout and the one-point halo around it (mppini's mpp_is_ocean looks at the subdomain with one halo), and
the runs read it back (ln_read_cfg).  On 3 ranks NEMO removes that subdomain (layout.dat: jpnij 3 of 2 x 2):
- the run equals, bit for bit, the run on 4 ranks that keeps the subdomain, which holds only zeros there;
- coupled, NEMO declares the gaps (the adapter passes ld_gaps when jpnij < jpni*jpnj): the Python receiver, on 1
  or 2 ranks of its own decomposition, gets exactly NEMO's restart fields on every point a NEMO rank owns, and
  0 with the mask 0 on the removed subdomain.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import f90nml
import nemo_run as nr
import netCDF4
import numpy as np
import pytest

NEMO_DIR = os.environ.get("NEMO_DIR")
pytestmark = [pytest.mark.nemo, pytest.mark.mpi,
              pytest.mark.skipif(bool(nr.built(NEMO_DIR)), reason=nr.built(NEMO_DIR) or "built")]

LAND = (slice(10, 22), slice(15, 32))  # (j, i) of the 32 x 22 grid: the NE subdomain of 2 x 2 and its halo
NE = (slice(11, 22), slice(16, 32))    # the NE subdomain itself (nimpp 17, njmpp 12 in layout.dat)
SEND = ["sst", "ssh", "u", "v", "tem3d", "mask"]
RESTART = {"sst": ("tn", slice(0, 1)), "ssh": ("sshn", slice(None)), "u": ("un", slice(None)),
           "v": ("vn", slice(None)), "tem3d": ("tn", slice(None))}


@pytest.fixture(scope="module")
def domain_cfg(tmp_path_factory) -> Path:
    """GYRE_OCE's domain as NEMO writes it, with the land block."""
    folder = nr.prepare(NEMO_DIR, tmp_path_factory.mktemp("domcfg"), itend=1)
    patch(folder, {"namcfg": {"ln_write_cfg": True}})
    res = nr.run_alone(folder, 1)
    assert res.returncode == 0, res.stdout[-3000:]
    out = tmp_path_factory.mktemp("land") / "domain_cfg.nc"
    shutil.copyfile(folder / "domain_cfg_out.nc", out)
    with netCDF4.Dataset(out, "a") as ds:
        for name in ("bottom_level", "top_level"):
            levels = ds[name][:]
            levels[:, LAND[0], LAND[1]] = 0
            ds[name][:] = levels
    return out


def patch(folder: Path, groups: dict) -> None:
    f90nml.patch(str(folder / "namelist_cfg"), groups, str(folder / "namelist_cfg.new"))
    os.replace(folder / "namelist_cfg.new", folder / "namelist_cfg")


def land_run(folder: Path, domain_cfg: Path, itend: int, obridge: dict | None = None) -> Path:
    folder = nr.prepare(NEMO_DIR, folder, itend=itend, obridge=obridge)
    shutil.copyfile(domain_cfg, folder / "domain_cfg.nc")
    patch(folder, {"namcfg": {"ln_read_cfg": True, "cn_domcfg": "domain_cfg"}, "nammpp": {"jpni": 2, "jpnj": 2}})
    return folder


def subdomains(folder: Path) -> int:
    """jpnij, from NEMO's layout.dat."""
    return int(re.search(r"jpnij.*\n\s*(\d+)", (folder / "layout.dat").read_text()).group(1))


def test_nemo_removes_the_land_subdomain_and_gives_the_same_answer(tmp_path, domain_cfg):
    runs = {}
    for ranks in (4, 3):
        folder = land_run(tmp_path / f"r{ranks}", domain_cfg, itend=20)
        res = nr.run_alone(folder, ranks)
        assert res.returncode == 0, res.stdout[-3000:]
        assert subdomains(folder) == ranks
        runs[ranks] = nr.restart_fields(folder, 20)
    for name, kept in runs[4].items():
        removed = runs[3][name]
        owned = ~np.isnan(removed)
        assert not owned[..., NE[0], NE[1]].any() and owned.sum() == owned.size - owned[..., NE[0], NE[1]].size
        assert np.array_equal(kept[owned], removed[owned]), f"{name}: 3 ranks differ from 4"
        assert np.all(kept[..., NE[0], NE[1]] == 0), f"{name}: the kept subdomain is not all land"
    assert not np.array_equal(runs[4]["tn"][0], np.zeros_like(runs[4]["tn"][0]))  # (the ocean is not empty)


@pytest.mark.parametrize("py_ranks", [1, 2])
def test_the_worker_gets_nemo_fields_where_nemo_owns_and_land_on_the_removed_subdomain(tmp_path, domain_cfg,
                                                                                        py_ranks):
    obr = dict(ln_obridge=True, cn_obr_send=SEND, nn_obr_freq=5, rn_obr_timeout=60.0)
    folder = land_run(tmp_path / "run", domain_cfg, itend=10, obridge=obr)
    res = nr.launch(nr.coupled_cmd(3, nr.receiver_argv("record"), py_ranks), folder, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]
    assert subdomains(folder) == 3
    got = np.load(folder / "worker.npz")
    rst = nr.restart_fields(folder, 10)
    for name, (var, lev) in RESTART.items():
        nemo = rst[var][lev]
        owned = ~np.isnan(nemo)
        assert np.array_equal(got[f"{name}@10"][owned], nemo[owned]), f"{name} differs from NEMO's restart"
        assert np.all(got[f"{name}@10"][..., NE[0], NE[1]] == 0.0), f"{name}: the removed subdomain is not 0"
    mask = got["mask@0"]
    assert np.all(mask[..., NE[0], NE[1]] == 0) and mask.max() == 1
