"""Declarative settings: one frozen dataclass per config section.

Each dataclass field *is* a row of the settings table (name, type, default,
description, allowed values, bounds), in the style of sbi/Veros settings.  The
same table validates values on creation, rejects unknown keys naming them, and
renders the key reference in ``deploy/README.md`` (so docs cannot drift).

Only plain types are supported on purpose: ``str``, ``int``, ``float``,
``bool``, ``Path``, ``Path | None``, ``float | None``, ``tuple[str, ...]`` and ``tuple[float, ...]`` --
what TOML can express without a conversion layer that users would have to learn (TOML has no null:
``None``, a default only, means "not given", and the key's meaning says what applies then).
"""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

MISSING = dataclasses.MISSING
EXTRA = "extra"  # name of the pass-through field in sections that allow sub-tables


class Section:
    """A config section: a frozen dataclass whose fields are ``setting`` rows, checked on creation."""
    section: ClassVar[str] = ""  # its name in the TOML file, e.g. "worker.train"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in settings_of(type(self)):  # 2 for 2.0 from Python callers, as TOML values are coerced
            value = getattr(self, f.name)
            if hints[f.name] in (float, float | None) and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
        validate_section(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """From plain values (``dataclasses.asdict``, e.g. a checkpoint's), refusing fields this version does not
        know (a checkpoint of a newer oceanbridge)."""
        unknown = set(d) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        return cls(**d)


class ConfigError(ValueError):
    """A deploy config is invalid; the message names the file, section and key."""


def setting(default: Any = MISSING, doc: str = "", *, choices: tuple | None = None,
            ge: float | None = None, gt: float | None = None, subset: bool = False):
    """Declare one setting (a dataclass field with its documentation).

    ``choices`` lists allowed values; with ``subset=True`` the value is a tuple
    whose items must all be in ``choices``.  ``ge``/``gt`` are numeric bounds.
    """
    meta = {"setting": True, "doc": doc, "choices": choices, "ge": ge, "gt": gt, "subset": subset}
    return dataclasses.field(default=default, metadata=meta)


def program_set(default: Any, doc: str):
    """Declare a field of a section class that the program sets, never the config file (e.g. the torch device
    the worker placed a rank on): it is not a key, so a config that gives it is refused as an unknown key."""
    return dataclasses.field(default=default, metadata={"doc": doc, "program": True})


def passthrough(doc: str):
    """Declare the ``extra`` field that keeps sub-tables owned by other modules."""
    return dataclasses.field(default_factory=lambda: MappingProxyType({}),
                             metadata={"doc": doc, "passthrough": True})


def settings_of(cls) -> list[dataclasses.Field]:
    """The keys of a section class: its ``setting`` rows (not the pass-through field, not what the program sets,
    not the plain fields a subclass adds, such as a surrogate's data spec)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("setting")]


def values_of(cls, obj) -> dict[str, Any]:
    """The values of section ``cls``'s keys in ``obj`` (an instance of ``cls`` or of a subclass that adds keys):
    what to build ``cls`` or one of its other subclasses from, e.g. a trainer's config from ``[worker.train]``."""
    return {f.name: getattr(obj, f.name) for f in settings_of(cls)}


def validate_section(obj) -> None:
    """Check every value of a section instance; called from ``__post_init__``."""
    hints = typing.get_type_hints(type(obj))
    for f in settings_of(type(obj)):
        _check_value(f, hints[f.name], getattr(obj, f.name))


def control_char(text: str, allowed: str = "") -> str | None:
    """The first control character of ``text`` (newline, tab, escape ...) as ``U+000A (newline)``,
    or None; characters in ``allowed`` are accepted."""
    for ch in text:
        if ch not in allowed and (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0):
            name = {"\n": "newline", "\r": "carriage return", "\t": "tab"}.get(ch, "control character")
            return f"U+{ord(ch):04X} ({name})"
    return None


def from_table(cls, table: Mapping[str, Any], *, where: str, base_dir: Path):
    """Build section ``cls`` from a TOML table; errors are prefixed with ``where``.

    ``where`` names the file and the section, e.g. ``"cfg.toml: [ocean]"``.
    Relative paths are resolved against ``base_dir`` (the config's folder).
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in settings_of(cls)}
    allows_extra = any(f.metadata.get("passthrough") for f in dataclasses.fields(cls))
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in table.items():
        if key in known:
            kwargs[key] = _coerce(value, hints[key], base_dir)
        elif allows_extra and isinstance(value, Mapping):
            extra[key] = value  # a sub-table another module validates (e.g. [worker.train])
        else:
            names = ", ".join(sorted(known))
            raise ConfigError(f"{where} unknown key '{key}' (known keys: {names})")
    missing = [n for n, f in known.items() if f.default is MISSING and n not in kwargs]
    for name, f in known.items():  # relative default paths are relative to the config too
        if name not in kwargs and isinstance(f.default, Path):
            kwargs[name] = expand_path(f.default, base_dir)
    if missing:
        raise ConfigError(f"{where} missing required key '{missing[0]}'")
    if allows_extra:
        kwargs[EXTRA] = MappingProxyType(extra)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{where} {err}") from None


def expand_path(value: str | Path, base_dir: Path) -> Path:
    """``~`` and ``$VARS`` expanded, then made absolute against ``base_dir``.

    An unset variable stays literally in the path, so the preflight check can
    report the missing file together with the variable that explains it.
    """
    text = os.path.expandvars(os.path.expanduser(str(value)))
    if text.startswith("$"):  # unset variable: joining it to base_dir would only hide it
        return Path(text)
    return Path(os.path.normpath(base_dir / text))


def type_name(hint) -> str:
    """Short type name for the docs table."""
    return {str: "string", int: "integer", float: "float", bool: "boolean", Path: "path",
            Path | None: "path", float | None: "float", tuple[str, ...]: "list of strings",
            tuple[Path, ...]: "list of paths", tuple[float, ...]: "list of floats"}[hint]


def _coerce(value: Any, hint, base_dir: Path) -> Any:
    """Convert a TOML value to the declared type where the conversion is lossless."""
    if hint in (Path, Path | None) and isinstance(value, str):
        return expand_path(value, base_dir)
    if hint == tuple[Path, ...] and isinstance(value, list):
        return tuple(expand_path(v, base_dir) if isinstance(v, str) else v for v in value)
    if hint == tuple[str, ...] and isinstance(value, list):
        return tuple(value)
    if hint == tuple[float, ...] and isinstance(value, list):
        return tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value)
    if hint in (float, float | None) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_value(f: dataclasses.Field, hint, value: Any) -> None:
    meta = f.metadata
    if not _has_type(value, hint):
        kind = type_name(hint)
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(f"key '{f.name}' must be {article} {kind}, got {value!r}")
    items = value if meta.get("subset") else (value,)
    choices = meta.get("choices")
    for item in items if choices else ():
        if item not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise ConfigError(f"key '{f.name}' has invalid value {item!r} (allowed: {allowed})")
    if value is None:  # a `float | None` left unset: no bound applies
        return
    if meta.get("ge") is not None and value < meta["ge"]:
        raise ConfigError(f"key '{f.name}' must be >= {meta['ge']}, got {value!r}")
    if meta.get("gt") is not None and value <= meta["gt"]:
        raise ConfigError(f"key '{f.name}' must be > {meta['gt']}, got {value!r}")


def _has_type(value: Any, hint) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is Path:
        return isinstance(value, Path)
    if hint == Path | None:
        return value is None or isinstance(value, Path)
    if hint == float | None:
        return value is None or isinstance(value, float) and math.isfinite(value)
    if hint == tuple[str, ...]:
        return isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    if hint == tuple[Path, ...]:
        return isinstance(value, tuple) and all(isinstance(v, Path) for v in value)
    if hint == tuple[float, ...]:
        return isinstance(value, tuple) and all(isinstance(v, float) and math.isfinite(v) for v in value)
    raise TypeError(f"unsupported setting type {hint!r}")


def markdown_table(cls) -> str:
    """The key reference of one section as a Markdown table."""
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in settings_of(cls):
        default = "required" if f.default is MISSING else _show_default(f.default)
        doc = f.metadata["doc"]
        if f.metadata.get("choices"):
            kind = "any of" if f.metadata.get("subset") else "one of"
            doc += f" ({kind} " + ", ".join(f"`{c}`" for c in f.metadata["choices"]) + ")"
        rows.append(f"| `{f.name}` | {type_name(hints[f.name])} | {default} | {doc} |")
    return "\n".join(rows)


def _show_default(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if value is None:
        return "(see meaning)"
    return f"`{value}`"
