"""Metric names as users write them, computed over judged rankings.

Metrics are plugins (kind ``metric``); a metric plugin's factory returns a
:class:`RankingMetric`. :func:`compute` parses names such as ``ndcg@10``,
runs each metric over the queries in chunks (bounded memory for 100k queries
x 1000 results) and returns per-query values plus their aggregate: the plain
mean over evaluated queries (trec_eval's "all" line), or a weighted mean for
pooled metrics such as coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from bgekit.errors import BgekitError
from bgekit.evaluate.judged import Judged, judge_run
from bgekit.evaluate.trec import Qrels
from bgekit.registry import MetricSpec, Registry

#: rows per chunk when computing metrics
CHUNK_QUERIES = 8192


@dataclass(frozen=True)
class RankingMetric:
    """What a metric plugin's factory returns.

    ``per_query(judged, k)`` gives one value per query; ``weight(judged)``,
    when set, makes the aggregate a weighted mean instead of the plain mean.
    """

    per_query: Callable[[Judged, int | None], np.ndarray]
    weight: Callable[[Judged], np.ndarray] | None = None


@dataclass
class MetricValues:
    """Per-query values of several metrics over the same queries, and their aggregates."""

    qids: list[str]
    per_query: dict[str, np.ndarray]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    num_rel: np.ndarray | None = None
    num_ret: np.ndarray | None = None

    def aggregate(self, name: str) -> float:
        values = self.per_query[name]
        if not len(values):
            return 0.0
        weights = self.weights.get(name)
        if weights is None:
            return float(values.mean())
        total = weights.sum()
        return float((values * weights).sum() / total) if total > 0 else 0.0

    @property
    def names(self) -> list[str]:
        return list(self.per_query)

    def summary(self) -> dict[str, float]:
        return {name: self.aggregate(name) for name in self.per_query}


def canonical_name(written: str) -> str:
    """``NDCG @ 10`` -> ``ndcg@10``."""
    return written.replace(" ", "").lower()


def resolve(names: Sequence[str], registry: Registry | None = None) -> list[tuple[str, RankingMetric, int | None]]:
    """Each name parsed into (canonical name, metric, cut-off); unknown names fail with a suggestion."""
    if registry is None:
        from bgekit.plugins import get_registry

        registry = get_registry()
    out = []
    for written in names:
        name = canonical_name(written)
        try:
            spec, k = registry.metric(name)
        except BgekitError as exc:  # say what the user wrote, not only its lower-cased metric name
            raise BgekitError(f"metric '{written}': {exc}") from None
        assert isinstance(spec, MetricSpec)
        if k is not None and k < 1:
            raise BgekitError(f"metric '{written}': the cut-off must be at least 1")
        metric = spec.create()
        if not isinstance(metric, RankingMetric):
            raise BgekitError(f"metric plugin '{spec.name}' returned {type(metric).__name__}, not a RankingMetric")
        out.append((name, metric, k))
    if len({n for n, _, _ in out}) != len(out):
        raise BgekitError(f"metrics listed twice: {', '.join(names)}")
    return out


def compute(judged: Judged, names: Sequence[str], registry: Registry | None = None) -> MetricValues:
    """Per-query values of ``names`` (as users write them) over ``judged``."""
    metrics = resolve(names, registry)
    per_query: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in metrics}
    weights: dict[str, list[np.ndarray]] = {name: [] for name, m, _ in metrics if m.weight is not None}
    for start in range(0, len(judged), CHUNK_QUERIES):
        chunk = judged.rows(start, start + CHUNK_QUERIES)
        for name, metric, k in metrics:
            per_query[name].append(np.asarray(metric.per_query(chunk, k), dtype=np.float64))
            if metric.weight is not None:
                weights[name].append(np.asarray(metric.weight(chunk), dtype=np.float64))
    return MetricValues(
        qids=list(judged.qids),
        per_query={n: np.concatenate(v) if v else np.zeros(0) for n, v in per_query.items()},
        weights={n: np.concatenate(v) for n, v in weights.items()},
        num_rel=judged.num_rel,
        num_ret=judged.num_ret,
    )


def evaluate_run(run: Mapping[str, Mapping[str, float]], qrels: Qrels, names: Sequence[str],
                 *, complete: bool = False, registry: Registry | None = None) -> MetricValues:
    """Metrics of a dict run (``qid -> docid -> score``) against qrels, the trec_eval way."""
    return compute(judge_run(run, qrels, complete=complete), names, registry)
