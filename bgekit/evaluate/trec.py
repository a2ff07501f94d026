"""Reading and writing qrels and runs in the formats trec_eval and BEIR use.

- qrels, TREC: ``qid iter docid rel`` (``iter`` is ignored, usually ``0``);
- qrels, BEIR TSV: ``query-id<TAB>corpus-id<TAB>score``, with or without a header line;
- runs, TREC: ``qid Q0 docid rank score tag`` (trec_eval ignores ``rank`` and
  orders by ``score``; so do we, see :mod:`bgekit.evaluate.judged`).

Relevance grades are integers, as trec_eval requires. Every malformed line is
reported as ``file:line`` with what is wrong.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from bgekit.errors import BgekitError

#: query id -> document id -> relevance grade
Qrels = dict[str, dict[str, int]]
#: query id -> document id -> retrieval score
Run = dict[str, dict[str, float]]


def _lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Non-empty lines with their 1-based line numbers; decoding errors name the line."""
    from bgekit.data.encoding import iter_lines

    if not os.path.isfile(path):
        raise BgekitError(f"cannot read {path}: no such file")
    for lineno, line in iter_lines(path):
        if line.strip():
            yield lineno, line.rstrip("\r\n")


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Read TREC (4 columns) or BEIR TSV (3 columns, optional header) qrels.

    Parsing is :func:`bgekit.data.beir.iter_qrels` (one parser for the whole
    project); here the first bad line is an error, and a later judgement of the
    same (query, document) pair replaces the earlier one, as in trec_eval.
    """
    from bgekit.data.beir import iter_qrels
    from bgekit.data.example import RowError

    qrels: Qrels = {}
    for item in iter_qrels(path):
        if isinstance(item, RowError):
            raise BgekitError(str(item))
        qrels.setdefault(item.query_id, {})[item.doc_id] = item.relevance
    if not qrels:
        raise BgekitError(f"{path}: no judgements found")
    return qrels


def read_run(path: str | os.PathLike) -> Run:
    """Read a TREC run; a document listed twice for one query is an error (as in trec_eval)."""
    run: Run = {}
    for lineno, line in _lines(path):
        where = f"{path}:{lineno}"
        fields = line.split()
        if len(fields) != 6:
            raise BgekitError(f"{where}: expected 'qid Q0 docid rank score tag' (6 columns), got {len(fields)}")
        qid, _, docid, _, score_text, _ = fields
        try:
            score = float(score_text)
        except ValueError:
            raise BgekitError(f"{where}: score '{score_text}' is not a number") from None
        if not math.isfinite(score):
            raise BgekitError(f"{where}: score '{score_text}' is not finite")
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise BgekitError(f"{where}: document '{docid}' is listed twice for query '{qid}'")
        docs[docid] = score
    return run


def format_run_lines(
    qids: Sequence[str], doc_ids: Sequence[str], indices: np.ndarray, scores: np.ndarray, tag: str
) -> Iterable[str]:
    """TREC run lines for ranked ``indices`` (into ``doc_ids``) per query; ``-1`` ends a row.

    Scores are written with 9 significant digits so float32 values round-trip
    and trec_eval sees the same order we evaluated.
    """
    for qid, row_idx, row_scores in zip(qids, indices, scores):
        rank = 0
        for idx, score in zip(row_idx.tolist(), row_scores.tolist()):
            if idx < 0:
                break
            rank += 1
            yield f"{qid} Q0 {doc_ids[idx]} {rank} {score:.9g} {tag}\n"


def trec_order(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """One query's ``(docid, score)`` pairs in trec_eval's order: score, then document id, descending."""
    return sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


def format_dict_run_lines(run: Run, tag: str) -> Iterable[str]:
    """TREC run lines for a dict run, each query ranked as trec_eval ranks it."""
    for qid, docs in run.items():
        for rank, (docid, score) in enumerate(trec_order(docs), start=1):
            yield f"{qid} Q0 {docid} {rank} {score:.9g} {tag}\n"
