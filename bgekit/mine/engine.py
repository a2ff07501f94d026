"""Mining hard negatives for a list of examples with any :class:`Retriever`.

The miner ranks; this module decides. For each batch of queries it asks the
miner for the top ``range[1]`` passages, picks negatives per query
(:mod:`bgekit.mine.select`), fills rows that came up short at random from
the pool, and returns new examples whose ``neg`` is replaced. Old teacher
scores no longer match the new negatives, so they are dropped, unless the
miner's own scores are asked for (``with_scores``), which then replace them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from bgekit.data.example import Example
from bgekit.errors import BgekitError
from bgekit.mine.pool import Pool
from bgekit.mine.retriever import Retriever
from bgekit.mine.select import Choice, choose_from_window, fill_at_random
from bgekit.mine.settings import MiningSettings


@dataclass
class MiningStats:
    """What a mining run did, for the summary a user reads."""

    rows: int = 0
    negatives: int = 0
    filled_rows: int = 0
    filled_negatives: int = 0
    short_rows: int = 0
    dropped_teacher_scores: int = 0
    pool_size: int = 0
    index_seconds: float = 0.0
    search_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.index_seconds + self.search_seconds

    @property
    def queries_per_second(self) -> float:
        return self.rows / self.search_seconds if self.search_seconds > 0 else float("nan")


def check_compatible(retriever: Retriever, settings: MiningSettings, name: str = "this miner") -> None:
    """Score filters and written scores need a miner whose ranking has scores."""
    if not retriever.has_scores and (settings.filters_by_score or settings.with_scores):
        raise BgekitError(f"{name} ranks without scores: max_score, absolute_margin, relative_margin and "
                          "with_scores need a scoring miner (dense or bm25)")


def mine_examples(examples: Sequence[Example], retriever: Retriever, pool: Pool, settings: MiningSettings,
                  progress: Callable[[int], None] | None = None) -> tuple[list[Example], MiningStats]:
    """New examples with mined negatives, in input order, and what happened."""
    check_compatible(retriever, settings)
    if not retriever.has_scores:
        # an unscored ranking (random) says nothing about relevance: no ranks to skip
        settings = dataclasses.replace(settings, range=(0, settings.range[1] - settings.range[0]))
    stats = MiningStats(rows=len(examples), pool_size=int(len(pool.eligible_ids)))
    started = time.perf_counter()
    retriever.index(pool.texts)
    stats.index_seconds = time.perf_counter() - started
    started = time.perf_counter()
    eligible = np.asarray(pool.eligible, dtype=bool)
    eligible_ids = pool.eligible_ids
    mined: list[Example] = []
    for first in range(0, len(examples), settings.query_batch_size):
        batch = examples[first:first + settings.query_batch_size]
        mined.extend(_mine_batch(batch, first, retriever, pool, eligible, eligible_ids, settings, stats))
        if progress is not None:
            progress(len(batch))
    stats.search_seconds = time.perf_counter() - started
    return mined, stats


def _mine_batch(batch: Sequence[Example], first_row: int, retriever: Retriever, pool: Pool, eligible: np.ndarray,
                eligible_ids: np.ndarray, settings: MiningSettings, stats: MiningStats) -> list[Example]:
    queries = retriever.encode_queries([ex.query for ex in batch])
    ranked_ids, ranked_scores = retriever.search(queries, settings.range[1])
    positive_ids = [[pool.id_of(p) for p in ex.pos] for ex in batch]
    positive_scores = None
    if settings.needs_positive_scores or settings.with_scores:
        positive_scores = retriever.score(queries, positive_ids)
    choices: list[Choice] = []
    fills: list[list[int]] = []
    for i, ex in enumerate(batch):
        rng = np.random.default_rng([settings.seed, first_row + i])  # per row: batching never changes results
        excluded = {pid for pid in positive_ids[i] if pid is not None}
        query_id = pool.id_of(ex.query)
        if query_id is not None:
            excluded.add(query_id)
        weakest = float(np.min(positive_scores[i])) if positive_scores is not None else None
        choice = choose_from_window(ranked_ids[i], ranked_scores[i], excluded, eligible,
                                    weakest if settings.needs_positive_scores else None, settings, rng)
        banned = excluded | set(ranked_ids[i].tolist()) | set(choice.ids)
        fill = fill_at_random(eligible_ids, banned, settings.num_negatives - len(choice.ids), rng)
        choices.append(choice)
        fills.append(fill)
    fill_scores = retriever.score(queries, fills) if settings.with_scores and any(fills) else None
    out: list[Example] = []
    for i, (ex, choice, fill) in enumerate(zip(batch, choices, fills)):
        ids = choice.ids + fill
        stats.negatives += len(ids)
        if fill:
            stats.filled_rows += 1
            stats.filled_negatives += len(fill)
        if len(ids) < settings.num_negatives:
            stats.short_rows += 1
        if settings.with_scores:
            scores = choice.scores + (fill_scores[i].tolist() if fill_scores is not None else [])
            new = dataclasses.replace(ex, neg=[pool.texts[j] for j in ids], neg_scores=[float(s) for s in scores],
                                      pos_scores=[float(s) for s in positive_scores[i]])
        else:
            if ex.pos_scores is not None or ex.neg_scores is not None:
                stats.dropped_teacher_scores += 1
            new = dataclasses.replace(ex, neg=[pool.texts[j] for j in ids], neg_scores=None, pos_scores=None)
        out.append(new)
    return out
