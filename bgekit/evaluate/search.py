"""Search over encoded queries and passages through the head interface: one head, or a hybrid of heads.

Each head knows how to search and score its own representation
(:meth:`bgekit.models.head.Head.index`, :meth:`~bgekit.models.head.Head.search`,
:meth:`~bgekit.models.head.Head.score_candidates`); this module only combines them, so a
plugin head is searched, re-scored and mixed into hybrids exactly like the built-in ones.

A *mode* is the name of one of the model's heads, or ``hybrid``:

- a head that retrieves (``Head.retrieves``) searches the whole corpus on its own;
- a head that does not (a re-scorer, like ColBERT's late interaction) ranks the union of
  the top k of every retrieving head of the model (FlagEmbedding's approach for M3);
- ``hybrid`` ranks the union of the top k of every retrieving head with a non-zero weight
  by the weighted sum of the scores of every head with a non-zero weight (BGE-M3's
  ensemble ``dense + 0.3 * sparse + colbert`` with the built-in heads' weights).

When the corpus has at most k passages every passage is a candidate, so re-scoring is
exact. Searches return ``(indices, scores)`` arrays of shape (Q, k), ``-1`` marking an
empty slot; order within a row is not defined here (callers sort, e.g. with
:func:`bgekit.evaluate.judged.order_topk`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from bgekit.errors import BgekitError
from bgekit.registry import did_you_mean

if TYPE_CHECKING:
    from bgekit.models.head import Head

HYBRID = "hybrid"
#: score-matrix cells held at once when scoring blocks of queries
BLOCK_CELLS = 1 << 24


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k highest entries of each row (unsorted); -inf entries become -1 slots."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.full((scores.shape[0], 0), -1, np.int64), np.zeros((scores.shape[0], 0), np.float32)
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, idx, axis=1)
    idx = np.where(np.isneginf(top), -1, idx)
    return idx.astype(np.int64), np.where(idx < 0, 0, top).astype(np.float32)


def inner_product_search(queries: np.ndarray, passages: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top k of vectors (FAISS flat index, on the CPU)."""
    from bgekit.mine.vector_index import IndexConfig, VectorIndex

    return VectorIndex(passages, IndexConfig(use_gpu=False)).search(queries, k)


