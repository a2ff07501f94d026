"""Rankings turned into relevance-grade matrices, the input of every metric.

Ordering follows trec_eval exactly: documents are sorted by score
descending, and equal scores by document id descending (byte-wise, as
``strcmp``); the ``rank`` column of a run file is ignored.

Which queries count, also as trec_eval does (without ``-c``): a query is
evaluated when it is both in the run and in the qrels. Queries only in the
run are skipped; queries only in the qrels are skipped (``complete=True``
counts them with an empty ranking, like ``trec_eval -c``). A query whose
judgements are all below the relevance level has no relevant documents; it is
evaluated and scores 0 on every metric, pulling the mean down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from bgekit.errors import BgekitError
from bgekit.evaluate.trec import Qrels, trec_order  # trec_order re-exported: it lives with the run format

#: trec_eval's default: grades >= 1 are relevant.
RELEVANCE_LEVEL = 1


@dataclass(frozen=True)
class Judged:
    """Per evaluated query (rows, in ``qids`` order), the grades of its ranking.

    ``grades[i, r]`` is the qrels grade of the document at rank ``r + 1`` for
    query ``i`` (0 when unjudged or past the end of the ranking); ``ideal``
    holds each query's positive grades from the qrels, highest first (0-padded);
    ``num_rel`` counts judged documents at or above the relevance level.
    """

    qids: list[str]
    grades: np.ndarray  # (Q, depth) float32
    num_ret: np.ndarray  # (Q,) int
    num_rel: np.ndarray  # (Q,) int
    ideal: np.ndarray  # (Q, max positives) float32
    max_grade: float  # highest grade in the qrels (for ERR)
    relevance_level: int = RELEVANCE_LEVEL

    def __len__(self) -> int:
        return len(self.qids)

    def rows(self, start: int, stop: int) -> "Judged":
        """The queries ``start:stop`` (metrics are computed in chunks to bound memory)."""
        return Judged(self.qids[start:stop], self.grades[start:stop], self.num_ret[start:stop],
                      self.num_rel[start:stop], self.ideal[start:stop], self.max_grade, self.relevance_level)

    def relevant(self, k: int | None = None) -> np.ndarray:
        """(Q, min(k, depth)) booleans: is the document at each rank relevant."""
        return self.grades[:, :k] >= self.relevance_level


def _query_ideal(qrels: Qrels, qids: Sequence[str], level: int) -> tuple[np.ndarray, np.ndarray, float]:
    positives = [sorted((g for g in qrels.get(q, {}).values() if g > 0), reverse=True) for q in qids]
    ideal = np.zeros((len(qids), max((len(p) for p in positives), default=0)), dtype=np.float32)
    for i, p in enumerate(positives):
        ideal[i, : len(p)] = p
    num_rel = np.array([sum(g >= level for g in qrels.get(q, {}).values()) for q in qids], dtype=np.int64)
    max_grade = max((g for docs in qrels.values() for g in docs.values()), default=0)
    return ideal, num_rel, float(max_grade)


def _evaluated(run_qids: Sequence[str], qrels: Qrels, complete: bool) -> list[str]:
    qids = sorted(qrels) if complete else sorted(set(run_qids) & set(qrels))
    if not qids:
        raise BgekitError("the run and the qrels share no query id; check that both use the same ids")
    return qids


def judge_run(run: Mapping[str, Mapping[str, float]], qrels: Qrels, *, complete: bool = False,
              relevance_level: int = RELEVANCE_LEVEL) -> Judged:
    """Rank a dict run the trec_eval way and look up each document's grade."""
    qids = _evaluated(list(run), qrels, complete)
    ranked = [trec_order(run.get(q, {})) for q in qids]
    depth = max((len(r) for r in ranked), default=0)
    grades = np.zeros((len(qids), depth), dtype=np.float32)
    for i, (qid, docs) in enumerate(zip(qids, ranked)):
        judged = qrels.get(qid, {})
        grades[i, : len(docs)] = [judged.get(docid, 0) for docid, _ in docs]
    ideal, num_rel, max_grade = _query_ideal(qrels, qids, relevance_level)
    num_ret = np.array([len(r) for r in ranked], dtype=np.int64)
    return Judged(qids, grades, num_ret, num_rel, ideal, max_grade, relevance_level)


