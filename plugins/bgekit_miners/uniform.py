"""The ``random`` miner: negatives drawn uniformly from the pool.

Its "ranking" is a seeded random permutation per query, so exclusions and
sampling work as for any miner; as the ranking says nothing about relevance,
the engine keeps only the window's width (``[10, 210]`` draws from 200
random passages, none skipped). It has no scores, so score filters and
``with_scores`` are refused.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from bgekit.api import MiningSettings, Retriever


class RandomRetriever(Retriever):
    has_scores = False

    def __init__(self, settings: MiningSettings, context: Any = None) -> None:
        self.settings = settings
        self.size = 0

    def index(self, passages: Sequence[str]) -> None:
        self.size = len(passages)

    def encode_queries(self, queries: Sequence[str]) -> list[str]:
        return list(queries)

    def search(self, queries: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(depth, self.size)
        ids = np.empty((len(queries), depth), np.int64)
        for i, query in enumerate(queries):
            # seeded by the query text, so a query gets the same draw whatever batch it is in
            digest = hashlib.sha256(query.encode("utf-8")).digest()
            rng = np.random.default_rng([self.settings.seed, int.from_bytes(digest[:8], "little")])
            ids[i] = _sample_without_replacement(rng, self.size, depth)
        return ids, np.full(ids.shape, np.nan, np.float32)

    def score(self, queries: list[str], ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return [np.full(len(row), np.nan, np.float32) for row in ids]


def _sample_without_replacement(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.choice(n, size=k, replace=False) if k else np.zeros(0, np.int64)
