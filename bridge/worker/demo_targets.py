"""What the demo's scores say: its targets (issue 17), each defined once in ``TARGETS``, and
plain comparisons of the diffusion surrogate with its rivals, checked per variable against the
scores of the emulation phase (``bridge/worker/report.py``, ``scores``).

A target's bound is a number, inclusive (``0.7 <= value <= 1.4``), or the name of another score
of the same variable, strict (``crps_diffusion < crps_mse``).  A score that was not measured
fails its target.
"""
from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL = "PASS", "FAIL"


@dataclass(frozen=True)
class Target:
    name: str
    score: str                    # key of a scores row
    low: float | str | None       # number (inclusive), another score's key (strict), or None
    high: float | str | None
    description: str              # what it means, in words (the condition is written from the bounds)


TARGETS = (
    Target("crps", "crps_diffusion", None, "crps_mse",
           "the diffusion samples' CRPS beats the MSE baseline's (its MAE)"),
    Target("high_k", "highk_diffusion", 0.7, 1.4,
           "the diffusion step keeps the truth's small-scale energy (high-k ratio near 1)"),
    Target("high_k_mse_lower", "highk_mse", None, "highk_diffusion",
           "the MSE baseline loses more of the small scales than the diffusion surrogate"),
    Target("spread_skill", "spread_skill", 0.7, 1.3,
           "the diffusion samples' spread matches their error (calibrated ensembles)"),
)


@dataclass(frozen=True)
class Comparison:
    score: str        # its name in words
    ours: str         # key of the diffusion's score
    theirs: str       # key of the rival's score
    rival: str
    better: str       # "lower" or "closer to 1"


COMPARISONS = (
    Comparison("CRPS", "crps_diffusion", "crps_mse", "MSE baseline", "lower"),
    Comparison("RMSE", "rmse_diffusion", "rmse_mse", "MSE baseline", "lower"),
    Comparison("RMSE", "rmse_diffusion", "rmse_persistence", "persistence", "lower"),
    Comparison("high-k ratio", "highk_diffusion", "highk_mse", "MSE baseline", "closer to 1"),
)


def fmt(value) -> str:
    """A score as the report shows it: 4 significant digits."""
    return "n/a" if value is None else f"{value:.4g}"


def condition(target: Target, row: dict | None = None) -> str:
    """The target's condition in symbols, e.g. ``0.7 <= highk_diffusion <= 1.4``; with a scores row,
    each score's value follows its name (``crps_diffusion 0.0123 < crps_mse 0.015``)."""
    def name(key: str) -> str:
        return key if row is None else f"{key} {fmt(row.get(key))}"
    low = "" if target.low is None else (f"{name(target.low)} < " if isinstance(target.low, str)
                                         else f"{target.low} <= ")
    high = "" if target.high is None else (f" < {name(target.high)}" if isinstance(target.high, str)
                                           else f" <= {target.high}")
    return f"{low}{name(target.score)}{high}"


def check(target: Target, row: dict) -> dict:
    """One target on one variable's scores: the value, the bounds as numbers, PASS or FAIL."""
    value, low, high = row.get(target.score), _bound(target.low, row), _bound(target.high, row)
    ok = value is not None and _meets(value, low, target.low, below=False) and _meets(value, high, target.high,
                                                                                       below=True)
    return {"score": target.score, "condition": condition(target), "measured": condition(target, row),
            "value": value, "low": low, "high": high, "result": PASS if ok else FAIL}


def evaluate(scores: dict) -> dict:
    """Every target on every variable: ``{"result", "passed", "checked", "by variable": {var: {name: check}}}``."""
    by_var = {var: {t.name: check(t, row) for t in TARGETS} for var, row in scores.items()}
    results = [c["result"] for checks in by_var.values() for c in checks.values()]
    return {"result": PASS if results and all(r == PASS for r in results) else FAIL,
            "passed": results.count(PASS), "checked": len(results), "by variable": by_var}


def verdict(comp: Comparison, row: dict) -> str | None:
    """One comparison in words, e.g. ``diffusion CRPS 0.15 < MSE baseline 0.19: diffusion better``;
    None when either score is missing."""
    ours, theirs = row.get(comp.ours), row.get(comp.theirs)
    if ours is None or theirs is None:
        return None
    distance = (lambda x: x) if comp.better == "lower" else (lambda x: abs(x - 1))
    a, b = distance(ours), distance(theirs)
    winner = "diffusion" if a < b else (comp.rival if a > b else "neither")
    if comp.better == "lower":
        sign = "<" if ours < theirs else (">" if ours > theirs else "=")
        return f"diffusion {comp.score} {fmt(ours)} {sign} {comp.rival} {fmt(theirs)}: {winner} better"
    return f"diffusion {comp.score} {fmt(ours)}, {comp.rival} {fmt(theirs)} (truth 1): {winner} closer"


def verdicts(scores: dict) -> dict[str, list[str]]:
    """``{variable: [sentence, ...]}`` over ``COMPARISONS``."""
    return {var: [s for s in (verdict(c, row) for c in COMPARISONS) if s] for var, row in scores.items()}


def _number(bound) -> bool:
    return isinstance(bound, (int, float))


def _bound(bound, row: dict) -> float | None:
    return None if bound is None else (float(bound) if _number(bound) else row.get(bound))


def _meets(value: float, bound: float | None, spec, below: bool) -> bool:
    """``value`` on the right side of one bound: inclusive for a number, strict for another score."""
    if spec is None:
        return True
    if bound is None:  # a score that was not measured fails its target
        return False
    if _number(spec):
        return value <= bound if below else value >= bound
    return value < bound if below else value > bound