def order_topk(indices: np.ndarray, scores: np.ndarray, doc_ids: Sequence[str],
               chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Re-sort each row of search results the trec_eval way (score, then doc id, descending).

    ``indices`` (Q, k) index ``doc_ids``; ``-1`` marks an empty slot and goes last.
    Rows whose scores already strictly decrease (FAISS output without ties)
    are kept as they are; the others are sorted ``chunk`` rows at a time.
    """
    out_idx, out_scores = indices.copy(), scores.copy()
    if indices.shape[1] < 2:
        return out_idx, out_scores
    doc_order: np.ndarray | None = None
    for start in range(0, len(indices), chunk):
        idx, sc = indices[start:start + chunk], scores[start:start + chunk]
        missing = idx < 0
        in_order = (np.diff(sc, axis=1) < 0).all(axis=1) & ~missing.any(axis=1)
        rows = np.flatnonzero(~in_order)
        if not len(rows):
            continue
        if doc_order is None:
            doc_order = np.empty(len(doc_ids), dtype=np.int64)
            doc_order[np.argsort(np.asarray(doc_ids, dtype=str), kind="stable")] = np.arange(len(doc_ids))
        idx, sc, missing = idx[rows], sc[rows], missing[rows]
        tie = np.where(missing, -1, doc_order[np.where(missing, 0, idx)])
        primary = np.where(missing, -np.inf, sc.astype(np.float64))
        order = np.lexsort((-tie, -primary), axis=-1)
        out_idx[start + rows] = np.take_along_axis(idx, order, axis=1)
        out_scores[start + rows] = np.take_along_axis(sc, order, axis=1)
    return out_idx, out_scores


def judge_topk(qids: Sequence[str], doc_ids: Sequence[str], indices: np.ndarray,
               qrels: Qrels, *, relevance_level: int = RELEVANCE_LEVEL) -> Judged:
    """Grades for search results given as index arrays, without a per-document Python loop.

    ``qids`` label the rows of ``indices`` (Q, k), which must already be in
    trec_eval order (:func:`order_topk`). Grades are looked up through sorted
    integer keys, so 100k queries x 1000 results take seconds.
    """
    keep = [i for i, q in enumerate(qids) if q in qrels]
    evaluated = [qids[i] for i in keep]
    _evaluated(evaluated, qrels, complete=False)
    indices = indices[keep]
    position = {d: i for i, d in enumerate(doc_ids)}
    n_docs = len(doc_ids)
    keys, values = [], []
    for row, qid in enumerate(evaluated):
        for docid, grade in qrels[qid].items():
            col = position.get(docid)
            if col is not None and grade != 0:
                keys.append(row * n_docs + col)
                values.append(grade)
    key_arr = np.array(keys, dtype=np.int64)
    sort = np.argsort(key_arr)
    key_arr, value_arr = key_arr[sort], np.array(values, dtype=np.float32)[sort]
    grades = np.zeros(indices.shape, dtype=np.float32)
    # only results whose document is judged for some query need a key lookup
    judged_doc = np.zeros(n_docs + 1, dtype=bool)
    judged_doc[key_arr % max(n_docs, 1)] = True
    rows, cols = np.nonzero(judged_doc[indices])  # index -1 hits the extra, False slot
    if len(rows):
        wanted = rows.astype(np.int64) * n_docs + indices[rows, cols]
        pos = np.minimum(np.searchsorted(key_arr, wanted), len(key_arr) - 1)
        hit = key_arr[pos] == wanted
        grades[rows[hit], cols[hit]] = value_arr[pos[hit]]
    ideal, num_rel, max_grade = _query_ideal(qrels, evaluated, relevance_level)
    num_ret = (indices >= 0).sum(axis=1)
    return Judged(evaluated, grades, num_ret, num_rel, ideal, max_grade, relevance_level)
