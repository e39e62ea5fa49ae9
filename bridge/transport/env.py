"""$OBRIDGE_* settings read from the environment: a bad value is named, never guessed.

Each coupling setting has one row below: the variable, the deploy config key that sets it
(``[run] <key>``, declared in bridge/config/config.py with this row's default and choices) and its
default, the one both the Python readers (transport/mpi.py, transport/wait.py) and the config
declaration take.  ``oceanbridge launch`` writes every row from the config into the job's
environment (deploy/mpmd.py, ``job_env``); the variables are what the launcher sets, the
config keys are the way to choose.  The Fortran side (bridge/fortran/obr_core.F90) reads the same
variables; its fallbacks when one is unset are these defaults (tests/deploy/test_deploy_coupling_keys.py
compares them).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import BridgeError


@dataclass(frozen=True)
class EnvSetting:
    """One $OBRIDGE_* setting: ``var`` (the variable), ``key`` (its ``[run]`` key), ``default``, and for a
    word setting its ``choices`` (trimmed and lower-cased before the comparison)."""
    var: str
    key: str
    default: float | int | str
    choices: tuple[str, ...] = ()

    def text(self, value: float | int | str) -> str:
        """``value`` as the launcher writes it into the environment (a float keeps every digit)."""
        return repr(float(value)) if isinstance(self.default, float) else str(value)


TIMEOUT = EnvSetting("OBRIDGE_TIMEOUT", "timeout", 300.0)
PUT_MODE = EnvSetting("OBRIDGE_PUT_MODE", "put_mode", "copy", ("copy", "direct"))
PUT_RING = EnvSetting("OBRIDGE_RING", "put_ring", 4)
WAIT_MODE = EnvSetting("OBRIDGE_WAIT", "wait_mode", "auto", ("auto", "spin", "yield"))
NAN_POLICY = EnvSetting("OBRIDGE_NAN_POLICY", "nan_policy", "error", ("error", "warn", "off"))
COUPLING = (TIMEOUT, PUT_MODE, PUT_RING, WAIT_MODE, NAN_POLICY)


def env_choice(name: str, default: str, choices: tuple[str, ...], what: str) -> str:
    """``$name`` (``default`` when unset), one of ``choices`` after trimming and lower-casing;
    anything else raises BridgeError naming the variable, its value and ``what`` it sets."""
    text = os.environ.get(name, default)
    if text.strip().lower() not in choices:
        raise BridgeError(f"{name}={text!r}: the {what} must be one of {', '.join(choices)}")
    return text.strip().lower()


def env_word(setting: EnvSetting, what: str) -> str:
    """The word setting ``setting`` from the environment (its default when unset), validated."""
    assert isinstance(setting.default, str), f"{setting.var} is not a word setting"  # (the table's rows with choices)
    return env_choice(setting.var, setting.default, setting.choices, what)
