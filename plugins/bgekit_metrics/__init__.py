"""Built-in ranking metrics: recall, precision, mrr, ndcg, map, success, coverage, err, accuracy.

Formulas and their trec_eval counterparts are in :mod:`bgekit_metrics.ranking`.
"""

from __future__ import annotations

from bgekit.api import MetricSpec, hookimpl

NO_PARAMS: dict = {"properties": {}}


def _metric(per_query: str, weight: str | None):
    """The factory of a metric: its functions (numpy) are imported when a metric is built, so that listing
    plugins (and ``bgekit --help``, which loads them) stays light."""

    def build():
        from bgekit.api import RankingMetric
        from bgekit_metrics import ranking

        return RankingMetric(getattr(ranking, per_query), getattr(ranking, weight) if weight else None)

    return build


def _spec(name: str, summary: str, per_query: str, *, requires_k: bool = True, weight: str | None = None) -> MetricSpec:
    return MetricSpec(
        name=name,
        summary=summary,
        factory=_metric(per_query, weight),
        params_schema=NO_PARAMS,
        takes_k=True,
        requires_k=requires_k,
    )


@hookimpl
def bgekit_metrics():
    yield _spec("recall", "relevant documents in the top k over all relevant (trec_eval recall_k)", "recall")
    yield _spec("precision", "relevant documents in the top k over k (trec_eval P_k)", "precision")
    yield _spec("mrr", "reciprocal rank of the first relevant document within k (trec_eval recip_rank)",
                "mrr")
    yield _spec("ndcg", "graded nDCG with trec_eval's linear gain (trec_eval ndcg_cut_k)", "ndcg")
    yield _spec("map", "mean average precision, optionally cut at k (trec_eval map / map_cut_k)",
                "average_precision", requires_k=False)
    yield _spec("success", "1 when at least one relevant document is in the top k (trec_eval success_k)",
                "success")
    yield _spec("coverage", "share of all relevant documents, pooled over queries, found in the top k",
                "recall", weight="coverage_weight")
    yield _spec("err", "expected reciprocal rank (Chapelle et al. 2009), graded", "err")
    yield _spec("accuracy", "top-k accuracy as rerankers report it (accuracy@1: first result relevant)",
                "success")
