"""Sharing in-batch negatives across data-parallel ranks."""

from __future__ import annotations

import torch


def gather_across_ranks(local: torch.Tensor) -> torch.Tensor:
    """Concatenate ``local`` from every rank along dim 0, rank order.

    ``all_gather`` carries no gradient, so this rank's slot is replaced by
    ``local`` itself: gradients flow to this rank's passages, the other
    ranks' passages act as constant negatives. Without an initialised
    process group (one process) it returns ``local`` unchanged.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    gathered = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local.contiguous())
    gathered[dist.get_rank()] = local
    return torch.cat(gathered, dim=0)