def exhaustive_search(head: "Head", queries: Any, index: Any, size: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k by scoring every one of ``size`` passages with ``head.score_candidates``, a block of queries
    at a time; ``queries`` must be sliceable (a list or an array, as ``collate`` returns by default)."""
    n = len(queries)
    block = max(1, BLOCK_CELLS // max(size, 1))
    out_idx, out_scores = [], []
    for start in range(0, n, block):
        part = queries[start:start + block]
        candidates = np.broadcast_to(np.arange(size, dtype=np.int64), (len(part), size))
        idx, top = top_k(np.asarray(head.score_candidates(part, index, candidates), np.float32), k)
        out_idx.append(idx)
        out_scores.append(top)
    if not out_idx:
        return np.zeros((0, min(k, size)), np.int64), np.zeros((0, min(k, size)), np.float32)
    return np.concatenate(out_idx), np.concatenate(out_scores)


def union_candidates(*hits: np.ndarray) -> np.ndarray:
    """Per row, the distinct indices of several hit lists, ascending, padded with -1."""
    rows = [np.unique(np.concatenate([h[i] for h in hits])) for i in range(hits[0].shape[0])]
    rows = [r[r >= 0] for r in rows]
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), -1, np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def rescore(candidates: np.ndarray, total: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top k candidates per query by their (Q, C) scores ``total``; ``-1`` candidates never win."""
    total = np.where(candidates < 0, -np.inf, total)
    idx, top = top_k(total, k)
    return np.where(idx < 0, -1, np.take_along_axis(candidates, np.maximum(idx, 0), axis=1)), top


def default_weights(heads: Mapping[str, "Head"]) -> dict[str, float]:
    """Every head's own ``hybrid_weight``, in the model's head order."""
    return {name: float(getattr(head, "hybrid_weight", 1.0)) for name, head in heads.items()}


class HeadSearch:
    """A mode's plan over a model's heads: which heads find candidates, which score them, with what weight.

    ``heads`` maps head names to :class:`~bgekit.models.head.Head` objects
    (``Embedder.heads``); ``weights`` (hybrid only) override heads' own
    ``hybrid_weight``, by name. Use :attr:`needed` to know what to encode,
    :meth:`index` once with the encoded passages, then :meth:`search` or
    :meth:`candidates` + :meth:`score` per block of queries.
    """

    def __init__(self, heads: Mapping[str, "Head"], mode: str, weights: Mapping[str, float] | None = None,
                 what: str = "mode") -> None:
        names = list(heads)
        if mode != HYBRID and mode not in heads:
            raise BgekitError(f"{what} '{mode}': not a head of this model; choose one of "
                              f"{', '.join(names + [HYBRID])}{did_you_mean(mode, names + [HYBRID])}")
        self.heads, self.mode = heads, mode
        retrieving = [n for n in names if getattr(heads[n], "retrieves", True)]
        if mode == HYBRID:
            self.weights = self._hybrid_weights(weights or {})
            weighted = [n for n in names if self.weights.get(n)]
            self.retrievers = [n for n in weighted if n in retrieving] or retrieving
        else:
            self.weights = {mode: 1.0}
            self.retrievers = [mode] if mode in retrieving else retrieving
        if not self.retrievers:
            raise BgekitError(f"{what} '{mode}': no head of this model ({', '.join(names)}) retrieves "
                              "candidates from a whole corpus")
        #: a retrieving head searched on its own: its search scores are final, nothing is re-scored
        self.single = mode != HYBRID and self.retrievers == [mode]
        self.needed = [n for n in names if n in self.weights or n in self.retrievers]
        self.indexes: dict[str, Any] = {}
        self.size = 0

    def _hybrid_weights(self, given: Mapping[str, float]) -> dict[str, float]:
        names = list(self.heads)
        unknown = [n for n, w in given.items() if n not in self.heads and w]
        if unknown:
            raise BgekitError(f"hybrid weights name {', '.join(repr(n) for n in unknown)}, not a head of this "
                              f"model; its heads are {', '.join(names)}{did_you_mean(unknown[0], names)}")
        weights = {**default_weights(self.heads), **{n: float(w) for n, w in given.items() if n in self.heads}}
        if not any(weights.values()):
            raise BgekitError("hybrid weights are all zero; give at least one head a positive weight")
        return {n: w for n, w in weights.items() if w}

    def _call(self, name: str, method: str, *args: Any) -> Any:
        """``heads[name].method(*args)``; a head without that part of the search interface is a user error."""
        try:
            return getattr(self.heads[name], method)(*args)
        except NotImplementedError as exc:
            raise BgekitError(f"head '{name}' cannot be used for search here: {exc}") from None

    def index(self, passages: Mapping[str, Any], config: Any = None) -> None:
        """Index the encoded passages (``encode``'s output, one entry per needed head)."""
        self.indexes = {n: self._call(n, "index", passages[n], config) for n in self.needed}
        self.size = len(passages[self.needed[0]])

    def first_stage(self, queries: Mapping[str, Any], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each retrieving head's own top k (none from an empty corpus)."""
        if self.size == 0:
            n = len(queries[self.needed[0]])
            return [(np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)) for _ in self.retrievers]
        return [self._call(n, "search", queries[n], self.indexes[n], min(k, self.size)) for n in self.retrievers]

    def candidates(self, queries: Mapping[str, Any], depth: int) -> np.ndarray:
        """(Q, C) passages to re-score, ascending, ``-1`` padded: all of them when the corpus has at most
        ``depth``, else the union of the retrieving heads' top ``depth``."""
        n = len(queries[self.needed[0]])
        if self.size <= depth:
            return np.broadcast_to(np.arange(self.size, dtype=np.int64), (n, self.size)).copy()
        return union_candidates(*(idx for idx, _ in self.first_stage(queries, depth)))

    def score(self, queries: Mapping[str, Any], candidates: np.ndarray) -> np.ndarray:
        """(Q, C) weighted sum of the heads' scores of the candidates (``-1`` slots score anything)."""
        total = np.zeros(candidates.shape, np.float32)
        for name, weight in self.weights.items():
            part = self._call(name, "score_candidates", queries[name], self.indexes[name], candidates)
            total += np.float32(weight) * np.asarray(part, np.float32)
        return total

    def search(self, queries: Mapping[str, Any], k: int, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the top k per query, unsorted; re-scoring modes take candidates from the
        top ``depth`` (default k) of each retrieving head."""
        if self.single:
            return self.first_stage(queries, k)[0]
        candidates = self.candidates(queries, max(depth or k, k))
        return rescore(candidates, self.score(queries, candidates), k)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "heads": self.needed}
        if self.mode == HYBRID:
            out["weights"] = self.weights
        return out
