"""What the deploy layer knows about each host ocean model.

Only facts needed to prepare and check a run folder live here: which file
holds ``&namobridge``, whether the reference namelist must define the block
too, and which namelist variables carry the run length, time step and grid
(so that one deploy config sets them and ``launch`` can catch a mismatch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class HostModel:
    name: str
    namelist: str            # default file name (in the member folder) holding &namobridge
    ref_defines_block: bool  # NEMO-style READ_NML_REF: namelist_ref must define &namobridge too
    may_create: bool         # the namelist may be written from scratch (a file only for the bridge)
    # deploy quantity -> (namelist group, variable); quantities: nit000, itend, dt, nx, ny
    run_vars: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))


HOSTS: Mapping[str, HostModel] = MappingProxyType({
    # gyre/src/gyre_par.F90: &namrun nn_it000 nn_itend rn_dt, &namdom nn_nx nn_ny
    # its namelist_cfg holds only what differs from namelist_ref, so preprod may start one from scratch
    "gyre": HostModel("gyre", "namelist_cfg", ref_defines_block=True, may_create=True,
                      run_vars=MappingProxyType({
                          "nit000": ("namrun", "nn_it000"), "itend": ("namrun", "nn_itend"),
                          "dt": ("namrun", "rn_dt"), "nx": ("namdom", "nn_nx"), "ny": ("namdom", "nn_ny")})),
    # NEMO 5.0: &namrun nn_it000 nn_itend, &namdom rn_Dt; the grid comes from the
    # configuration's own namelist (e.g. GYRE's nn_GYRE), so it is not set here.
    "nemo": HostModel("nemo", "namelist_cfg", ref_defines_block=True, may_create=False,
                      run_vars=MappingProxyType({
                          "nit000": ("namrun", "nn_it000"), "itend": ("namrun", "nn_itend"),
                          "dt": ("namdom", "rn_Dt")})),
    # CROCO keeps run length and dt in croco.in (being replaced upstream), so the
    # bridge switches live in their own small namelist file that preprod may create.
    "croco": HostModel("croco", "namelist_obridge", ref_defines_block=False, may_create=True),
})
