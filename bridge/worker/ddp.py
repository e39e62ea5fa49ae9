"""Data-parallel training over the worker ranks (torch.distributed: gloo on CPU, NCCL on GPU).

Every rank owns a tile of the domain (``tunnel.worker_box``), receives only
that tile through the bridge and trains on it; this module keeps the ranks'
models identical without gathering any field: parameters are broadcast from
rank 0 at start, gradients are averaged in backward hooks, and the running
normalization statistics of all tiles are pooled when they freeze.  The
rendezvous address travels over the worker's MPI communicator, so no launcher
environment (MASTER_ADDR, ...) is needed.  With one rank nothing here runs.
"""
from __future__ import annotations

import datetime
import logging
import socket
from typing import cast

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


class DataParallel:
    """Lock-step helpers for ``size`` ranks; a no-op group when ``size == 1``."""

    def __init__(self, comm, device: torch.device, timeout: float):
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.device = device
        if self.size == 1:
            return
        address = None
        if self.rank == 0:
            with socket.socket() as s:  # a free port on rank 0's host
                s.bind(("", 0))
                address = f"tcp://{socket.gethostbyname(socket.gethostname())}:{s.getsockname()[1]}"
        address = comm.bcast(address, root=0)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=address, rank=self.rank, world_size=self.size,
                                timeout=datetime.timedelta(seconds=timeout))
        log.info("data parallel: rank %d/%d, backend %s, rendezvous %s", self.rank, self.size, backend, address)

    @property
    def active(self) -> bool:
        return self.size > 1

    def attach(self, model: torch.nn.Module) -> None:
        """Broadcast rank 0's weights, then average every gradient across ranks in backward."""
        if not self.active:
            return
        for p in model.parameters():
            dist.broadcast(p.data, src=0)
            if p.requires_grad:
                p.register_hook(self._average)

    def _average(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad / self.size

    def pool_statistics(self, module: torch.nn.Module) -> None:
        """Pool the running statistics (count, running_mean, m2) of every normalizer across ranks
        (Chan et al.'s parallel combination), so every rank ends with the statistics of all tiles.
        Called once, when the normalizers freeze; before that each rank normalizes with its own."""
        if not self.active:
            return
        for norm in module.modules():
            if not all(hasattr(norm, a) for a in ("count", "running_mean", "m2")):
                continue
            # the normalizer's buffers (tensors; torch types nn.Module.__getattr__ as Tensor | Module)
            count, running_mean, norm_m2 = (cast(torch.Tensor, getattr(norm, a))
                                            for a in ("count", "running_mean", "m2"))
            parts = [torch.stack([count, running_mean, norm_m2])]
            gathered = [torch.empty_like(parts[0]) for _ in range(self.size)]
            dist.all_gather(gathered, parts[0].contiguous())
            stats = torch.stack(gathered)  # (ranks, 3, channels)
            n, mean, m2 = stats[:, 0], stats[:, 1], stats[:, 2]
            total = n.sum(0)
            pooled = (n * mean).sum(0) / total.clamp_min(1)
            norm_m2.copy_((m2 + n * (mean - pooled) ** 2).sum(0))
            running_mean.copy_(pooled)
            count.copy_(total)

    def agree(self, ready: bool, stop: bool, surrogate: bool = True,
              pending: int = 0) -> tuple[bool, bool, bool, int]:
        """(every rank ready, some rank stopping, every rank wants a surrogate step, emulation requests
        every rank holds): the lock-step decision of one trainer iteration.  The surrogate step is
        collective (its backward averages gradients), and so is sampling (the bands exchange halos at
        every network call, models/bands.py), so whether to take them must be decided here, once for all
        ranks, and never re-read on one rank afterwards: the main thread may change a rank's mind meanwhile."""
        if not self.active:
            return ready, stop, surrogate, pending
        flags = torch.tensor([0 if ready else 1, 1 if stop else 0, 0 if surrogate else 1, -pending],
                             dtype=torch.int64, device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0] == 0), bool(flags[1] == 1), bool(flags[2] == 0), int(-flags[3])

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()
