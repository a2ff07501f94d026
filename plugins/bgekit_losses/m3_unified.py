"""BGE-M3's unified fine-tuning loss with self-knowledge distillation.

Follows the M3 paper (arXiv:2402.03216, section 3.2) as FlagEmbedding
implements it. With s_d, s_s, s_c the dense, sparse and colbert scores
divided by the temperature:

    ensemble  s_e = w_d * s_d + w_s * s_s + w_c * s_c
    L         = (L(s_d) + L(s_e) + k * L(s_s) + L(s_c)) / 4
    L_distill = (D(s_d) + k * D(s_s) + D(s_c)) / 3,  D(s) = CE(softmax(s_e).detach(), softmax(s))
    total     = (L + L_distill) / 2   once self-distillation is on, else L

``k`` (``sparse_loss_scale``, 0.1) damps the sparse terms: lexical scores
are on a larger scale than cosine similarities. L is InfoNCE over the batch,
or with teacher scores and ``kd_loss_type`` set, FlagEmbedding's teacher
variant of it. With cross-device negatives every head scores this rank's
queries against all ranks' passages, so every term (the ensemble and
self-distillation included) sees the global batch as one process would;
a head that stayed local (``gatherable = False``) confines the ensemble and
distillation to this rank's passages, as FlagEmbedding does for all but dense.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bgekit_losses.common import (
    LossOutput,
    aligned_targets,
    contrastive_logits,
    group_scores,
    local_block,
    m3_kd_loss,
    require_heads,
    soft_cross_entropy,
    teacher_probabilities,
)

from bgekit_losses import KD_TYPES


class M3UnifiedLoss:
    """Dense + sparse + colbert + ensemble InfoNCE, with self-distillation from the ensemble."""

    def __init__(self, temperature: float = 0.02, dense_weight: float = 1.0, sparse_weight: float = 0.3,
                 colbert_weight: float = 1.0, sparse_loss_scale: float = 0.1, self_distill: bool = True,
                 self_distill_start_step: int = -1, in_batch_negatives: bool = True,
                 kd_loss_type: str = "none", teacher_temperature: float = 1.0) -> None:
        if kd_loss_type not in KD_TYPES:
            raise ValueError(f"kd_loss_type must be one of {', '.join(KD_TYPES)}, not {kd_loss_type!r}")
        self.temperature = temperature
        self.weights = {"dense": dense_weight, "sparse": sparse_weight, "colbert": colbert_weight}
        self.sparse_loss_scale = sparse_loss_scale
        self.self_distill = self_distill
        self.self_distill_start_step = self_distill_start_step
        self.in_batch_negatives = in_batch_negatives
        self.kd_loss_type = kd_loss_type
        self.teacher_temperature = teacher_temperature

    def _retrieval_loss(self, logits: torch.Tensor, labels: torch.Tensor, group_size: int,
                        teacher: torch.Tensor | None) -> torch.Tensor:
        """InfoNCE, or FlagEmbedding's teacher variant when teacher probabilities are given."""
        logits, labels = contrastive_logits(logits, labels, group_size, self.in_batch_negatives)
        if teacher is None:
            return F.cross_entropy(logits, labels)
        if self.kd_loss_type == "kl_div":
            own_group = group_scores(logits, labels, group_size)
            return soft_cross_entropy(own_group, teacher) + F.cross_entropy(logits, labels)
        return m3_kd_loss(logits, teacher, labels)

    def __call__(self, scores: dict[str, torch.Tensor], targets: torch.Tensor, group_size: int,
                 teacher_scores: torch.Tensor | None = None, step: int = 0) -> LossOutput:
        require_heads("m3-unified", scores, ["dense", "sparse", "colbert"])
        tau = self.temperature
        teacher = None
        if self.kd_loss_type != "none":
            teacher = teacher_probabilities(teacher_scores, targets.numel(), group_size,
                                            self.teacher_temperature, "m3-unified")
            teacher = teacher.to(scores["dense"])

        dense_all = scores["dense"] / tau  # may include other ranks' passages
        sparse = scores["sparse"] / tau
        colbert = scores["colbert"] / tau
        if sparse.size(1) == dense_all.size(1) == colbert.size(1):  # one process, or every head gathered
            dense, local_targets = dense_all, aligned_targets(dense_all, targets, group_size)
        else:  # a head scored local passages only: the ensemble and distillation stay on this rank's block
            dense, local_targets = local_block(dense_all, targets, group_size)
            sparse, _ = local_block(sparse, targets, group_size)
            colbert, _ = local_block(colbert, targets, group_size)
        ensemble = (self.weights["dense"] * dense + self.weights["sparse"] * sparse
                    + self.weights["colbert"] * colbert)

        losses = {
            "dense": self._retrieval_loss(dense_all, aligned_targets(dense_all, targets, group_size),
                                          group_size, teacher),
            "sparse": self._retrieval_loss(sparse, local_targets, group_size, teacher),
            "colbert": self._retrieval_loss(colbert, local_targets, group_size, teacher),
            "ensemble": self._retrieval_loss(ensemble, local_targets, group_size, teacher),
        }
        k = self.sparse_loss_scale
        loss = (losses["dense"] + losses["ensemble"] + k * losses["sparse"] + losses["colbert"]) / 4
        parts = {name: float(value.detach()) for name, value in losses.items()}

        if self.self_distill and step > self.self_distill_start_step:
            ens_logits, labels = contrastive_logits(ensemble, local_targets, group_size, self.in_batch_negatives)
            soft_targets = torch.softmax(ens_logits.detach(), dim=-1)

            def distill(student: torch.Tensor) -> torch.Tensor:
                logits, _ = contrastive_logits(student, local_targets, group_size, self.in_batch_negatives)
                return soft_cross_entropy(logits, soft_targets)

            distilled = (distill(dense) + k * distill(sparse) + distill(colbert)) / 3
            loss = (loss + distilled) / 2
            parts["self_distill"] = float(distilled.detach())
        return LossOutput(loss=loss, parts=parts)
