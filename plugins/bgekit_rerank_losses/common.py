"""Shape checks shared by the reranker losses."""

from __future__ import annotations

import torch


def check_group_shapes(loss_name: str, logits: torch.Tensor, labels: torch.Tensor) -> None:
    """``logits`` and ``labels`` must both be (queries, group size)."""
    if logits.dim() != 2 or tuple(labels.shape) != tuple(logits.shape):
        raise ValueError(f"loss '{loss_name}': expected logits and labels of one shape (queries, group size), "
                         f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
