"""BM25 over passages in Chinese and English, for hard negatives.

Text is cut into runs of CJK and of other characters: CJK runs are segmented
with jieba, other runs split into words, lower-cased, stop words dropped and
stemmed with the Snowball English stemmer (PyStemmer). Indexing and retrieval
are bm25s's.
"""

from __future__ import annotations

import re
from typing import Sequence

from bgekit.errors import BgekitError

_RUNS = re.compile(r"([\u3400-\u9fff\uf900-\ufaff]+)|([A-Za-z0-9\u00c0-\u024f]+)")
INSTALL_HINT = "pip install 'bgekit[pairs]'"


def _require():
    try:
        import bm25s
        import jieba
        import Stemmer
    except ImportError as exc:
        raise BgekitError(f"BM25 hard negatives need bm25s, jieba and PyStemmer ({exc.name} is missing): "
                          f"{INSTALL_HINT}") from None
    jieba.setLogLevel(60)  # jieba prints its dictionary loading otherwise
    return bm25s, jieba, Stemmer


class MixedTokenizer:
    """Chinese through jieba, English through a stemmer."""

    def __init__(self) -> None:
        _, self._jieba, stemmer_mod = _require()
        from bm25s.stopwords import STOPWORDS_EN

        self._stem = stemmer_mod.Stemmer("english").stemWord
        self._stop = set(STOPWORDS_EN)

    def __call__(self, text: str) -> list[str]:
        tokens: list[str] = []
        for cjk, other in _RUNS.findall(text):
            if cjk:
                tokens.extend(t for t in self._jieba.lcut(cjk) if t.strip())
            else:
                word = other.lower()
                if word not in self._stop:
                    tokens.append(self._stem(word))
        return tokens


class Bm25Index:
    """A BM25 index over ``texts``; :meth:`search` gives indices, best first."""

    def __init__(self, texts: Sequence[str]) -> None:
        bm25s, _, _ = _require()
        self.tokenize = MixedTokenizer()
        self.size = len(texts)
        self.model = bm25s.BM25()
        self.model.index([self.tokenize(t) or ["<empty>"] for t in texts], show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        k = min(k, self.size)
        if k <= 0 or not queries:
            return [[] for _ in queries]
        tokens = [self.tokenize(q) or ["<empty>"] for q in queries]
        docs, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [[int(d) for d, s in zip(row, srow) if s > 0] for row, srow in zip(docs, scores)]
