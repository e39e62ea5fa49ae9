"""Which device each worker rank uses: one GPU per rank, chosen by its node-local rank.

``[worker] device`` (validated before launch in bridge/config/config.py):

- ``auto``: with CUDA, ``cuda:<local rank mod GPU count>``; without, the CPU;
- ``cuda``: the same, but no CUDA device is an error;
- ``cuda:N``: GPU N for every rank (e.g. with ``srun --gpus-per-task=1``, where each rank
  sees only its own GPU, as ``cuda:0``); N beyond the GPU count is an error;
- ``cpu``: the CPU.

The local rank is the process's rank among the job's processes on its node, as the launcher
exports it (``LOCAL_RANK_VARS``).  It counts the ocean ranks on the node too, but the worker group
is the job's last program (deploy/mpmd.py), so the worker ranks of a node have consecutive
local ranks and land on distinct GPUs while a node has no more worker ranks than GPUs.
``placement_report`` warns when it has more.  Errors are ``ConfigError``s naming the setting: the
worker prints them without a traceback and stops the job.
"""
from __future__ import annotations

import logging
import os
import socket
from collections import defaultdict
from collections.abc import Mapping

import torch

from models.settings import ConfigError

log = logging.getLogger(__name__)

# The variables that give the node-local rank, first one set wins.  A launcher's own variable comes
# before SLURM_LOCALID: a job started by mpirun/mpiexec inside a SLURM allocation may inherit the
# SLURM_LOCALID of the batch step or of the launcher's daemon (the same value on every rank).
LOCAL_RANK_VARS = (
    "OMPI_COMM_WORLD_LOCAL_RANK",  # Open MPI mpirun
    "MPI_LOCALRANKID",  # MPICH (Hydra) and Intel MPI mpiexec
    "PMI_LOCAL_RANK",  # other PMI launchers
    "SLURM_LOCALID",  # srun
)
SETTING = "[worker] device"


def local_rank(env: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The node-local rank and the variable that gave it; ``(None, None)`` when no launcher set one.
    A value that is not a non-negative integer is no rank: the next variable is tried."""
    for name in LOCAL_RANK_VARS:
        value = env.get(name, "").strip()
        if value.isdecimal():
            return int(value), name
    return None, None


def choose_device(setting: str, worker_rank: int, env: Mapping[str, str], cuda_count: int) -> str:
    """The torch device of worker rank ``worker_rank`` for ``[worker] device = setting`` on a node
    where torch sees ``cuda_count`` GPUs; without a local-rank variable the worker rank stands in."""
    if setting == "cpu":
        return "cpu"
    if cuda_count == 0 and setting != "auto":  # 'cuda' or 'cuda:N'
        raise ConfigError(f"{SETTING} = {setting!r}, but {_no_cuda_cause(env)}; use 'auto' or 'cpu' to run "
                          "on the CPU")
    if setting.startswith("cuda:"):
        index = int(setting.removeprefix("cuda:"))
        if index >= cuda_count:
            raise ConfigError(f"{SETTING} = {setting!r}, but torch sees {cuda_count} CUDA device(s) on this "
                              f"host{_visible(env)}: use cuda:0 to cuda:{cuda_count - 1}, or 'auto'")
        return f"cuda:{index}"
    if cuda_count == 0:
        return "cpu"
    rank, _ = local_rank(env)
    return f"cuda:{(worker_rank if rank is None else rank) % cuda_count}"


def _visible(env: Mapping[str, str]) -> str:
    """The CUDA_VISIBLE_DEVICES part of a message: it is the usual reason for fewer GPUs than expected."""
    return f" (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r})" if "CUDA_VISIBLE_DEVICES" in env else ""


def _no_cuda_cause(env: Mapping[str, str]) -> str:
    """Why torch sees no GPU, as far as the process can tell."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is built without CUDA"
    return f"torch sees no CUDA device on this host{_visible(env)}"


def cuda_count() -> int:
    """GPUs torch can use: none when CUDA cannot initialize, even if the driver lists devices."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def device_for_rank(setting: str, worker_rank: int) -> str:
    """This process's device from os.environ and torch.cuda; logs where it runs and why."""
    device = choose_device(setting, worker_rank, os.environ, cuda_count())
    gpu = f" ({torch.cuda.get_device_name(device)})" if device != "cpu" else ""
    log.info("placement: worker rank %d on host %s uses %s%s; %s", worker_rank, socket.gethostname(), device,
             gpu, _reason(setting, device, worker_rank, os.environ))
    return device


def _reason(setting: str, device: str, worker_rank: int, env: Mapping[str, str]) -> str:
    """Why ``choose_device`` gave ``device``, for the placement log line."""
    if setting == "auto" and device == "cpu":
        return f"{SETTING} = 'auto' and no CUDA device"
    if setting not in ("auto", "cuda"):
        return f"{SETTING} = {setting!r}"
    rank, var = local_rank(env)
    if var is None:
        return f"no local-rank variable set ({', '.join(LOCAL_RANK_VARS)}): worker rank {worker_rank} used instead"
    return f"local rank {rank} from {var}"


def placement_report(comm, device: str) -> list[tuple[str, str]]:
    """Every worker rank's ``(host, device)`` (indexed by rank), gathered over the worker communicator
    ``comm`` (collective); rank 0 logs the table and warns about GPUs that several ranks share."""
    table = comm.allgather((socket.gethostname(), device))
    if comm.Get_rank() == 0:
        log.info("placement of the %d worker rank(s):\n%s", len(table),
                 "\n".join(f"  rank {r}: {host} {dev}" for r, (host, dev) in enumerate(table)))
        for (host, dev), ranks in shared_gpus(table).items():
            log.warning("placement: worker ranks %s share %s on host %s (more worker ranks than GPUs on the "
                        "node?): they compete for its memory and compute", ranks, dev, host)
    return table


def shared_gpus(table: list[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
    """``(host, GPU)`` -> the worker ranks on it, for GPUs used by more than one rank."""
    users = defaultdict(list)
    for rank, (host, device) in enumerate(table):
        if device != "cpu":  # CPU ranks share the cores by design
            users[host, device].append(rank)
    return {key: ranks for key, ranks in users.items() if len(ranks) > 1}
