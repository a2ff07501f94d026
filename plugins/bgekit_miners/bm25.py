"""The ``bm25`` miner: lexical ranking with bm25s over jieba (Chinese) and stemmed (English) tokens.

Tokenisation is :class:`bgekit.data.lexical.MixedTokenizer`, the one
``bgekit data pairs`` uses, so both commands see text the same way.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bgekit.data.lexical import MixedTokenizer
from bgekit.mine.retriever import Retriever
from bgekit.mine.settings import MiningSettings



class Bm25Retriever(Retriever):
    """Scores every pool passage per query (bm25s's sparse score matrix) and keeps the best."""

    def __init__(self, settings: MiningSettings, context: Any = None, k1: float = 1.5, b: float = 0.75) -> None:
        self.tokenize = MixedTokenizer()  # says what to install when bm25s, jieba or PyStemmer is missing
        import bm25s

        self.settings = settings
        self.model = bm25s.BM25(k1=k1, b=b)
        self.size = 0

    def index(self, passages: Sequence[str]) -> None:
        self.size = len(passages)
        self.model.index([self.tokenize(t) or ["<empty>"] for t in passages], show_progress=False)

    def encode_queries(self, queries: Sequence[str]) -> list[list[str]]:
        return [self.tokenize(q) for q in queries]

    def _all_scores(self, tokens: list[str]) -> np.ndarray:
        ids = self.model.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(self.size, np.float32)
        return np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, queries: list[list[str]], depth: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(depth, self.size)
        ids = np.full((len(queries), depth), -1, np.int64)
        scores = np.zeros((len(queries), depth), np.float32)
        for i, tokens in enumerate(queries):
            row = self._all_scores(tokens)
            hits = np.flatnonzero(row > 0)  # no shared term: not retrieved
            order = hits[np.lexsort((hits, -row[hits]))][:depth]  # best first, ties by id
            ids[i, :len(order)] = order
            scores[i, :len(order)] = row[order]
        return ids, scores

    def score(self, queries: list[list[str]], ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return [self._all_scores(tokens)[np.asarray(row, np.int64)] if len(row) else np.zeros(0, np.float32)
                for tokens, row in zip(queries, ids)]

    def describe(self) -> dict[str, Any]:
        return {"k1": self.model.k1, "b": self.model.b}
