"""Prepare (and check) the run folders of a deploy config: the eophis "preprod" phase.

For every ensemble member: a folder with a patched copy of the namelist
template (the &namobridge switches, the run length/time step/grid where the
host has namelist variables for them, and the member's θ), plus links to the
reference namelist, the inputs and the namcouple.  What ``preprod`` writes,
``check_members`` verifies, from the same ``member_patch`` -- so the two can
never disagree about what "current" means.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.config.ensemble import draw_parameters, parameters_csv
from bridge.config.namelist import (
    GROUP,
    check_switches,
    has_group,
    namelist_diffs,
    patch_namelist,
    read_value,
    unknown_switches,
    write_namelist,
)
from deploy.namcouple import write_namcouple

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig

log = logging.getLogger(__name__)


class PreprodError(RuntimeError):
    """preprod cannot prepare a run folder; the message names the path."""


def namobridge_switches(cfg: "DeployConfig", component: str) -> dict[str, Any]:
    """The &namobridge values of one member, all derived from the field table and [run]/[ocean]."""
    states = cfg.fields_with_role("state")
    emulated = cfg.fields_with_role("emulated")
    switches = {
        "ln_obridge": True,
        "nn_obr_freq": states[0].freq,
        "cn_obr_send": [f.name for f in states],
        "ln_obr_emulator": bool(emulated),
        "cn_obr_emu_mode": cfg.ocean.emu_mode,
        # without an emulator the value is unused; repeat nn_obr_freq rather than invent one
        "nn_obr_emu_freq": emulated[0].freq if emulated else states[0].freq,
        "ln_obr_spinup": bool(cfg.fields_with_role("initial")),
        "ln_obr_required": cfg.ocean.required,
        "rn_obr_timeout": cfg.run.timeout,
    }
    if cfg.ocean.members > 1:
        switches["cn_obr_name"] = component
    check_switches(switches)
    return switches


def run_values(cfg: "DeployConfig") -> dict[str, Any]:
    """Deploy quantities a host may hold in its namelist (see hosts.HostModel.run_vars)."""
    return {"nit000": cfg.run.nit000, "itend": cfg.run.nit000 + cfg.run.steps - 1, "dt": cfg.run.dt,
            "nx": cfg.ocean.nx, "ny": cfg.ocean.ny}


def member_patch(cfg: "DeployConfig", k: int, theta: np.ndarray) -> dict[str, dict[str, Any]]:
    """Everything preprod sets in the namelist of member ``k`` (1-based), by group."""
    switches = namobridge_switches(cfg, cfg.components[k - 1])
    switches["cn_obr_send"] = _pad_send(switches["cn_obr_send"], _reference(cfg, k))
    patch: dict[str, dict[str, Any]] = {GROUP: switches}
    values = run_values(cfg)
    for quantity, (group, var) in cfg.ocean.host.run_vars.items():
        _put(patch, group, var, values[quantity], f"[run]/[ocean] {quantity}")
    for p, value in zip(cfg.parameters, theta[k - 1]):
        _put(patch, p.block, p.variable, float(value), f"parameter '{p.name}'")
    return patch


def _reference(cfg: "DeployConfig", k: int) -> Path | None:
    """The reference namelist member ``k`` reads before its namelist_cfg, if there is one."""
    ref = cfg.ocean.namelist_ref or cfg.member_dir(k) / "namelist_ref"
    return ref if ref.is_file() else None


def _pad_send(send: list[str], ref: Path | None) -> list[str]:
    """Blank the trailing cn_obr_send entries that namelist_ref sets.

    A Fortran namelist read assigns only the array elements it finds, so
    ``cn_obr_send = 'ssh'`` over a reference ``'ssh','u','v','temp'`` would
    still send u, v and temp.  Writing ``'ssh', '', '', ''`` clears them.
    """
    have = read_value(ref, GROUP, "cn_obr_send") if ref else None
    n_ref = len(have) if isinstance(have, list) else 1
    return send + [""] * (n_ref - len(send))


def _put(patch: dict, group: str, var: str, value: Any, who: str) -> None:
    slot = patch.setdefault(group.lower(), {})
    if var.lower() in slot:
        raise PreprodError(f"&{group} {var} would be set twice (again by {who})")
    slot[var.lower()] = value


def preprod(cfg: "DeployConfig") -> list[Path]:
    """Write member folders, namelists, the namcouple (OASIS) and parameters.csv; return what was written."""
    cfg.run.run_dir.mkdir(parents=True, exist_ok=True)
    theta = draw_parameters(cfg)
    written: list[Path] = []
    for k in range(1, cfg.ocean.members + 1):
        written += _prepare_member(cfg, k, theta)
    if cfg.run.backend == "oasis":
        written.append(write_namcouple(cfg))
        for k in range(1, cfg.ocean.members + 1):  # OASIS reads ./namcouple in every process's cwd
            written += _link(cfg.namcouple, cfg.member_dir(k) / "namcouple")
    if cfg.parameters:
        csv_path = cfg.run.run_dir / "parameters.csv"
        csv_path.write_text(parameters_csv(cfg, theta))
        written.append(csv_path)
    for path in written:
        log.debug("preprod wrote %s", path)
    return written


def _prepare_member(cfg: "DeployConfig", k: int, theta: np.ndarray) -> list[Path]:
    folder = cfg.member_dir(k)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for src, name in _linked_inputs(cfg):
        written += _link(src, folder / name)
    template, target = cfg.namelist_template, cfg.member_namelist(k)
    patch = member_patch(cfg, k, theta)
    if template.is_file():
        written.append(patch_namelist(template, patch, target))
    elif cfg.ocean.host.may_create:
        written.append(write_namelist(target, patch))
    else:
        raise PreprodError(f"namelist template {template} not found ([ocean] namelist); {cfg.ocean.model} "
                           f"needs its namelist_cfg there")
    return written


def _linked_inputs(cfg: "DeployConfig") -> list[tuple[Path, str]]:
    """(file, name of its link in a member folder); the model reads the reference as 'namelist_ref'."""
    ref = [(cfg.ocean.namelist_ref, "namelist_ref")] if cfg.ocean.namelist_ref else []
    return [*ref, *((src, src.name) for src in cfg.ocean.inputs)]


def _link(src: Path, dst: Path) -> list[Path]:
    """Symlink ``dst`` -> ``src``; a real file already at ``dst`` is never overwritten."""
    if not src.exists():
        raise PreprodError(f"{src} not found (linked into {dst.parent})")
    if dst.exists() and dst.resolve() == src.resolve():
        return []
    if dst.is_symlink():
        dst.unlink()
    elif dst.exists():
        raise PreprodError(f"{dst} exists and is not a link to {src}; move it away or drop it from the config")
    os.symlink(src.resolve(), dst)
    return [dst]


def check_members(cfg: "DeployConfig") -> list[str]:
    """Problems of the member folders against the config (empty when preprod's output is current)."""
    theta = draw_parameters(cfg)
    problems: list[str] = []
    for k in range(1, cfg.ocean.members + 1):
        folder, target = cfg.member_dir(k), cfg.member_namelist(k)
        if not target.is_file():
            problems.append(f"{target}: missing; run 'oceanbridge preprod {cfg.source}'")
            continue
        problems += namelist_diffs(target, member_patch(cfg, k, theta))
        problems += unknown_switches(target)
        problems += [f"{folder / name}: missing (a link to {src})"
                     for src, name in _linked_inputs(cfg) if not (folder / name).exists()]
        problems += _check_reference(cfg, folder)
    return problems


def _check_reference(cfg: "DeployConfig", folder: Path) -> list[str]:
    """NEMO-style hosts read &namobridge from namelist_ref first: the block must be there."""
    ref = folder / "namelist_ref"
    if not cfg.ocean.host.ref_defines_block or not ref.is_file() or has_group(ref):
        return []
    return [f"{ref}: has no &{GROUP} block, so the model would stop reading it; install the "
            f"oceanbridge patches of {cfg.ocean.model} (they add the block to namelist_ref)"]
