"""Dense head: one pooled, L2-normalised vector per text (BGE-M3 uses CLS)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bgekit.api import Head, IndexConfig, TokenBatch, VectorIndex

from bgekit_heads import POOLINGS


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, H) hidden states -> (B, H) by CLS, masked mean, or last real token."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if pooling == "last-token":
        if bool(attention_mask[:, -1].all()):  # left padding (or no padding): the last column is real
            return hidden[:, -1]
        last = attention_mask.sum(1).long() - 1
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")


class DenseHead(Head):
    """Pooling over the last hidden states, optionally L2-normalised; scores are dot products."""

    gatherable = True
    retrieves = True
    hybrid_weight = 1.0

    def __init__(self, hidden_size: int, pooling: str = "cls", normalize: bool = True) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"dense head: pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.hidden_size = hidden_size
        self.pooling = pooling
        self.normalize = normalize

    def represent(self, hidden: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
        vectors = pool(hidden, batch.attention_mask, self.pooling)
        return F.normalize(vectors, dim=-1) if self.normalize else vectors

    def score(self, queries: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
        return queries @ passages.transpose(0, 1)

    def export(self, rep: torch.Tensor) -> list[np.ndarray]:
        return list(rep.detach().float().cpu().numpy())

    def collate(self, items: list[np.ndarray]) -> np.ndarray:
        return np.stack(items).astype(np.float32) if items else np.zeros((0, self.hidden_size), np.float32)

    # -- search: FAISS inner product over the (N, H) vectors --------------------
    def index(self, passages: np.ndarray, config: IndexConfig | None = None) -> VectorIndex:
        return VectorIndex(passages, config or IndexConfig(use_gpu=False))

    def search(self, queries: np.ndarray, index: VectorIndex, k: int) -> tuple[np.ndarray, np.ndarray]:
        return index.search(queries, k)

    def score_candidates(self, queries: np.ndarray, index: VectorIndex, candidates: np.ndarray) -> np.ndarray:
        """Inner products of each query with its candidates."""
        gathered = index.vectors[np.maximum(candidates, 0)]  # (Q, C, H)
        return np.einsum("qh,qch->qc", np.asarray(queries, np.float32), gathered)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling}, normalize={self.normalize}"
