"""Padding tensors of different widths to one shape: heads concatenating chunks, ranks gathering passages."""

from __future__ import annotations

from typing import Sequence

import torch


def pad_to(tensor: torch.Tensor, shape: Sequence[int], value: float | int | bool = 0) -> torch.Tensor:
    """``tensor`` padded with ``value`` at the end of every dimension to ``shape``."""
    if tuple(tensor.shape) == tuple(shape):
        return tensor
    widths: list[int] = []
    for have, want in reversed(list(zip(tensor.shape, shape))):
        widths += [0, want - have]
    if tensor.dtype == torch.bool:
        return torch.nn.functional.pad(tensor.to(torch.uint8), widths, value=int(value)).bool()
    return torch.nn.functional.pad(tensor, widths, value=value)


def pad_and_cat(tensors: Sequence[torch.Tensor], value: float | int | bool = 0) -> torch.Tensor:
    """Concatenate along dim 0 after padding every other dim at its end to the largest size.

    A part's slice of the result is ``result[rows][: part.shape[1], ...]`` (see :func:`bgekit.models.head.part_of`).
    """
    if len(tensors) == 1:
        return tensors[0]
    widest = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    return torch.cat([pad_to(t, [t.shape[0], *widest], value) for t in tensors], dim=0)
