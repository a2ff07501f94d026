"""ColBERT head: one normalised vector per token after CLS (multi-vector, late interaction).

Score = mean over a query's tokens of the best similarity among the
passage's tokens, padding excluded on both sides. Scoring every passage of a
corpus this way is slow, so in search the head only re-scores the candidates
the model's retrieving heads find (``retrieves = False``), as FlagEmbedding
does for M3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from bgekit.api import Head, TokenBatch, gather_padded, pad_and_cat


@dataclass
class TokenVectors:
    """Token vectors of a batch (CLS dropped) and which of them are real tokens."""

    vectors: torch.Tensor  # (B, L-1, D), zero at padding
    mask: torch.Tensor  # (B, L-1) bool


#: Elements of the (Q, P, Lq, Lp) similarity tensor computed at once; larger batches go in passage blocks.
SIMILARITY_BLOCK = 1 << 24


def _block_scores(q_vectors: torch.Tensor, q_mask: torch.Tensor, p_vectors: torch.Tensor,
                  p_mask: torch.Tensor) -> torch.Tensor:
    sims = torch.einsum("qid,pjd->qpij", q_vectors, p_vectors)
    sims = sims.masked_fill(~p_mask[None, :, None, :], float("-inf"))
    best = sims.amax(dim=-1)  # (Q, P, Lq)
    best = best.masked_fill(~q_mask[:, None, :] | ~p_mask.any(-1)[None, :, None], 0.0)
    n_tokens = q_mask.sum(-1, keepdim=True).clamp_min(1).to(best.dtype)  # (Q, 1)
    return best.sum(-1) / n_tokens


def late_interaction_scores(queries: TokenVectors, passages: TokenVectors) -> torch.Tensor:
    """(Q, P) mean over query tokens of the max similarity over passage tokens.

    The (Q, P, Lq, Lp) similarities are built a block of passages at a time
    (at most :data:`SIMILARITY_BLOCK` elements); with gradients on, each block
    is recomputed in the backward pass instead of kept, so memory stays one
    block's however large the batch (GradCache's full-batch loss relies on it).
    """
    q, lq = queries.mask.shape
    p, lp = passages.mask.shape
    block = max(1, SIMILARITY_BLOCK // max(1, q * lq * lp))
    if block >= p:
        return _block_scores(queries.vectors, queries.mask, passages.vectors, passages.mask)
    keep_graph = torch.is_grad_enabled() and (queries.vectors.requires_grad or passages.vectors.requires_grad)
    parts = []
    for start in range(0, p, block):
        args = (queries.vectors, queries.mask, passages.vectors[start:start + block],
                passages.mask[start:start + block])
        if keep_graph:
            parts.append(torch.utils.checkpoint.checkpoint(_block_scores, *args, use_reentrant=False))
        else:
            parts.append(_block_scores(*args))
    return torch.cat(parts, dim=1)


class ColbertHead(Head):
    """``Linear(h, colbert_dim)`` over every token but CLS; weights in ``colbert_linear.pt``."""

    weights_file = "colbert_linear.pt"
    gatherable = True
    retrieves = False
    hybrid_weight = 1.0

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

    def tensors(self, rep: TokenVectors) -> list[torch.Tensor]:
        return [rep.vectors]

    def with_tensors(self, rep: TokenVectors, tensors: Sequence[torch.Tensor]) -> TokenVectors:
        return TokenVectors(vectors=tensors[0], mask=rep.mask)

    def concat(self, reps: Sequence[TokenVectors]) -> TokenVectors:
        """Vectors and masks of the chunks, padded to the longest chunk (zero vectors, masked out)."""
        return TokenVectors(vectors=pad_and_cat([r.vectors for r in reps], 0.0),
                            mask=pad_and_cat([r.mask for r in reps], False))

    def gather(self, rep: TokenVectors) -> TokenVectors:
        """Every rank's token vectors and masks, padded to the longest rank."""
        return TokenVectors(vectors=gather_padded(rep.vectors, 0.0), mask=gather_padded(rep.mask, False))

    def export(self, rep: TokenVectors) -> list[np.ndarray]:
        vectors = rep.vectors.detach().float().cpu().numpy()
        mask = rep.mask.cpu().numpy()
        return [v[m] for v, m in zip(vectors, mask)]

    # -- search: late interaction over exported (tokens, D) arrays, candidates only --
    def score_candidates(self, queries: Sequence[np.ndarray], index: Sequence[np.ndarray],
                         candidates: np.ndarray) -> np.ndarray:
        """Late-interaction scores of each query with its candidates (Q, C)."""
        return late_interaction_numpy(queries, index, candidates)


def late_interaction_numpy(queries: Sequence[np.ndarray], passages: Sequence[np.ndarray],
                           candidates: np.ndarray) -> np.ndarray:
    """(Q, C) mean over query tokens of the best candidate-token similarity; one query at a time,
    its candidates' tokens stacked into one matrix product."""
    out = np.zeros(candidates.shape, np.float32)
    for i, (q, cands) in enumerate(zip(queries, candidates)):
        valid = cands[cands >= 0]
        if not len(valid) or not len(q):
            continue
        tokens = [passages[c] for c in valid]
        lengths = np.array([len(t) for t in tokens])
        nonempty = lengths > 0
        if not nonempty.any():
            continue
        stacked = np.concatenate([t for t in tokens if len(t)]).astype(np.float32)
        sims = q.astype(np.float32) @ stacked.T  # (Lq, total passage tokens)
        offsets = np.concatenate([[0], np.cumsum(lengths[nonempty])[:-1]])
        best = np.maximum.reduceat(sims, offsets, axis=1)  # (Lq, non-empty candidates)
        scores = np.zeros(len(valid), np.float32)
        scores[nonempty] = best.mean(axis=0)
        out[i, cands >= 0] = scores
    return out
