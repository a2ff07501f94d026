"""Distillation from a teacher reranker's scores over each group."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bgekit_losses.common import LossOutput, teacher_probabilities

from bgekit_rerank_losses.common import check_group_shapes


class RerankDistillationLoss:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over groups (Hinton et al.).

    Teacher scores are the ``pos_scores`` / ``neg_scores`` that ``bgekit
    score`` writes, following the sampled passages. Add ``listwise-ce`` beside
    it in the recipe to learn from the labels too.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, teacher_scores: torch.Tensor | None = None,
                 step: int = 0) -> LossOutput:
        check_group_shapes("rerank-kd", logits, labels)
        teacher = teacher_probabilities(teacher_scores, logits.size(0), logits.size(1), self.temperature,
                                        "rerank-kd").to(logits.dtype)
        student = F.log_softmax(logits / self.temperature, dim=-1)
        loss = F.kl_div(student, teacher, reduction="batchmean") * self.temperature ** 2
        return LossOutput(loss=loss, parts={"rerank_kd": float(loss.detach())})
