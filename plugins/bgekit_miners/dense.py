"""The ``dense`` miner: rank the pool with an embedder's heads, one of them or a hybrid.

``mode`` works as in evaluation (:mod:`bgekit.evaluate.search`): a head that
retrieves (dense: a FAISS index, :mod:`bgekit.mine.vector_index`; sparse:
exact lexical matching) ranks the whole pool; a head that only re-scores
(colbert) and ``hybrid`` rank the union of the retrieving heads' top
``rescore_depth`` (all passages when the pool is no larger), as FlagEmbedding
does for M3; hybrid adds the heads' scores with ``weights``. Plugin heads take
part through the same :class:`~bgekit.models.head.Head` search interface.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from bgekit.api import (BgekitError, EmbeddingCache, HeadSearch, IndexConfig, MiningContext, MiningSettings, Retriever,
                        cache_key, model_fingerprint)

logger = logging.getLogger(__name__)


def _ranked(candidates: np.ndarray, scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row's candidates by score, best first, ties by id; keep ``depth``; ``-1`` pads."""
    scores = np.where(candidates < 0, -np.inf, scores)
    order = np.lexsort((candidates, -scores), axis=1)[:, :depth]
    ids = np.take_along_axis(candidates, order, axis=1)
    top = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isneginf(top), -1, ids), np.where(np.isneginf(top), 0.0, top).astype(np.float32)


class DenseRetriever(Retriever):
    """Encodes the pool once (cached on disk), then ranks query batches against it."""

    def __init__(self, settings: MiningSettings, context: MiningContext, mode: str = "dense",
                 weights: dict[str, float] | None = None, rescore_depth: int = 400, **index_params: Any) -> None:
        self.settings = settings
        self.context = context
        self.mode = mode
        self.rescore_depth = rescore_depth
        self.index_config = IndexConfig(**index_params)
        self.model = self._load_model()
        self.plan = HeadSearch(self.model.heads, mode, weights, what="miner.mode")
        self.heads = self.plan.needed
        self.passages: dict[str, Any] = {}
        self.size = 0

    def _load_model(self) -> Any:
        if self.context.embedder is not None:
            return self.context.embedder
        if not self.context.model:
            raise BgekitError("the dense miner needs a model: pass --model DIR (or set model.name_or_path)")
        from bgekit.api import Embedder, get_registry, select_backend

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
        self.plan.index(self.passages, self.index_config)

    def _encode_pool(self, passages: Sequence[str]) -> dict[str, Any]:
        cache = EmbeddingCache(self.context.cache_dir) if self.context.cache_dir and self.context.embedder is None \
            else None
        key = None
        if cache is not None:
            settings = {"heads": self.model.head_configs, "used": sorted(self.heads), "max_length": self._max_length(False),
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

    def search(self, queries: dict[str, Any], depth: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(depth, self.size)
        if self.plan.single:
            ids, scores = self.plan.first_stage(queries, depth)[0]
            return _ranked(ids, scores, depth)
        candidates = self.plan.candidates(queries, max(self.rescore_depth, depth))
        return _ranked(candidates, self.plan.score(queries, candidates), depth)

    def score(self, queries: dict[str, Any], ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        width = max((len(row) for row in ids), default=0)
        candidates = np.full((len(ids), width), -1, np.int64)
        for i, row in enumerate(ids):
            candidates[i, :len(row)] = row
        if width == 0:
            return [np.zeros(0, np.float32) for _ in ids]
        scores = self.plan.score(queries, candidates)
        return [scores[i, :len(row)] for i, row in enumerate(ids)]

    def describe(self) -> dict[str, Any]:
        out = self.plan.describe()
        backends = [ix.backend for ix in self.plan.indexes.values() if hasattr(ix, "backend")]
        if backends:
            out.update(index=self.index_config.index, search_backend=backends[0])
        return out
