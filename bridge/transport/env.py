"""$OBRIDGE_* settings read from the environment: a bad value is named, never guessed."""
from __future__ import annotations

import os

from ..errors import BridgeError


def env_choice(name: str, default: str, choices: tuple[str, ...], what: str) -> str:
    """``$name`` (``default`` when unset), one of ``choices`` after trimming and lower-casing;
    anything else raises BridgeError naming the variable, its value and ``what`` it sets."""
    text = os.environ.get(name, default)
    if text.strip().lower() not in choices:
        raise BridgeError(f"{name}={text!r}: the {what} must be one of {', '.join(choices)}")
    return text.strip().lower()
