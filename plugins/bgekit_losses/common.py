"""Pieces shared by the losses: the output record and the score bookkeeping.

Score matrices come from :meth:`bgekit.models.Embedder.forward`: row i is
query i, and query i's group (its positive first, then its hard negatives)
starts at column ``targets[i]``. With cross-device negatives a gathered
head's matrix holds every rank's passages (wider than ``Q * group_size``)
and this rank's block starts at column ``targets[0]``; a head that is not
gatherable stays local. Every loss is a mean over this rank's query rows,
so the mean over ranks (what the trainer logs) is the one-process loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bgekit.api import BgekitError, LossOutput  # noqa: F401  (LossOutput re-exported: older plugins import it from here)


def require_heads(loss_name: str, scores: dict[str, torch.Tensor], heads: list[str]) -> None:
    missing = [h for h in heads if h not in scores]
    if missing:
        raise BgekitError(
            f"loss '{loss_name}' needs the model heads {', '.join(heads)}, but the model has "
            f"{', '.join(scores) or 'none'}; add {', '.join(missing)} under model.heads"
        )


def aligned_targets(scores: torch.Tensor, targets: torch.Tensor, group_size: int) -> torch.Tensor:
    """Positive columns for this matrix: the trainer's (rank-offset) targets for a
    gathered matrix, re-based to column 0 for a head that stayed local."""
    if scores.size(1) == targets.numel() * group_size:
        return targets - targets[0]
    return targets


def local_block(scores: torch.Tensor, targets: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's (Q, Q*G) block of a possibly cross-device matrix, and targets into it."""
    width = targets.numel() * group_size
    offset = int(targets[0])
    if scores.size(1) == width:
        return scores, targets - offset
    return scores[:, offset:offset + width], targets - offset


def group_scores(scores: torch.Tensor, targets: torch.Tensor, group_size: int) -> torch.Tensor:
    """(Q, G) scores of each query against its own group only (positive in column 0)."""
    columns = targets.unsqueeze(1) + torch.arange(group_size, device=scores.device)
    return scores.gather(1, columns)


def contrastive_logits(scores: torch.Tensor, targets: torch.Tensor, group_size: int,
                       in_batch_negatives: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits and positive columns InfoNCE runs over: the whole batch, or each query's group."""
    if in_batch_negatives:
        return scores, targets
    return group_scores(scores, targets, group_size), torch.zeros_like(targets)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum(teacher * log_softmax(student)).

    This is KL(teacher || student) plus the teacher's entropy: the same
    gradients, and the value FlagEmbedding logs as its ``kl_div`` loss.
    """
    return -(teacher_probs * F.log_softmax(student_logits, dim=-1)).sum(-1).mean()


def m3_kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BGE-M3's listwise distillation over in-batch scores.

    For each member j of a query's group (its positive is j = 0), a
    cross-entropy that treats member j as the answer, with the members
    before it removed from the candidates, weighted by the teacher's
    probability of j; averaged over queries and summed over j.
    """
    group_size = teacher_probs.size(1)
    removed = torch.zeros_like(student_logits)
    floor = torch.finfo(student_logits.dtype).min
    total = student_logits.new_zeros(())
    for j in range(group_size):
        column = targets + j
        per_query = F.cross_entropy(student_logits + removed, column, reduction="none")
        total = total + (teacher_probs[:, j] * per_query).mean()
        removed = removed.scatter(1, column.unsqueeze(1), floor)
    return total


def teacher_probabilities(teacher_scores: torch.Tensor | None, queries: int, group_size: int,
                          temperature: float, loss_name: str) -> torch.Tensor:
    """softmax(teacher / temperature) over each query's group, after checking the shape."""
    if teacher_scores is None:
        raise BgekitError(
            f"loss '{loss_name}' needs teacher scores: give every training example 'pos_scores' and "
            "'neg_scores' (one per passage), or drop this loss"
        )
    if tuple(teacher_scores.shape) != (queries, group_size):
        raise BgekitError(
            f"loss '{loss_name}': teacher scores have shape {tuple(teacher_scores.shape)}, "
            f"expected ({queries}, {group_size}) (queries x group size)"
        )
    scores = teacher_scores.detach()
    if not scores.is_floating_point():
        scores = scores.float()
    return torch.softmax(scores / temperature, dim=-1)
