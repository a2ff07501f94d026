"""The ``dense`` miner: rank the pool with an embedder's heads (dense, sparse, colbert or a hybrid).

- ``mode: dense`` searches a FAISS index (:mod:`bgekit.mine.vector_index`);
- ``mode: sparse`` is exact lexical matching (a sparse matrix product);
- ``mode: colbert`` and ``mode: hybrid`` re-score the union of the dense and
  sparse top ``rescore_depth`` (all passages when the pool is no larger),
  as FlagEmbedding does for M3; hybrid adds the heads' scores with ``weights``.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from bgekit.errors import BgekitError
from bgekit.evaluate.search import colbert_scores, dense_scores, lexical_matrix, union_candidates
from bgekit.mine.cache import EmbeddingCache, cache_key, model_fingerprint
from bgekit.mine.retriever import MiningContext, Retriever
from bgekit.mine.settings import MiningSettings
from bgekit.mine.vector_index import IndexConfig, VectorIndex

from bgekit_miners.params import MODES

logger = logging.getLogger(__name__)


def _ranked(candidates: np.ndarray, scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row's candidates by score, best first, ties by id; keep ``depth``; ``-1`` pads."""
    scores = np.where(candidates < 0, -np.inf, scores)
    order = np.lexsort((candidates, -scores), axis=1)[:, :depth]
    ids = np.take_along_axis(candidates, order, axis=1)
    top = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isneginf(top), -1, ids), np.where(np.isneginf(top), 0.0, top).astype(np.float32)


