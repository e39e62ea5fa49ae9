"""CROCO's MPI decomposition, read from the ``param.h`` it was built with.

CROCO fixes ``NP_XI x NP_ETA`` at compile time, in a ``parameter (NP_XI=...,
NP_ETA=...)`` line of ``param.h`` (numbers, or the ``SPLITTING_X`` /
``SPLITTING_ETA`` macros that ``oceanbridge install croco --np-xi --np-eta``
sets), and stops at start when mpirun gives it another number of ranks.
``launch`` reads the ``param.h`` next to the executable (jobcomp builds
``croco`` in the folder holding ``param.h``) and compares with ``[ocean] ranks``.

The reading is conservative: a cpp condition is evaluated only when every
macro in it is known (``MPI`` and ``OBRIDGE`` are on in a bridge build; others
only from param.h's own ``#define``/``#undef`` lines, since cppdefs.h may set
them).  An unknown condition around the parameter line, an ``#include``, a
value that is not a number, or two candidate values give None: nothing is
reported then.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.config.config import DeployConfig

UNKNOWN, UNDEFINED = object(), object()
ASSUMED = {"MPI": "", "OBRIDGE": ""}  # defined in every CROCO built with the bridge (croco_patches)
PARAMETER = re.compile(r"\s*parameter\s*\(\s*NP_XI\s*=\s*(\w+)\s*,\s*NP_ETA\s*=\s*(\w+)", re.IGNORECASE)
DIRECTIVE = re.compile(r"\s*#\s*(\w+)\s*(.*)")
TOKEN = r"defined\s*\(\s*\w+\s*\)|defined\s+\w+\b|\w+\b|&&|\|\||!|\(|\)"  # \b: a word is one token (no backtracking)


class _Undetermined(Exception):
    """param.h does not say for sure; the caller reports nothing."""


def croco_rank_problems(cfg: "DeployConfig") -> list[str]:
    """A problem when ``[ocean] ranks`` differs from NP_XI * NP_ETA of the croco build; [] if unknown."""
    if cfg.ocean.model != "croco":
        return []
    param = cfg.ocean.executable.parent / "param.h"
    try:
        layout = decomposition(param.read_text(errors="replace"))
    except OSError:
        return []
    if layout is None or layout[0] * layout[1] == cfg.ocean.ranks:
        return []
    (np_xi, np_eta), ranks = layout, cfg.ocean.ranks
    return [f"[ocean] ranks = {ranks} but {param} builds CROCO for NP_XI x NP_ETA = {np_xi} x {np_eta} = "
            f"{np_xi * np_eta} ranks, so CROCO would stop at start: set [ocean] ranks = {np_xi * np_eta} in "
            f"{cfg.source}, or rebuild CROCO for {ranks} rank(s) (oceanbridge install croco --np-xi X --np-eta Y "
            f"with X*Y = {ranks}, then ./jobcomp)"]


def decomposition(text: str) -> tuple[int, int] | None:
    """(NP_XI, NP_ETA) of a param.h text, or None when it cannot be determined for sure."""
    macros: dict[str, object] = dict(ASSUMED)
    stack: list[list] = []  # per open #if: [state of this branch, state of 'an earlier branch was taken']
    found = set()
    try:
        for line in text.splitlines():
            directive = DIRECTIVE.match(line)
            if directive:
                _directive(directive[1], directive[2].split("/*")[0].strip(), stack, macros)
            elif (param := PARAMETER.match(line)) and _active(stack) is not False:
                if _active(stack) is None:
                    return None
                found.add((_number(param[1], macros), _number(param[2], macros)))
    except _Undetermined:
        return None
    return found.pop() if len(found) == 1 and not stack else None


def _directive(name: str, rest: str, stack: list[list], macros: dict) -> None:
    if name in ("if", "ifdef", "ifndef"):
        cond = _condition(rest if name == "if" else f"{'!' if name == 'ifndef' else ''}defined {rest}", macros)
        stack.append([cond, cond])
    elif name in ("elif", "else", "endif") and not stack:
        raise _Undetermined
    elif name == "elif":
        taken = stack[-1][1]
        cond = False if taken else _and(_not(taken), _condition(rest, macros))
        stack[-1] = [cond, _or(taken, cond)]
    elif name == "else":
        stack[-1] = [_not(stack[-1][1]), True]
    elif name == "endif":
        stack.pop()
    elif name in ("define", "undef") and _active(stack) is not False:
        key, value = (rest.split(None, 1) + [""])[:2]
        known = _active(stack) is True
        macros[key] = (value.strip() if name == "define" else UNDEFINED) if known else UNKNOWN
    elif name == "include" and _active(stack) is not False:
        raise _Undetermined  # the included file may define anything


def _condition(expr: str, macros: dict) -> bool | None:
    """A cpp condition made of defined(), numbers, !, &&, || and parentheses; None when unknown."""
    if not re.fullmatch(rf"(?:\s*(?:{TOKEN}))*\s*", expr):
        return None
    values = []
    for tok in re.findall(TOKEN, expr):
        if tok.startswith("defined"):
            value = _defined(re.findall(r"\w+", tok)[1], macros)
        elif re.fullmatch(r"\w+", tok):
            value = _number_or_none(tok, macros)
        else:
            value = tok
        if value is None:
            return None
        values.append(value)
    try:
        return _Expression(values).result()
    except SyntaxError:
        return None


class _Expression:
    """!, && and || (in that precedence) and parentheses over known values; never eval()."""

    def __init__(self, tokens: list) -> None:
        self.tokens, self.pos = tokens, 0

    def result(self) -> bool:
        value = self._either()
        if self.pos != len(self.tokens):
            raise SyntaxError("trailing tokens")
        return value

    def _take(self):
        if self.pos >= len(self.tokens):
            raise SyntaxError("unexpected end")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _next_is(self, op: str) -> bool:
        if self.pos < len(self.tokens) and self.tokens[self.pos] == op:
            self.pos += 1
            return True
        return False

    def _either(self) -> bool:
        value = self._both()
        while self._next_is("||"):
            value = self._both() or value
        return value

    def _both(self) -> bool:
        value = self._unary()
        while self._next_is("&&"):
            value = self._unary() and value
        return value

    def _unary(self) -> bool:
        tok = self._take()
        if tok == "!":
            return not self._unary()
        if tok == "(":
            value = self._either()
            if self._take() != ")":
                raise SyntaxError("missing )")
            return value
        if isinstance(tok, str):
            raise SyntaxError(f"unexpected {tok}")
        return bool(tok)


def _defined(name: str, macros: dict) -> bool | None:
    value = macros.get(name, UNKNOWN)
    return None if value is UNKNOWN else value is not UNDEFINED


def _number_or_none(token: str, macros: dict) -> int | None:
    value = token if token.isdigit() else macros.get(token, UNKNOWN)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _number(token: str, macros: dict) -> int:
    value = _number_or_none(token, macros)
    if value is None:
        raise _Undetermined
    return value


def _active(stack: list[list]) -> bool | None:
    states = [frame[0] for frame in stack]
    return False if False in states else None if None in states else True


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


def _and(a: bool | None, b: bool | None) -> bool | None:
    return False if a is False or b is False else None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    return True if a is True or b is True else None if a is None or b is None else False
