"""ColBERT head: one normalised vector per token after CLS (multi-vector, late interaction).

Score = mean over a query's tokens of the best similarity among the
passage's tokens, padding excluded on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bgekit.models.head import Head, TokenBatch


@dataclass
class TokenVectors:
    """Token vectors of a batch (CLS dropped) and which of them are real tokens."""

    vectors: torch.Tensor  # (B, L-1, D), zero at padding
    mask: torch.Tensor  # (B, L-1) bool


def late_interaction_scores(queries: TokenVectors, passages: TokenVectors) -> torch.Tensor:
    """(Q, P) mean over query tokens of the max similarity over passage tokens."""
    sims = torch.einsum("qid,pjd->qpij", queries.vectors, passages.vectors)
    sims = sims.masked_fill(~passages.mask[None, :, None, :], float("-inf"))
    best = sims.amax(dim=-1)  # (Q, P, Lq)
    best = best.masked_fill(~queries.mask[:, None, :] | ~passages.mask.any(-1)[None, :, None], 0.0)
    n_tokens = queries.mask.sum(-1, keepdim=True).clamp_min(1).to(best.dtype)  # (Q, 1)
    return best.sum(-1) / n_tokens


class ColbertHead(Head):
    """``Linear(h, colbert_dim)`` over every token but CLS; weights in ``colbert_linear.pt``."""

    weights_file = "colbert_linear.pt"

    def __init__(self, hidden_size: int, colbert_dim: int = -1, normalize: bool = True) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, hidden_size if colbert_dim <= 0 else colbert_dim)
        self.normalize = normalize

    @property
    def module_for_weights(self) -> torch.nn.Module:
        return self.linear

    def represent(self, hidden: torch.Tensor, batch: TokenBatch) -> TokenVectors:
        mask = batch.attention_mask[:, 1:].bool()
        vectors = self.linear(hidden[:, 1:]) * mask.unsqueeze(-1).to(hidden.dtype)
        if self.normalize:
            vectors = F.normalize(vectors, dim=-1)
        return TokenVectors(vectors=vectors, mask=mask)

    def score(self, queries: TokenVectors, passages: TokenVectors) -> torch.Tensor:
        return late_interaction_scores(queries, passages)

    def export(self, rep: TokenVectors) -> list[np.ndarray]:
        vectors = rep.vectors.detach().float().cpu().numpy()
        mask = rep.mask.cpu().numpy()
        return [v[m] for v, m in zip(vectors, mask)]
