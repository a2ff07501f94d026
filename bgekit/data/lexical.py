"""BM25 over passages in any language, for hard negatives (``bgekit mine --miner bm25``, ``bgekit data pairs``).

Tokens: Han (Chinese) runs are segmented with jieba; every other run of
Unicode word characters (``\\w``: Latin, Cyrillic, Hangul, Arabic, kana,
digits, ...) is one word, lower-cased, with English stop words dropped and
stemmed by the Snowball stemmer of its script where PyStemmer has one
(English for Latin, Russian for Cyrillic, Arabic, Greek). Japanese kana runs,
Korean words and other scripts are kept as they are. Indexing and scoring are
bm25s's; :class:`Bm25Index` is the one wrapper both commands use.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from bgekit.errors import BgekitError

#: Han ideographs (CJK unified, extension A, compatibility, extensions B+ in the supplementary planes)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
#: a Han run, or a run of word characters that are not Han
_RUNS = re.compile(rf"([{_HAN}]+)|([^\W{_HAN}]+)")
#: Snowball stemmer for words of a script: (first code point, last code point, PyStemmer language)
_SCRIPT_STEMMERS = (
    (0x0041, 0x024F, "english"),   # Basic Latin to Latin Extended-B
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x04FF, "russian"),   # Cyrillic
    (0x0600, 0x06FF, "arabic"),
)
INSTALL_HINT = "pip install 'bgekit[pairs]'"
#: what an empty token list is indexed / searched as (bm25s needs at least one token)
EMPTY = "<empty>"


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


def _script_language(word: str) -> str | None:
    code = ord(word[0])
    for first, last, language in _SCRIPT_STEMMERS:
        if first <= code <= last:
            return language
    return None


class MixedTokenizer:
    """Chinese through jieba; words of every other script lower-cased and stemmed where a stemmer exists."""

    def __init__(self) -> None:
        _, self._jieba, stemmer_mod = _require()
        from bm25s.stopwords import STOPWORDS_EN

        available = set(stemmer_mod.algorithms())
        self._stemmers = {language: stemmer_mod.Stemmer(language).stemWord
                          for _, _, language in _SCRIPT_STEMMERS if language in available}
        self._stop = set(STOPWORDS_EN)

    def __call__(self, text: str) -> list[str]:
        tokens: list[str] = []
        for han, other in _RUNS.findall(text):
            if han:
                tokens.extend(t for t in self._jieba.lcut(han) if t.strip())
                continue
            word = other.lower()
            if word in self._stop:
                continue
            stem = self._stemmers.get(_script_language(word))
            tokens.append(stem(word) if stem else word)
        return tokens


class Bm25Index:
    """A bm25s index over ``texts``: every passage's score for a query, or the best ``k`` passages."""

    def __init__(self, texts: Sequence[str] = (), *, k1: float = 1.5, b: float = 0.75) -> None:
        bm25s, _, _ = _require()
        self.tokenize = MixedTokenizer()
        self.model = bm25s.BM25(k1=k1, b=b)
        self.size = 0
        if texts:
            self.index(texts)

    def index(self, texts: Sequence[str]) -> None:
        self.size = len(texts)
        self.model.index([self.tokenize(t) or [EMPTY] for t in texts], show_progress=False)

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every indexed passage for a tokenised query (0 where no term is shared)."""
        ids = self.model.get_tokens_ids(list(tokens))
        if not ids:
            return np.zeros(self.size, np.float32)
        return np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)

    def ranked(self, tokens: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` passages sharing a term with the query, best first (ties by index), and their scores."""
        row = self.scores(tokens)
        hits = np.flatnonzero(row > 0)
        order = hits[np.lexsort((hits, -row[hits]))][:max(k, 0)]
        return order, row[order]

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """For each query text, the indices of its best ``k`` passages (only those sharing a term)."""
        return [[int(i) for i in self.ranked(self.tokenize(q), k)[0]] for q in queries]
