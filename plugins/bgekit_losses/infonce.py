"""InfoNCE: softmax cross-entropy of each query's positive against its negatives."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bgekit_losses.common import LossOutput, aligned_targets, contrastive_logits, require_heads


class InfoNCELoss:
    """Cross-entropy over ``scores / temperature`` of one head.

    Negatives are the query's hard negatives plus, with
    ``in_batch_negatives``, every other passage in the batch (and on other
    ranks when the trainer gathers them).
    """

    def __init__(self, head: str = "dense", temperature: float = 0.02, in_batch_negatives: bool = True) -> None:
        self.head = head
        self.temperature = temperature
        self.in_batch_negatives = in_batch_negatives

    def __call__(self, scores: dict[str, torch.Tensor], targets: torch.Tensor, group_size: int,
                 teacher_scores: Any = None, step: int = 0) -> LossOutput:
        require_heads("infonce", scores, [self.head])
        head_scores = scores[self.head]
        labels = aligned_targets(head_scores, targets, group_size)
        logits, labels = contrastive_logits(head_scores, labels, group_size, self.in_batch_negatives)
        loss = F.cross_entropy(logits / self.temperature, labels)
        return LossOutput(loss=loss, parts={self.head: float(loss.detach())})
