"""What a miner plugin supplies: a way to rank the pool for a batch of queries.

A miner plugin's factory returns a :class:`Retriever`; the engine
(:mod:`bgekit.mine.engine`) owns everything else — the window, exclusions,
score filters, sampling and filling — so every miner behaves the same way
around its ranking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bgekit.mine.settings import MiningSettings


@dataclass
class MiningContext:
    """What a run hands a miner besides its recipe parameters.

    ``model`` is a model directory; ``embedder`` an already-loaded model (the
    trainer's refresh passes its checkpoint this way), which wins over ``model``.
    """

    model: str | None = None
    embedder: Any = None
    device: str = "auto"
    batch_size: int = 64
    query_max_length: int | None = None
    passage_max_length: int | None = None
    cache_dir: Path | None = None


class Retriever(ABC):
    """Ranks indexed passages for queries. Ids are positions in :meth:`index`'s list.

    ``has_scores`` is False for miners whose ranking carries no meaningful
    score (random); score filters and ``neg_scores`` then cannot be used.
    """

    has_scores: bool = True
    settings: MiningSettings

    @abstractmethod
    def index(self, passages: Sequence[str]) -> None:
        """Prepare to rank ``passages`` (encode, build an index)."""

    @abstractmethod
    def encode_queries(self, queries: Sequence[str]) -> Any:
        """Whatever :meth:`search` and :meth:`score` need to know about the queries."""

    @abstractmethod
    def search(self, queries: Any, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (Q, depth), best first; ``-1`` pads rows with fewer hits."""

    @abstractmethod
    def score(self, queries: Any, ids: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Score of query i against each passage in ``ids[i]``."""

    def describe(self) -> dict[str, Any]:
        """Settings worth printing and fingerprinting (index type, heads, ...)."""
        return {}
