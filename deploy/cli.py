"""The ``oceanbridge`` command line.

Each verb lives in the module that owns the concept; this file only maps verb
names to ``module:function`` entry points and imports them lazily, so that
``oceanbridge preprod`` never pays for importing torch and ``oceanbridge
train`` never needs MPI.
"""
from __future__ import annotations

import importlib
import logging
import sys

# verb -> (entry point "module:function", one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("deploy.demo:main", "run the end-to-end demo (the main job)"),
    "preprod": ("deploy.commands:preprod_main", "write the namcouple and &namobridge switches from a deploy config"),
    "launch": ("deploy.commands:launch_main", "check namcouple/namelists against the config, then start the MPMD job"),
    "slurm": ("deploy.commands:slurm_main", "write a SLURM batch script for a deploy config"),
    "worker": ("bridge.worker:main", "run the Python worker inside an MPMD job"),
    "install": ("deploy.install:main", "copy the bridge patches into a NEMO configuration or a CROCO run folder"),
    "train": ("models.cli:train_main", "train a surrogate offline from netCDF"),
    "sample": ("models.cli:sample_main", "sample a trained surrogate to netCDF"),
    "evaluate": ("models.cli:evaluate_main", "score samples against truth (RMSE, CRPS, spectra)"),
    "spinup-start": ("deploy.spinup_start:main", "start members from generated spun-up states "
                     "([worker.spinup]), run and judge them"),
    "infer": ("models.cli:infer_main", "parameter posterior of an observed state, trained offline on netCDF "
              "runs with known θ"),
}


def _usage() -> str:
    lines = ["usage: oceanbridge VERB [options]", "", "verbs:"]
    width = max(map(len, VERBS))
    lines += [f"  {verb:<{width}} {help_}" for verb, (_, help_) in VERBS.items()]
    lines += ["", "Run 'oceanbridge VERB --help' for the options of one verb."]
    return "\n".join(lines)


def _load(entry: str):
    module_name, func_name = entry.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"oceanbridge: unknown verb '{verb}'\n\n{_usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    result = _load(VERBS[verb][0])(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
