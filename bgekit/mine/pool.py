"""The candidate pool: every distinct passage a negative may be drawn from.

The pool is a pool file (JSONL, ``{"text": ...}`` per line, as FlagEmbedding's
``candidate_pool``) or, without one, the union of the dataset's passages
(positives and existing negatives). Passages are de-duplicated after
collapsing whitespace. Every positive is indexed too, even when the pool file
lacks it: that is how positives get scores for the margin filters, and ranks
count it, but only pool passages are ever chosen as negatives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from bgekit.data.example import Example, RowError
from bgekit.data.jsonlines import iter_jsonl_records
from bgekit.errors import BgekitError


def same_text_key(text: str) -> str:
    """What two passages must share to count as identical: their words, whitespace collapsed."""
    return " ".join(text.split())


@dataclass
class Pool:
    """Distinct indexed texts; ``eligible[i]`` says text i may become a negative."""

    texts: list[str] = field(default_factory=list)
    eligible: list[bool] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict, repr=False)

    def add(self, text: str, eligible: bool) -> int:
        key = same_text_key(text)
        if not key:
            return -1
        index = self._ids.get(key)
        if index is None:
            index = self._ids[key] = len(self.texts)
            self.texts.append(text)
            self.eligible.append(eligible)
        elif eligible:
            self.eligible[index] = True
        return index

    def id_of(self, text: str) -> int | None:
        return self._ids.get(same_text_key(text))

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def eligible_ids(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.eligible, dtype=bool))

    @classmethod
    def build(cls, examples: Sequence[Example], pool_texts: Iterable[str] | None = None) -> "Pool":
        """A pool file's texts (or every dataset passage), then the positives as scoring-only."""
        pool = cls()
        if pool_texts is None:
            for ex in examples:
                for text in [*ex.pos, *ex.neg]:
                    pool.add(text, eligible=True)
        else:
            for text in pool_texts:
                pool.add(text, eligible=True)
        for ex in examples:
            for text in ex.pos:
                pool.add(text, eligible=False)
        if not len(pool.eligible_ids):
            raise BgekitError("the candidate pool is empty: give a --corpus with passages, or data with passages")
        return pool


def read_pool_file(path: str | Path) -> list[str]:
    """Texts of a JSONL pool file: ``{"text": ...}`` per line (a ``title`` is put in front)."""
    texts: list[str] = []
    for item in iter_jsonl_records(path):
        if isinstance(item, RowError):
            raise BgekitError(f"{item}; pool lines look like {{\"text\": \"a passage\"}}")
        line_number, row = item
        text, title = row.get("text"), row.get("title")
        if not isinstance(text, str):
            raise BgekitError(f"{path}:{line_number}  $.text  expected a string; pool lines look like "
                              "{\"text\": \"a passage\"}")
        texts.append(f"{title} {text}".strip() if isinstance(title, str) and title.strip() else text)
    if not texts:
        raise BgekitError(f"{path}: the candidate pool file holds no passages")
    return texts
