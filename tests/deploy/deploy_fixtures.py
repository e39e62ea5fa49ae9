"""Constants and helpers of the deploy tests (a unique module name: several conftest.py exist)."""
from __future__ import annotations

import copy
import sys

NAMELIST_REF = """\
&namrun
   nn_it000 = 1
   nn_itend = 100
   rn_dt = 1200.
/
&namdom
   nn_nx = 128
   nn_ny = 128
/
&namphys
   rn_tau0 = 0.1
   rn_ahm = 200.
/
&namobridge
   ln_obridge = .false.
/
"""

NAMELIST_CFG = """\
!! gyre configuration namelist: overrides namelist_ref
!-----------------------------------------------------------------------
&namrun        ! run control
!-----------------------------------------------------------------------
   cn_exp   = 'demo'   ! experiment name
   nn_itend = 100      ! last step
/
&namctl
   nn_ctl = 5          ! checks every 5 steps
/
"""

BASE = {
    "run": {"backend": "mpi", "run_dir": "run", "dt": 1200.0, "steps": 720, "timeout": 60.0},
    "ocean": {"model": "gyre", "executable": "bin/gyre.exe", "ranks": 2, "members": 1, "nx": 128, "ny": 96,
              "namelist": "tmpl/namelist_cfg", "namelist_ref": "tmpl/namelist_ref"},
    "worker": {"ranks": 1, "modes": ["train"], "python": sys.executable},  # preflight runs it
    "fields": [{"name": "ssh", "direction": "ocean_to_worker", "freq": 12},
               {"name": "u", "direction": "ocean_to_worker", "freq": 12, "nlev": 1}],
}

PARAMETERS = [
    {"name": "tau0", "block": "namphys", "var": "rn_tau0", "low": 0.05, "high": 0.2},
    {"name": "ahm", "block": "namphys", "var": "rn_ahm", "low": 100.0, "high": 1000.0},
]


def merged(**sections) -> dict:
    """BASE with whole sections replaced or sections' keys updated (dict values are merged;
    a key set to None is removed)."""
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
            data[key] = {k: v for k, v in data[key].items() if v is not None}
        else:
            data[key] = value
    return data
