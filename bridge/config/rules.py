"""Rules that tie the sections of a deploy config together.

Single-key checks live with the settings table (config.py); what is here
needs several sections at once, e.g. "mode 'emulate' needs '<name>_emu'
fields".  Each rule raises a ConfigError naming the section and the key.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from bridge.transport.naming import MEMBER_PLACEHOLDER, check_component, oasis_name
from models.settings import ConfigError

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig


def check_config(cfg: "DeployConfig") -> None:
    _check_names(cfg)
    _check_grid(cfg)
    _check_fields(cfg)
    _check_modes(cfg)
    _check_parameters(cfg)
    _check_oasis_times(cfg)


def _check_names(cfg: "DeployConfig") -> None:
    for section, name in (("ocean", cfg.ocean.base_name), ("worker", cfg.worker.name)):
        try:
            check_component(name)
        except ValueError as err:
            raise ConfigError(f"[{section}] key 'name': {err}") from None
    if cfg.worker.name in cfg.components:
        raise ConfigError(f"[worker] key 'name': {cfg.worker.name!r} is also an ocean component name")
    if cfg.ocean.members > 1 and "{k}" not in cfg.ocean.member_dir:
        raise ConfigError(f"[ocean] key 'member_dir': {cfg.ocean.member_dir!r} must contain '{{k}}' "
                          "so that members get distinct folders")
    for comp in cfg.components:  # raises if an OASIS name would be too long
        for fld in cfg.fields:
            try:
                cfg.endpoints(comp, fld)
            except ValueError as err:
                raise ConfigError(f"[[fields]] '{fld.name}': {err}") from None
    _check_oasis_names(cfg)


def _check_oasis_names(cfg: "DeployConfig") -> None:
    """A user-given ``oasis_name`` is per member (``{k}``) and no two ends of the namcouple share a name."""
    for fld in cfg.fields:
        if fld.oasis_name and cfg.ocean.members > 1 and MEMBER_PLACEHOLDER not in fld.oasis_name:
            raise ConfigError(f"[[fields]] '{fld.name}': key 'oasis_name' = {fld.oasis_name!r} would be the same "
                              f"for the {cfg.ocean.members} members; put {MEMBER_PLACEHOLDER} (the member "
                              f"number) in it, e.g. {fld.oasis_name + '_' + MEMBER_PLACEHOLDER!r}")
    owner: dict[str, str] = {}
    for comp in cfg.components:
        for fld in cfg.fields:
            ocean_end, worker_end = oasis_name(comp, fld.name), cfg.worker_oasis_name(comp, fld)
            for name, end in ((ocean_end, f"the ocean's end of field '{fld.name}' of member '{comp}'"),
                              (worker_end, f"the worker's end of field '{fld.name}' towards member '{comp}'")):
                if name in owner and owner[name] != end:
                    raise ConfigError(f"[[fields]] '{fld.name}': OASIS name {name!r} is both {owner[name]} and "
                                      f"{end}; every end of the namcouple needs its own name (key 'oasis_name')")
                owner[name] = end


def _check_grid(cfg: "DeployConfig") -> None:
    """Every rank needs a part of the grid: the worker splits the ny rows among its ranks
    (bridge.partition), an ocean member splits its nx x ny points."""
    ocean, ranks = cfg.ocean, cfg.worker.ranks
    if ranks > ocean.ny:
        raise ConfigError(f"[worker] key 'ranks' = {ranks} but [ocean] ny = {ocean.ny}: the worker splits the "
                          f"ny rows of the grid among its ranks, one row at least each (cannot split {ocean.ny} "
                          f"points into {ranks} parts); set [worker] ranks <= {ocean.ny}, or use a larger grid")
    if ocean.ranks > ocean.nx * ocean.ny:
        raise ConfigError(f"[ocean] key 'ranks' = {ocean.ranks} but [ocean] nx x ny = {ocean.nx} x {ocean.ny} is "
                          f"only {ocean.nx * ocean.ny} points, one at least per rank; set [ocean] ranks <= "
                          f"{ocean.nx * ocean.ny}, or use a larger grid")


def _check_fields(cfg: "DeployConfig") -> None:
    dup = [n for n, c in Counter(f.name for f in cfg.fields).items() if c > 1]
    if dup:
        raise ConfigError(f"[[fields]]: field '{dup[0]}' is declared more than once")
    states = {f.name: f for f in cfg.fields_with_role("state")}
    if not states:
        raise ConfigError("[[fields]]: no field has direction = 'ocean_to_worker'; the ocean must send "
                          "at least one (these become cn_obr_send)")
    for f in cfg.fields:
        wanted = "ocean_to_worker" if f.role == "state" else "worker_to_ocean"
        if f.direction != wanted:
            raise ConfigError(f"[[fields]] '{f.name}': direction must be '{wanted}' for a field named "
                              f"like this (ocean_to_worker fields are plain names, worker_to_ocean fields "
                              f"end in '_emu' or '_init')")
    _same_value(cfg.fields_with_role("state"), "freq", "nn_obr_freq")
    _same_value(cfg.fields_with_role("emulated"), "freq", "nn_obr_emu_freq")
    for role, suffix in (("emulated", "_emu"), ("initial", "_init")):
        _check_returned(states, cfg.fields_with_role(role), suffix)
    for f in cfg.fields_with_role("initial"):
        if f.freq != 1:
            raise ConfigError(f"[[fields]] '{f.name}': key 'freq' must stay 1: '_init' fields travel "
                              "once, at the first step")


def _same_value(fields, key: str, switch: str) -> None:
    values = {getattr(f, key) for f in fields}
    if len(values) > 1:
        listing = ", ".join(f"{f.name}={getattr(f, key)}" for f in fields)
        raise ConfigError(f"[[fields]]: key '{key}' must be the same for these fields, because the "
                          f"ocean has one switch {switch} for them: {listing}")


def _check_returned(states: dict, returned, suffix: str) -> None:
    """The ocean receives '<name><suffix>' for every name it sends, or for none."""
    if not returned:
        return
    have = {f.base: f for f in returned}
    for base, fld in have.items():
        if base not in states:
            raise ConfigError(f"[[fields]] '{fld.name}': the ocean does not send '{base}', so it "
                              f"cannot receive '{fld.name}'")
        if fld.nlev != states[base].nlev:
            raise ConfigError(f"[[fields]] '{fld.name}': key 'nlev' is {fld.nlev} but '{base}' has "
                              f"nlev = {states[base].nlev}")
    missing = [f"{b}{suffix}" for b in states if b not in have]
    if missing:
        raise ConfigError(f"[[fields]]: the ocean receives '<name>{suffix}' for every field it sends; "
                          f"add field(s) {', '.join(missing)}")


def _check_modes(cfg: "DeployConfig") -> None:
    modes = set(cfg.worker.modes)
    pairs = (("emulate", "emulated", "_emu"), ("spinup", "initial", "_init"))
    for mode, role, suffix in pairs:
        has_fields = bool(cfg.fields_with_role(role))
        if mode in modes and not has_fields:
            raise ConfigError(f"[worker] key 'modes' includes '{mode}' but no [[fields]] name ends in "
                              f"'{suffix}': add worker_to_ocean fields '<name>{suffix}' or drop the mode")
        if has_fields and mode not in modes:
            raise ConfigError(f"[[fields]] has '<name>{suffix}' fields but [worker] key 'modes' lacks "
                              f"'{mode}': add the mode or remove those fields")
    if "infer" in modes and not cfg.parameters:
        raise ConfigError("[worker] key 'modes': 'infer' needs [[parameters]] (the θ to infer)")
    if "ensemble" in modes and cfg.ocean.members < 2:
        raise ConfigError("[worker] key 'modes': 'ensemble' needs [ocean] members >= 2")


def _check_parameters(cfg: "DeployConfig") -> None:
    given = [p.name for p in cfg.parameters if p.values]
    if given and len(given) != len(cfg.parameters):
        raise ConfigError(f"[[parameters]]: key 'values' is set for {given} but not for the others: set it for "
                          "every parameter (the members' θ) or for none (the [ensemble] design draws θ)")
    for p in cfg.parameters:
        if len(p.values) not in (0, 1, cfg.ocean.members):
            raise ConfigError(f"[[parameters]] '{p.name}': key 'values' has {len(p.values)} values for "
                              f"{cfg.ocean.members} members: give one per member, or one for all")
    names = Counter(p.name for p in cfg.parameters)
    places = Counter((p.block.lower(), p.variable.lower()) for p in cfg.parameters)
    for p in cfg.parameters:
        if names[p.name] > 1:
            raise ConfigError(f"[[parameters]]: parameter '{p.name}' is declared more than once")
        if places[(p.block.lower(), p.variable.lower())] > 1:
            raise ConfigError(f"[[parameters]] '{p.name}': &{p.block} {p.variable} is set by two parameters")
        if p.block.lower() == "namobridge":
            raise ConfigError(f"[[parameters]] '{p.name}': key 'block' cannot be namobridge "
                              "(its switches come from the field table)")


def _check_oasis_times(cfg: "DeployConfig") -> None:
    """OASIS counts time in whole seconds: periods, lags and the run length must be integers."""
    if cfg.run.backend != "oasis":
        return
    if cfg.run.dt != int(cfg.run.dt):
        raise ConfigError(f"[run] key 'dt': OASIS times are whole seconds, got dt = {cfg.run.dt}")
    # hosts exchange the state after step kt when MOD(kt, freq) == 0, at OASIS time (kt - nit000 + 1)*dt
    # (obridge.F90): those times are multiples of the coupling period freq*dt only if freq divides nit000 - 1
    for fld in cfg.fields:
        if fld.role != "initial" and (cfg.run.nit000 - 1) % fld.freq:
            raise ConfigError(f"[[fields]] '{fld.name}': with OASIS, freq = {fld.freq} must divide nit000 - 1 = "
                              f"{cfg.run.nit000 - 1} (the host exchanges at steps kt with MOD(kt, freq) == 0, "
                              "OASIS at multiples of freq*dt since step nit000 - 1): restart on a multiple of freq")
