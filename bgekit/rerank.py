"""Score (query, passage) pairs with a cross-encoder, or re-order a retrieval run with one.

Two inputs:

- JSONL pairs: one object per line with string ``query`` and ``passage``;
  each line is written back unchanged plus ``score``, in input order.
- A TREC run (``qid Q0 docid rank score tag``) with the BEIR ``queries.jsonl``
  and ``corpus.jsonl`` it was retrieved from: each query's ``top_k`` best
  documents are scored by the reranker and written as a new run, best first.

Outputs appear atomically when complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from bgekit.data.atomic import atomic_write
from bgekit.data.jsonlines import JsonProblem, iter_json_lines
from bgekit.errors import BgekitError

#: ``tag`` column of a re-ordered run
RUN_TAG = "bgekit-rerank"

Progress = Callable[[int], None]


@dataclass
class RerankSummary:
    pairs: int
    queries: int | None = None


def read_pairs(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The JSON objects of a pairs file; a line without a string query and passage is an error naming it."""
    rows: list[dict[str, Any]] = []
    for line, row, text in iter_json_lines(path):
        where = f"{path}:{line}"
        if isinstance(row, JsonProblem):
            if len(text.split()) == 6:
                raise BgekitError(f"{where}: this looks like a TREC run; give --queries and --corpus to "
                                  "re-order it")
            raise BgekitError(f"{where}: {row}")
        if not isinstance(row, dict):
            raise BgekitError(f"{where}: expected an object like {{\"query\": ..., \"passage\": ...}}")
        for field in ("query", "passage"):
            if not isinstance(row.get(field), str):
                raise BgekitError(f"{where}: field '{field}' must be a string, got "
                                  f"{'nothing' if row.get(field) is None else type(row[field]).__name__}")
        rows.append(row)
    if not rows:
        raise BgekitError(f"{path}: no pairs to score (the file is empty)")
    return rows


def rerank_pairs_file(model: Any, input_path: str | os.PathLike, output_path: str | os.PathLike, *,
                      batch_size: int = 32, max_length: int | None = None, query_max_length: int | None = None,
                      normalize: bool = False, progress: Progress | None = None,
                      on_start: Callable[[int], None] | None = None) -> RerankSummary:
    """Write every line of ``input_path`` with its ``score`` to ``output_path``; ``on_start(pairs)`` is
    called once the input has been read (for a progress bar)."""
    rows = read_pairs(input_path)
    if on_start is not None:
        on_start(len(rows))
    scores = model.score([(r["query"], r["passage"]) for r in rows], batch_size=batch_size,
                         max_length=max_length, query_max_length=query_max_length, normalize=normalize,
                         progress=progress)
    with atomic_write(output_path) as handle:
        for row, score in zip(rows, scores.tolist()):
            handle.write(json.dumps({**row, "score": score}, ensure_ascii=False) + "\n")
    return RerankSummary(pairs=len(rows))


def candidates_from_run(run: dict[str, dict[str, float]], top_k: int | None) -> dict[str, list[str]]:
    """Each query's ``top_k`` documents of a run, best first (ties broken by document id)."""
    return {qid: sorted(docs, key=lambda d: (-docs[d], d))[:top_k] for qid, docs in run.items()}


def rerank_candidates(model: Any, candidates: dict[str, list[str]], queries: dict[str, str],
                      documents: dict[str, str], *, batch_size: int = 32, max_length: int | None = None,
                      query_max_length: int | None = None, normalize: bool = False,
                      progress: Progress | None = None,
                      on_start: Callable[[int], None] | None = None) -> dict[str, list[tuple[str, float]]]:
    """``{qid: [(docid, score), ...]}`` best first, by the reranker's score of every candidate."""
    keys = [(qid, did) for qid, docs in candidates.items() for did in docs]
    if on_start is not None:
        on_start(len(keys))
    scores = model.score([(queries[q], documents[d]) for q, d in keys], batch_size=batch_size,
                         max_length=max_length, query_max_length=query_max_length, normalize=normalize,
                         progress=progress).tolist()
    ranked: dict[str, list[tuple[str, float]]] = {qid: [] for qid in candidates}
    for (qid, did), score in zip(keys, scores):
        ranked[qid].append((did, score))
    for items in ranked.values():
        items.sort(key=lambda item: (-item[1], item[0]))
    return ranked


def _missing(kind: str, wanted: Sequence[str], found: dict[str, str], path: Any) -> None:
    absent = [i for i in wanted if i not in found]
    if absent:
        shown = ", ".join(repr(i) for i in absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise BgekitError(f"{path}: no {kind} with id {shown} (named in the run); give the file the run "
                          "was retrieved from")


def rerank_run_file(model: Any, run_path: str | os.PathLike, queries_path: str | os.PathLike,
                    corpus_path: str | os.PathLike, output_path: str | os.PathLike, *, top_k: int | None = None,
                    batch_size: int = 32, max_length: int | None = None, query_max_length: int | None = None,
                    normalize: bool = False, progress: Progress | None = None,
                    on_start: Callable[[int], None] | None = None) -> RerankSummary:
    """Re-order a TREC run's ``top_k`` documents per query by the reranker; write a TREC run."""
    from bgekit.data.beir import load_documents, load_queries
    from bgekit.evaluate.trec import read_run

    run = read_run(run_path)
    candidates = candidates_from_run(run, top_k)
    queries = load_queries(queries_path, only=candidates)
    _missing("query", list(candidates), queries, queries_path)
    doc_ids = sorted({d for docs in candidates.values() for d in docs})
    documents = load_documents(corpus_path, set(doc_ids))
    _missing("document", doc_ids, documents, corpus_path)
    ranked = rerank_candidates(model, candidates, queries, documents, batch_size=batch_size,
                               max_length=max_length, query_max_length=query_max_length, normalize=normalize,
                               progress=progress, on_start=on_start)
    with atomic_write(output_path) as handle:
        for qid, items in ranked.items():
            for rank, (did, score) in enumerate(items, start=1):
                handle.write(f"{qid} Q0 {did} {rank} {score:.9g} {RUN_TAG}\n")
    return RerankSummary(pairs=sum(len(d) for d in candidates.values()), queries=len(candidates))
