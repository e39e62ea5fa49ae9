"""Shared helpers of the gyre tests (a unique module name: conftest.py files of other folders do not clash)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "gyre" / "tools"))

import gyrerun  # noqa: E402,F401

FIELDS = ("ssh", "u", "v", "temp")


def small_cfg(**overrides) -> dict[str, dict]:
    """A 32x24 basin with an island, strong wind and a long step, so that a few steps move everything."""
    cfg = {
        "namrun": {"nn_itend": 20, "rn_dt": 2400.0, "nn_write": 5, "nn_diag": 1, "nn_stock": 0},
        "namdom": {"nn_nx": 32, "nn_ny": 24, "rn_dx": 40.0e3, "rn_dy": 40.0e3},
        "namphys": {"rn_tau0": 0.5, "rn_ahm": 1000.0},
        "nammask": {"rn_island(:,1)": [400.0, 560.0, 320.0, 480.0]},
    }
    for block, values in overrides.items():
        cfg.setdefault(block, {}).update(values)
    return cfg




def read_nc(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a netCDF file as a numpy array (no masking)."""
    return gyrerun.read_fields(Path(path))


def assert_ok(res) -> None:
    """The run ended normally."""
    assert res.returncode == 0 and "gyre: normal end" in res.stdout, f"gyre failed (rc={res.returncode}):\n{res.output}"
