"""Turning one query's ranking into its negatives: window, exclusions, filters, sampling, fill.

Ranks are positions in the ranking of every indexed passage (0 is the best),
as in FlagEmbedding's ``hn_mine.py``: ``range: [10, 210]`` looks at ranks
10..209, so a positive ranked 30th takes a place in the window (and is then
excluded). Candidates ranked above the window are never used, not even to fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np

from bgekit.mine.settings import MiningSettings


@dataclass
class Choice:
    """The negatives picked for one query; the last ``filled`` came from the random fill."""

    ids: list[int]
    scores: list[float]
    filled: int = 0


def passes_filters(score: float, positive_score: float | None, settings: MiningSettings) -> bool:
    """Whether a candidate's score is low enough not to look like a false negative."""
    if settings.max_score is not None and score > settings.max_score:
        return False
    if positive_score is not None:
        if settings.absolute_margin is not None and score > positive_score - settings.absolute_margin:
            return False
        if settings.relative_margin is not None and score > positive_score * (1 - settings.relative_margin):
            return False
    return True


def choose_from_window(ranked_ids: np.ndarray, ranked_scores: np.ndarray, excluded: Collection[int],
                       eligible: np.ndarray, positive_score: float | None, settings: MiningSettings,
                       rng: np.random.Generator) -> Choice:
    """The survivors of the window, best first (``top``) or a seeded sample (``random``)."""
    start, end = settings.range
    survivors: list[tuple[int, float]] = []
    for pid, score in zip(ranked_ids[start:end].tolist(), ranked_scores[start:end].tolist()):
        if pid < 0 or not eligible[pid] or pid in excluded:
            continue
        if not passes_filters(score, positive_score, settings):
            continue
        survivors.append((pid, score))
    if settings.sampling == "random" and len(survivors) > settings.num_negatives:
        picked = sorted(rng.choice(len(survivors), size=settings.num_negatives, replace=False).tolist())
        survivors = [survivors[i] for i in picked]
    survivors = survivors[:settings.num_negatives]
    return Choice([p for p, _ in survivors], [s for _, s in survivors])


def fill_at_random(eligible_ids: np.ndarray, banned: set[int], need: int, rng: np.random.Generator) -> list[int]:
    """Up to ``need`` distinct eligible ids outside ``banned``, uniformly at random."""
    if need <= 0 or not len(eligible_ids):
        return []
    if len(eligible_ids) <= 4 * (len(banned) + need):  # small pool: choose among what is allowed
        allowed = [int(i) for i in eligible_ids if int(i) not in banned]
        return [allowed[j] for j in rng.permutation(len(allowed))[:need].tolist()]
    out: list[int] = []
    seen = set(banned)
    while len(out) < need:  # large pool: rejection sampling; at least 3/4 of draws succeed
        pid = int(eligible_ids[rng.integers(len(eligible_ids))])
        if pid not in seen:
            seen.add(pid)
            out.append(pid)
    return out