def top_k_ranked(scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``depth`` best columns of each row of a full score matrix, best first."""
    depth = min(depth, scores.shape[1])
    part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth] if depth < scores.shape[1] \
        else np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return _ranked(np.ascontiguousarray(part), np.take_along_axis(scores, part, axis=1), depth)


class DenseRetriever(Retriever):
    """Encodes the pool once (cached on disk), then ranks query batches against it."""

    def __init__(self, settings: MiningSettings, context: MiningContext, mode: str = "dense",
                 weights: dict[str, float] | None = None, rescore_depth: int = 400, **index_params: Any) -> None:
        if mode not in MODES:
            raise BgekitError(f"miner.mode '{mode}': choose one of {', '.join(MODES)}")
        self.settings = settings
        self.context = context
        self.mode = mode
        self.rescore_depth = rescore_depth
        self.index_config = IndexConfig(**index_params)
        self.model = self._load_model()
        given = {"dense": 1.0, "sparse": 0.3, "colbert": 1.0, **(weights or {})}
        self.weights = {mode: 1.0} if mode != "hybrid" else {h: w for h, w in given.items() if w}
        missing = [h for h in self.weights if h not in self.model.heads]
        if missing:
            raise BgekitError(f"miner mode '{mode}' needs the {', '.join(missing)} head(s); the model has "
                              f"{', '.join(self.model.heads)}")
        self.candidate_heads = [h for h in ("dense", "sparse") if h in self.model.heads]
        needs_candidates = mode in ("colbert", "hybrid")
        self.heads = sorted(set(self.weights) | (set(self.candidate_heads) if needs_candidates else set()))
        self.passages: dict[str, Any] = {}
        self._vectors: VectorIndex | None = None
        self._vocabulary: dict[str, int] = {}
        self._passage_lexical_t: sp.csr_matrix | None = None
        self._passage_lexical: sp.csr_matrix | None = None
        self.size = 0

    def _load_model(self) -> Any:
        if self.context.embedder is not None:
            return self.context.embedder
        if not self.context.model:
            raise BgekitError("the dense miner needs a model: pass --model DIR (or set model.name_or_path)")
        from bgekit.devices import select_backend
        from bgekit.models import Embedder
        from bgekit.plugins import get_registry

        registry = get_registry()
        backend = select_backend(registry, self.context.device)
        model = Embedder.from_pretrained(self.context.model, registry=registry)
        return model.to(backend.device()).eval()

    def _max_length(self, is_query: bool) -> int:
        if is_query:
            return self.context.query_max_length or getattr(self.model, "query_max_length", 64)
        return self.context.passage_max_length or getattr(self.model, "passage_max_length", 512)

    def _encode(self, texts: Sequence[str], is_query: bool) -> dict[str, Any]:
        return self.model.encode(list(texts), is_query=is_query, batch_size=self.context.batch_size,
                                 max_length=self._max_length(is_query), heads=self.heads)

    # -- indexing -----------------------------------------------------------
    def index(self, passages: Sequence[str]) -> None:
        self.size = len(passages)
        self.passages = self._encode_pool(passages)
        if "dense" in self.heads:
            self._vectors = VectorIndex(self.passages["dense"], self.index_config)
        if "sparse" in self.heads:
            self._passage_lexical = lexical_matrix(self.passages["sparse"], self._vocabulary)
            self._passage_lexical_t = self._passage_lexical.T.tocsr()

    def _encode_pool(self, passages: Sequence[str]) -> dict[str, Any]:
        cache = EmbeddingCache(self.context.cache_dir) if self.context.cache_dir and self.context.embedder is None \
            else None
        key = None
        if cache is not None:
            settings = {"heads": self.model.head_configs, "used": self.heads, "max_length": self._max_length(False),
                        "instruction": getattr(self.model, "passage_instruction", "")}
            key = cache_key(model_fingerprint(self.context.model), settings, passages)
            found = cache.get(key)
            if found is not None and all(h in found for h in self.heads):
                logger.info("pool encodings read from the cache %s", cache.path(key))
                self.cache_hit = True
                return found
        self.cache_hit = False
        encoded = self._encode(passages, is_query=False)
        if cache is not None and key is not None:
            cache.put(key, encoded)
        return encoded

    # -- ranking ------------------------------------------------------------
    def encode_queries(self, queries: Sequence[str]) -> dict[str, Any]:
        return self._encode(queries, is_query=True)

    def _query_lexical(self, queries: dict[str, Any]) -> sp.csr_matrix:
        """Query weights over the pool's vocabulary (tokens no passage has cannot score)."""
        known = [{t: w for t, w in row.items() if t in self._vocabulary} for row in queries["sparse"]]
        vocabulary = dict(self._vocabulary)
        matrix = lexical_matrix(known, vocabulary)
        matrix.resize((matrix.shape[0], self._passage_lexical.shape[1]))
        return matrix

    def _sparse_search(self, queries: dict[str, Any], depth: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = self._query_lexical(queries)
        block = max(1, (1 << 24) // max(self.size, 1))  # rows of the (queries x pool) product held at once
        out_ids, out_scores = [], []
        for start in range(0, matrix.shape[0], block):
            scores = (matrix[start:start + block] @ self._passage_lexical_t).toarray()
            scores[scores <= 0] = -np.inf  # no shared token: not retrieved
            ids, top = top_k_ranked(scores, depth)
            out_ids.append(ids)
            out_scores.append(top)
        return np.concatenate(out_ids), np.concatenate(out_scores)

    def search(self, queries: dict[str, Any], depth: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(depth, self.size)
        if self.mode == "dense":
            return self._vectors.search(queries["dense"], depth)
        if self.mode == "sparse":
            return self._sparse_search(queries, depth)
        n = len(next(iter(queries.values())))
        if self.size <= max(self.rescore_depth, depth):
            candidates = np.broadcast_to(np.arange(self.size), (n, self.size)).copy()
        else:
            wide = max(self.rescore_depth, depth)
            hits = []
            if "dense" in self.candidate_heads:
                hits.append(self._vectors.search(queries["dense"], wide)[0])
            if "sparse" in self.candidate_heads:
                hits.append(self._sparse_search(queries, wide)[0])
            candidates = union_candidates(*hits)
        return _ranked(candidates, self._weighted_scores(queries, candidates), depth)

    def _weighted_scores(self, queries: dict[str, Any], candidates: np.ndarray) -> np.ndarray:
        total = np.zeros(candidates.shape, np.float32)
        for head, weight in self.weights.items():
            if head == "dense":
                part = dense_scores(queries["dense"], self.passages["dense"], candidates)
            elif head == "sparse":
                q = self._query_lexical(queries)
                rows = np.repeat(np.arange(candidates.shape[0]), candidates.shape[1])
                products = q[rows].multiply(self._passage_lexical[np.maximum(candidates, 0).ravel()]).sum(axis=1)
                part = np.asarray(products, dtype=np.float32).reshape(candidates.shape)
            else:
                part = colbert_scores(queries["colbert"], self.passages["colbert"], candidates)
            total += weight * part
        return total

    def score(self, queries: dict[str, Any], ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        width = max((len(row) for row in ids), default=0)
        candidates = np.full((len(ids), width), -1, np.int64)
        for i, row in enumerate(ids):
            candidates[i, :len(row)] = row
        if width == 0:
            return [np.zeros(0, np.float32) for _ in ids]
        scores = self._weighted_scores(queries, candidates)
        return [scores[i, :len(row)] for i, row in enumerate(ids)]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "heads": self.heads}
        if self.mode == "hybrid":
            out["weights"] = self.weights
        if self._vectors is not None:
            out.update(index=self.index_config.index, search_backend=self._vectors.backend)
        return out
