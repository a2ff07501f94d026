"""Sharing in-batch negatives across data-parallel ranks, gradients included.

:func:`gather_padded` concatenates a tensor from every rank with an
autograd-aware all-gather (``torch.distributed.nn.functional.all_gather``):
the backward pass sums, on each rank, the gradients every rank's loss sent
to that rank's slice. With DDP averaging parameter gradients, W ranks each
computing the mean loss of their own queries against all W ranks' passages
get exactly the gradients of one process computing the mean loss over the
whole global batch. Tensors whose non-batch dims differ between ranks
(ColBERT token vectors, sparse token weights) are padded at the end to the
largest rank first.
"""

from __future__ import annotations

import torch

from bgekit.models.padding import pad_to


def world_size() -> int:
    """Ranks in the default process group (1 without one)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size()


def gather_padded(local: torch.Tensor, pad_value: float | int | bool = 0) -> torch.Tensor:
    """Every rank's ``local`` concatenated along dim 0 in rank order, differentiable.

    Dims after the first are padded with ``pad_value`` at their end to the
    largest size over the ranks; dim 0 may differ between ranks too. Without
    a process group (one process) it returns ``local`` unchanged.
    """
    import torch.distributed as dist

    if world_size() == 1:
        return local
    from torch.distributed.nn.functional import all_gather

    shape = torch.tensor(local.shape, dtype=torch.long, device=local.device)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    shapes = [tuple(int(n) for n in s.tolist()) for s in shapes]
    widest = [max(s[d] for s in shapes) for d in range(local.dim())]  # dim 0 too: all_gather needs one shape
    padded = pad_to(local, widest, pad_value).contiguous()
    if padded.is_floating_point():
        parts = all_gather(padded)
    else:  # ids and masks carry no gradient; bool goes over the wire as uint8 (not every backend has bool)
        wire = padded.to(torch.uint8) if padded.dtype == torch.bool else padded
        parts = [torch.empty_like(wire) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, wire)
        parts = [p.to(padded.dtype) for p in parts]
    return torch.cat([part[: s[0]] for part, s in zip(parts, shapes)], dim=0)


def gather_across_ranks(local: torch.Tensor) -> torch.Tensor:
    """Kept for callers of earlier releases: :func:`gather_padded` of a fixed-shape tensor."""
    return gather_padded(local)
