"""Exact search over encoded queries and passages, for each M3 head and their hybrid.

- dense: FAISS ``IndexFlatIP`` (exact inner product of normalised vectors);
- sparse: exact lexical matching, ``queries @ passages.T`` with scipy sparse
  matrices, in query blocks; passages sharing no token with the query are
  not retrieved (as an inverted index would not return them);
- colbert: late interaction (mean over query tokens of the best passage
  token), re-scoring the union of the dense and sparse top k (FlagEmbedding's
  approach); when the corpus has at most k passages every passage is a
  candidate, so the search is exact;
- hybrid: ``w_dense * dense + w_sparse * sparse + w_colbert * colbert`` over the
  same candidates, each score exact.

Every function returns ``(indices, scores)`` arrays of shape (Q, k); ``-1``
marks an empty slot. Order within a row is not defined here: callers sort
with :func:`bgekit.evaluate.judged.order_topk`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

#: score-matrix cells held at once when scoring blocks of queries
_BLOCK_CELLS = 1 << 24


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k highest entries of each row (unsorted); -inf entries become -1 slots."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.full((scores.shape[0], 0), -1, np.int64), np.zeros((scores.shape[0], 0), np.float32)
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, idx, axis=1)
    idx = np.where(np.isneginf(top), -1, idx)
    return idx.astype(np.int64), np.where(idx < 0, 0, top).astype(np.float32)


def dense_search(queries: np.ndarray, passages: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search with FAISS."""
    import faiss

    index = faiss.IndexFlatIP(passages.shape[1])
    index.add(np.ascontiguousarray(passages, dtype=np.float32))
    scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(passages)))
    return indices.astype(np.int64), scores


def lexical_matrix(weights: Sequence[dict[str, float]], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """Rows of {token: weight} as a CSR matrix; new tokens are added to ``vocabulary``."""
    indptr, cols, data = [0], [], []
    for row in weights:
        for token, weight in row.items():
            cols.append(vocabulary.setdefault(token, len(vocabulary)))
            data.append(weight)
        indptr.append(len(cols))
    return sp.csr_matrix((np.array(data, np.float32), np.array(cols, np.int64), np.array(indptr, np.int64)),
                         shape=(len(weights), max(len(vocabulary), 1)))


def lexical_matrices(queries: Sequence[dict[str, float]], passages: Sequence[dict[str, float]]):
    """Query and passage matrices over one shared vocabulary."""
    vocabulary: dict[str, int] = {}
    p = lexical_matrix(passages, vocabulary)
    q = lexical_matrix(queries, vocabulary)
    width = max(len(vocabulary), 1)
    p.resize((p.shape[0], width))
    return q, p


def sparse_search(queries: Sequence[dict[str, float]], passages: Sequence[dict[str, float]],
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact lexical search: sum over shared tokens of weight products."""
    q, p = lexical_matrices(queries, passages)
    pt = p.T.tocsr()
    block = max(1, _BLOCK_CELLS // max(p.shape[0], 1))
    out_idx, out_scores = [], []
    for start in range(0, q.shape[0], block):
        scores = (q[start:start + block] @ pt).toarray()
        scores[scores <= 0] = -np.inf  # no shared token: not retrieved
        idx, top = top_k(scores, k)
        out_idx.append(idx)
        out_scores.append(top)
    return np.concatenate(out_idx), np.concatenate(out_scores)


def union_candidates(*hits: np.ndarray) -> np.ndarray:
    """Per row, the distinct indices of several hit lists, padded with -1."""
    rows = [np.unique(np.concatenate([h[i] for h in hits])) for i in range(hits[0].shape[0])]
    rows = [r[r >= 0] for r in rows]
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), -1, np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def dense_scores(queries: np.ndarray, passages: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Inner products of each query with its candidates (Q, C)."""
    gathered = passages[np.maximum(candidates, 0)]  # (Q, C, H)
    return np.einsum("qh,qch->qc", queries.astype(np.float32), gathered)


def sparse_scores(queries: Sequence[dict[str, float]], passages: Sequence[dict[str, float]],
                  candidates: np.ndarray) -> np.ndarray:
    """Lexical scores of each query with its candidates (Q, C)."""
    q, p = lexical_matrices(queries, passages)
    rows = np.repeat(np.arange(candidates.shape[0]), candidates.shape[1])
    cols = np.maximum(candidates, 0).ravel()
    products = q[rows].multiply(p[cols]).sum(axis=1)
    return np.asarray(products, dtype=np.float32).reshape(candidates.shape)


def colbert_scores(queries: Sequence[np.ndarray], passages: Sequence[np.ndarray],
                   candidates: np.ndarray) -> np.ndarray:
    """Late-interaction scores of each query with its candidates (Q, C)."""
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
        out[i, : len(valid)] = scores  # candidates are -1-padded at the end
    return out


def rescore(candidates: np.ndarray, parts: dict[str, np.ndarray], weights: dict[str, float],
            k: int) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sum of per-head candidate scores, then the top k candidates per query."""
    total = sum(weights[name] * scores for name, scores in parts.items() if weights.get(name))
    total = np.where(candidates < 0, -np.inf, total)
    idx, top = top_k(total, k)
    return np.where(idx < 0, -1, np.take_along_axis(candidates, np.maximum(idx, 0), axis=1)), top
