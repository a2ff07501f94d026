"""The ``bm25`` miner: lexical ranking with bm25s over Unicode-aware tokens (jieba for Chinese).

Indexing, tokenising and scoring are :class:`bgekit.api.Bm25Index`,
the one ``bgekit data pairs`` uses, so both commands see text the same way;
this module only adapts it to the miner interface.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bgekit.api import Bm25Index, MiningSettings, Retriever


class Bm25Retriever(Retriever):
    """Scores every pool passage per query and keeps the best (passages sharing no term are not retrieved)."""

    def __init__(self, settings: MiningSettings, context: Any = None, k1: float = 1.5, b: float = 0.75) -> None:
        self.bm25 = Bm25Index(k1=k1, b=b)  # says what to install when bm25s, jieba or PyStemmer is missing
        self.settings = settings

    @property
    def size(self) -> int:
        return self.bm25.size

    def index(self, passages: Sequence[str]) -> None:
        self.bm25.index(passages)

    def encode_queries(self, queries: Sequence[str]) -> list[list[str]]:
        return [self.bm25.tokenize(q) for q in queries]

    def search(self, queries: list[list[str]], depth: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(depth, self.size)
        ids = np.full((len(queries), depth), -1, np.int64)
        scores = np.zeros((len(queries), depth), np.float32)
        for i, tokens in enumerate(queries):
            order, found = self.bm25.ranked(tokens, depth)
            ids[i, :len(order)] = order
            scores[i, :len(order)] = found
        return ids, scores

    def score(self, queries: list[list[str]], ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return [self.bm25.scores(tokens)[np.asarray(row, np.int64)] if len(row) else np.zeros(0, np.float32)
                for tokens, row in zip(queries, ids)]

    def describe(self) -> dict[str, Any]:
        return {"k1": self.bm25.model.k1, "b": self.bm25.model.b}
