"""Listwise softmax cross-entropy over each group: how BGE rerankers are fine-tuned."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bgekit_losses.common import LossOutput

from bgekit_rerank_losses.common import check_group_shapes


class ListwiseCrossEntropy:
    """-sum_j y_j log softmax(s / T)_j per group, y = labels / sum(labels).

    With the usual labels (the positive first with 1, negatives 0) this is
    ``cross_entropy(logits, 0)``, FlagEmbedding's reranker loss; graded
    labels spread the target over every relevant passage. Groups without a
    relevant passage carry no signal and are left out of the mean.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, teacher_scores: torch.Tensor | None = None,
                 step: int = 0) -> LossOutput:
        check_group_shapes("listwise-ce", logits, labels)
        labels = labels.to(logits.dtype).clamp_min(0)
        totals = labels.sum(-1, keepdim=True)
        has_relevant = totals.squeeze(-1) > 0
        target = labels / totals.clamp_min(torch.finfo(labels.dtype).tiny)
        per_query = -(target * F.log_softmax(logits / self.temperature, dim=-1)).sum(-1)
        loss = per_query[has_relevant].mean() if has_relevant.any() else logits.sum() * 0.0
        return LossOutput(loss=loss, parts={"listwise_ce": float(loss.detach())})
