"""Pairwise losses: RankNet, and LambdaRank's |delta NDCG|-weighted RankNet."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bgekit_losses.common import LossOutput

from bgekit_rerank_losses.common import check_group_shapes


def pair_terms(logits: torch.Tensor, labels: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, G, G) logistic costs softplus(-sigma (s_i - s_j)) and the mask of pairs with label_i > label_j."""
    differences = logits.unsqueeze(2) - logits.unsqueeze(1)
    ordered = labels.unsqueeze(2) > labels.unsqueeze(1)
    return F.softplus(-sigma * differences), ordered


def delta_ndcg(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(Q, G, G) |change in NDCG| if passages i and j swapped places in the ranking by ``logits``.

    Gains are 2^label - 1, the discount of rank r (1 = top) is 1/log2(1 + r),
    and the ideal DCG sorts the group by label. Ties in ``logits`` rank the
    earlier passage first. A group without a relevant passage gets 0.
    """
    with torch.no_grad():
        labels = labels.to(torch.float32)
        gains = torch.pow(2.0, labels) - 1.0
        order = torch.argsort(logits.detach().float(), dim=-1, descending=True, stable=True)
        ranks = torch.empty_like(order)
        positions = torch.arange(1, logits.size(-1) + 1, device=logits.device).expand_as(order)
        ranks.scatter_(-1, order, positions)
        discounts = 1.0 / torch.log2(1.0 + ranks.to(torch.float32))
        ideal_gains = torch.sort(gains, dim=-1, descending=True).values
        ideal_discounts = 1.0 / torch.log2(1.0 + positions.to(torch.float32))
        ideal_dcg = (ideal_gains * ideal_discounts).sum(-1, keepdim=True)
        swapped = (gains.unsqueeze(2) - gains.unsqueeze(1)) * (discounts.unsqueeze(2) - discounts.unsqueeze(1))
        return torch.where(ideal_dcg.unsqueeze(-1) > 0, swapped.abs() / ideal_dcg.clamp_min(1e-12).unsqueeze(-1),
                           torch.zeros_like(swapped))


class RankNetLoss:
    """Mean over every pair (i, j) of a group with label_i > label_j of log(1 + exp(-sigma (s_i - s_j)))."""

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = sigma

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, teacher_scores: torch.Tensor | None = None,
                 step: int = 0) -> LossOutput:
        check_group_shapes("ranknet", logits, labels)
        costs, ordered = pair_terms(logits, labels, self.sigma)
        loss = costs[ordered].mean() if ordered.any() else logits.sum() * 0.0
        return LossOutput(loss=loss, parts={"ranknet": float(loss.detach())})


class LambdaRankLoss:
    """Per group, the sum over pairs with label_i > label_j of |delta NDCG_ij| * RankNet cost; mean over groups.

    Its gradient with respect to s_i is LambdaRank's lambda: the RankNet
    gradient scaled by how much NDCG would change were i and j swapped. The
    weights come from the current ranking and are constants for the backward pass.
    """

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = sigma

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, teacher_scores: torch.Tensor | None = None,
                 step: int = 0) -> LossOutput:
        check_group_shapes("lambdarank", logits, labels)
        costs, ordered = pair_terms(logits, labels, self.sigma)
        weights = delta_ndcg(logits, labels).to(costs.dtype) * ordered
        loss = (weights * costs).sum((1, 2)).mean()
        return LossOutput(loss=loss, parts={"lambdarank": float(loss.detach())})
