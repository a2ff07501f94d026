"""Ranking metrics over a :class:`~bgekit.api.Judged` matrix, vectorised.

Each function takes the judged rankings and a cut-off ``k`` (``None``: the
whole ranking) and returns one value per query. Where trec_eval defines the
metric the formula is trec_eval's, so values match pytrec_eval:

=============  =====================  ==============================================
bgekit         trec_eval              value per query
=============  =====================  ==============================================
precision@k    ``P_k``                relevant in top k / k (k even past the end)
recall@k       ``recall_k``           relevant in top k / all relevant
mrr@k          ``recip_rank`` at k    1 / rank of the first relevant within k
ndcg@k         ``ndcg_cut_k``         DCG / ideal DCG, gain = grade (negatives: 0),
                                      discount log2(rank + 1)
map@k, map     ``map_cut_k``, ``map``  sum of precision at relevant ranks / all relevant
success@k      ``success_k``          1 if any relevant in top k
=============  =====================  ==============================================

Not in trec_eval: ``coverage@k`` (relevant found in top k over all relevant,
pooled across queries: the mean of recall@k weighted by each query's relevant
count), ``err@k`` (expected reciprocal rank, Chapelle et al. 2009, with
R = (2^g - 1) / 2^g_max and g_max the highest grade in the qrels) and
``accuracy@k`` (top-k accuracy as rerankers report it: the same value as
success@k; ``accuracy@1`` is the share of queries whose first result is relevant).
"""

from __future__ import annotations

import numpy as np

from bgekit.api import Judged


def _hits(j: Judged, k: int | None) -> np.ndarray:
    return j.relevant(k).sum(axis=1, dtype=np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (trec_eval's value for queries with nothing relevant)."""
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _discount(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def precision(j: Judged, k: int | None) -> np.ndarray:
    assert k is not None
    return _hits(j, k) / k


def recall(j: Judged, k: int | None) -> np.ndarray:
    return _ratio(_hits(j, k), j.num_rel)


def success(j: Judged, k: int | None) -> np.ndarray:
    return (_hits(j, k) > 0).astype(np.float64)


def mrr(j: Judged, k: int | None) -> np.ndarray:
    rel = j.relevant(k)
    first = rel.argmax(axis=1)
    return np.where(rel.any(axis=1), 1.0 / (first + 1.0), 0.0)


def ndcg(j: Judged, k: int | None) -> np.ndarray:
    gains = np.maximum(j.grades[:, :k], 0).astype(np.float64)
    ideal = j.ideal[:, :k].astype(np.float64)
    dcg = gains @ _discount(gains.shape[1])
    idcg = ideal @ _discount(ideal.shape[1])
    return _ratio(dcg, idcg)


def average_precision(j: Judged, k: int | None) -> np.ndarray:
    rel = j.relevant(k)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    precision_at_hits = np.where(rel, np.cumsum(rel, axis=1) / ranks, 0.0)
    return _ratio(precision_at_hits.sum(axis=1), j.num_rel)


def err(j: Judged, k: int | None) -> np.ndarray:
    gains = np.maximum(j.grades[:, :k], 0).astype(np.float64)
    if j.max_grade <= 0 or gains.shape[1] == 0:
        return np.zeros(len(j))
    stop = (np.exp2(gains) - 1.0) / np.exp2(j.max_grade)
    reach = np.cumprod(1.0 - stop, axis=1)
    reach = np.concatenate([np.ones((len(j), 1)), reach[:, :-1]], axis=1)
    return (stop * reach / np.arange(1, gains.shape[1] + 1)).sum(axis=1)


def coverage_weight(j: Judged) -> np.ndarray:
    """Coverage pools over queries: each query counts by its number of relevant documents."""
    return j.num_rel.astype(np.float64)
