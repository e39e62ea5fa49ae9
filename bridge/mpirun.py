"""The ``mpirun`` prefix every oceanbridge launch uses (tests, benchmarks, demo, deploy).

``orte_abort_on_non_zero_status 0`` keeps Open MPI from killing the whole job
the moment one side dies, so the survivor reaches its timeout and says what
happened instead of vanishing with a bare 'exited on signal 9'.
"""
from __future__ import annotations

import os
import shutil


def mpirun_prefix(nprocs: int, *, cores: int | None = None, keep_going_on_failure: bool = False) -> list[str]:
    """``mpirun`` with the options this machine needs for ``nprocs`` processes.

    ``keep_going_on_failure`` suits an ocean that must outlive its worker
    (``ln_obr_required = .false.``); by default a death stops the whole job, so
    collectives of the host model can never wait on a dead rank."""
    exe = shutil.which("mpirun") or "mpirun"
    cmd = [exe, "--bind-to", "none"]
    if nprocs > (cores or os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    if keep_going_on_failure:
        cmd += ["--mca", "orte_abort_on_non_zero_status", "0"]
    return cmd
