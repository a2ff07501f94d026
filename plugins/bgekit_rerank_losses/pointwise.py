"""Pointwise binary cross-entropy: each pair judged on its own."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bgekit_losses.common import LossOutput

from bgekit_rerank_losses.common import check_group_shapes


class BinaryCrossEntropyLoss:
    """Mean over all pairs of BCE(sigmoid(s), min(label / max_label, 1))."""

    def __init__(self, max_label: float = 1.0) -> None:
        self.max_label = max_label

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, teacher_scores: torch.Tensor | None = None,
                 step: int = 0) -> LossOutput:
        check_group_shapes("bce", logits, labels)
        target = (labels.to(logits.dtype) / self.max_label).clamp(0.0, 1.0)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return LossOutput(loss=loss, parts={"bce": float(loss.detach())})
