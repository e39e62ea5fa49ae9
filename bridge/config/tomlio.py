"""Writing TOML (the standard library only reads it): enough for deploy configs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# keys holding paths, by table: relative values are made absolute when a config is written elsewhere
PATH_KEYS = {"run": ("run_dir",), "ocean": ("executable", "namelist", "namelist_ref", "inputs"),
             "model": ("mask_file",), "demo": ("out",)}


def absolute_paths(data: dict, base: Path) -> dict:
    """A deep copy of a parsed deploy config with its relative paths resolved against ``base``."""
    out = json.loads(json.dumps(data))
    for table, keys in PATH_KEYS.items():
        for key in keys:
            value = out.get(table, {}).get(key)
            if isinstance(value, str):
                out[table][key] = str((base / value).resolve())
            elif isinstance(value, list):
                out[table][key] = [str((base / v).resolve()) for v in value]
    spinup = out.get("worker", {}).get("spinup", {})
    if isinstance(spinup.get("checkpoint"), str):
        spinup["checkpoint"] = str((base / spinup["checkpoint"]).resolve())
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def dump_toml(data: dict, prefix: str = "") -> str:
    """Scalars first, then sub-tables ``[a.b]``, then arrays of tables ``[[a]]``."""
    lines, tables, arrays = [], [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}{key}"
        text += f"\n[{name}]\n" + dump_toml(value, prefix=name + ".")
    for key, items in arrays:
        for item in items:
            text += f"\n[[{prefix}{key}]]\n" + dump_toml(item, prefix=f"{prefix}{key}.")
    return text
