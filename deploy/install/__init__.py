"""``oceanbridge install <target> ...``: copy the bridge and its hooks into a host model's sources.

``main(argv)`` dispatches on ``argv[0]`` to ``deploy.install.<target>.main(argv[1:])``,
imported by name when called (no import-time side effects). The model-agnostic
engine that inserts the commented hooks is :mod:`deploy.install.patching`.
"""
from __future__ import annotations

import importlib
import sys

TARGETS: dict[str, str] = {
    "nemo": "NEMO 5.0 configuration (cfgs/<CFG>/MY_SRC, cpp keys, &namobridge)",
    "croco": "CROCO v2.1.3 run folder",
}


def _usage() -> str:
    lines = ["usage: oceanbridge install TARGET [options]", "", "targets:"]
    lines += [f"  {name:<6} {help_}" for name, help_ in TARGETS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the installer named by ``argv[0]`` with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    target = argv[0]
    if target not in TARGETS:
        print(f"oceanbridge install: unknown target '{target}'; known targets: {', '.join(TARGETS)}\n\n{_usage()}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(f"deploy.install.{target}")
    return int(module.main(argv[1:]) or 0)
