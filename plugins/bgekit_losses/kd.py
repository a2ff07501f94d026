"""Knowledge distillation from teacher scores (``pos_scores`` / ``neg_scores``)."""

from __future__ import annotations

import torch

from bgekit_losses.common import (
    LossOutput,
    aligned_targets,
    group_scores,
    m3_kd_loss,
    require_heads,
    soft_cross_entropy,
    teacher_probabilities,
)

from bgekit_losses import METHODS


class DistillationLoss:
    """Pull one head's scores towards a teacher's distribution over each group.

    ``kl_div``: cross-entropy from softmax(teacher / teacher_temperature)
    to softmax(student / temperature) over the query's own group (Hinton et
    al.); add an ``infonce`` loss beside it for FlagEmbedding's kl_div
    recipe. ``m3_kd_loss``: BGE-M3's listwise variant over all in-batch
    scores, which needs no separate contrastive loss.
    """

    def __init__(self, head: str = "dense", method: str = "kl_div", temperature: float = 0.02,
                 teacher_temperature: float = 1.0) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self.head = head
        self.method = method
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature

    def __call__(self, scores: dict[str, torch.Tensor], targets: torch.Tensor, group_size: int,
                 teacher_scores: torch.Tensor | None = None, step: int = 0) -> LossOutput:
        require_heads("kd", scores, [self.head])
        student = scores[self.head] / self.temperature
        targets = aligned_targets(student, targets, group_size)
        teacher = teacher_probabilities(teacher_scores, targets.numel(), group_size,
                                        self.teacher_temperature, "kd").to(student)
        if self.method == "kl_div":
            loss = soft_cross_entropy(group_scores(student, targets, group_size), teacher)
        else:
            loss = m3_kd_loss(student, teacher, targets)
        return LossOutput(loss=loss, parts={f"kd_{self.head}": float(loss.detach())})
