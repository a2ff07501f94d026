"""Who this process is in a (possibly) data-parallel run.

Under ``torchrun`` the environment holds ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; with more than one process the process group is started with
the device backend's collective library (nccl, hccl, gloo). A single process
needs none of it and runs as rank 0 of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from bgekit.devices import DeviceBackend


@dataclass(frozen=True)
class ProcessContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def all_reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over ranks (the value itself with one process)."""
        if not self.distributed:
            return value
        value = value.detach().clone()
        torch.distributed.all_reduce(value)
        return value / self.world_size

    def all_reduce_min(self, value: torch.Tensor) -> torch.Tensor:
        """The minimum of ``value`` over ranks (e.g. "every rank's step was finite")."""
        if not self.distributed:
            return value
        value = value.detach().to(torch.float32).clone()
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
        return value


def setup_process(backend: DeviceBackend) -> ProcessContext:
    """Read the torchrun environment, start the process group if needed, pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = backend.device(local_rank)
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend.distributed_backend,
                                             **backend.process_group_options(device))
    return ProcessContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def teardown_process(context: ProcessContext) -> None:
    if context.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
