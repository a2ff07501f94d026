"""Reranker evaluation: re-order candidate documents with a cross-encoder and score the new ranking.

Candidates per judged query come from one of three places:

- a TREC run (``bgekit eval reranker --run``): the run's best ``top_k``
  documents, taken in trec_eval's order (score, then document id, descending);
- the qrels (no run): every judged document of the query, the relevant ones
  and those judged non-relevant (grade 0), and nothing else. This is the
  usual reranker benchmark setting; its metrics measure ordering only
  (recall at a cut-off at or beyond the judged count is 1 by construction);
- a retriever (:func:`evaluate_pipeline`): its top N, of which the top M are
  reranked.

Only queries in the qrels are reranked, since trec_eval skips the others;
with a run, judged queries the run lacks are skipped too (trec_eval without ``-c``).
The reranked run is scored with the same trec_eval-exact metrics as a
retriever (:func:`bgekit.evaluate.results.evaluate_judged`), so results,
``run.trec`` files and comparisons work the same for both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from bgekit.errors import BgekitError
from bgekit.evaluate.judged import judge_run, trec_order
from bgekit.evaluate.results import EvalResult, evaluate_judged
from bgekit.evaluate.trec import Qrels, Run, format_dict_run_lines

#: where candidates came from, as recorded in ``metrics.json``
FROM_RUN, FROM_QRELS, FROM_RETRIEVER = "run", "qrels", "retriever"


@dataclass
class RerankData:
    """Candidate documents per judged query (first-stage order), and the texts and qrels to score them."""

    candidates: dict[str, list[str]]
    queries: dict[str, str]
    documents: dict[str, str]
    qrels: Qrels
    origin: str
    source: dict[str, str] = field(default_factory=dict)

    @property
    def num_pairs(self) -> int:
        return sum(len(docs) for docs in self.candidates.values())


@dataclass
class Reranking:
    """A reranked run (``qid -> docid -> reranker score``), how many pairs were scored, and how long it took."""

    run: Run
    pairs: int
    seconds: float

    def run_lines(self, tag: str = "bgekit") -> Iterable[str]:
        return format_dict_run_lines(self.run, tag)


def top_candidates(run: Mapping[str, Mapping[str, float]], top_k: int | None) -> dict[str, list[str]]:
    """Each query's best ``top_k`` documents of a run (all with ``None``), in trec_eval's order."""
    return {qid: [docid for docid, _ in trec_order(docs)[:top_k]] for qid, docs in run.items()}


def qrels_candidates(qrels: Qrels) -> dict[str, list[str]]:
    """Each query's judged documents (any grade, 0 included), as listed in the qrels."""
    return {qid: list(docs) for qid, docs in qrels.items()}


def _missing(kind: str, wanted: Sequence[str], found: Mapping[str, str], path: Any, named_in: str) -> None:
    absent = [i for i in wanted if i not in found]
    if absent:
        shown = ", ".join(repr(i) for i in absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise BgekitError(f"{path}: no {kind} with id {shown} (named in the {named_in}); give the {kind} "
                          f"file that goes with the {named_in}")


def load_rerank_data(corpus: str | Path, queries: str | Path, qrels: str | Path, *, run: str | Path | None = None,
                     top_k: int | None = 100) -> RerankData:
    """Candidates from ``run`` (its ``top_k`` per query) or, without a run, from the qrels; with their texts.

    Only the documents and queries the candidates name are kept in memory.
    """
    from bgekit.data.beir import load_documents, load_queries
    from bgekit.evaluate.trec import read_qrels, read_run

    if top_k is not None and top_k < 1:
        raise BgekitError(f"--top-k must be at least 1, not {top_k}")
    judgements = read_qrels(qrels)
    if run is not None:
        ranked = read_run(run)
        candidates = {q: docs for q, docs in top_candidates(ranked, top_k).items() if q in judgements}
        if not candidates:
            raise BgekitError(f"the run {run} and the qrels {qrels} share no query id; check that both use the "
                              "same ids")
        origin, named_in = FROM_RUN, "run"
    else:
        candidates, origin, named_in = qrels_candidates(judgements), FROM_QRELS, "qrels"
    query_texts = load_queries(queries, only=candidates)
    _missing("query", list(candidates), query_texts, queries, named_in)
    wanted = {d for docs in candidates.values() for d in docs}
    documents = load_documents(corpus, wanted)
    _missing("document", sorted(wanted), documents, corpus, named_in)
    source = {"corpus": str(corpus), "queries": str(queries), "qrels": str(qrels)}
    if run is not None:
        source["run"] = str(run)
    return RerankData(candidates, query_texts, documents, {q: judgements[q] for q in candidates}, origin, source)


def rerank(model: Any, data: RerankData, *, batch_size: int = 32, max_length: int | None = None,
           query_max_length: int | None = None, progress: Callable[[int], None] | None = None) -> Reranking:
    """Score every candidate pair with ``model`` (a :class:`~bgekit.models.CrossEncoder`); raw logits."""
    from bgekit.rerank import rerank_candidates

    started = time.perf_counter()
    ranked = rerank_candidates(model, data.candidates, data.queries, data.documents, batch_size=batch_size,
                               max_length=max_length, query_max_length=query_max_length, progress=progress)
    seconds = time.perf_counter() - started
    return Reranking({qid: dict(items) for qid, items in ranked.items()}, data.num_pairs, seconds)


def _candidate_counts(candidates: Mapping[str, Sequence[str]]) -> dict[str, float]:
    counts = [len(docs) for docs in candidates.values()] or [0]
    return {"min": min(counts), "mean": sum(counts) / len(counts), "max": max(counts)}


def evaluate_reranker(model: Any, data: RerankData, metrics: Sequence[str], *, label: str = "reranker",
                      top_k: int | None = None, batch_size: int = 32, max_length: int | None = None,
                      query_max_length: int | None = None,
                      progress: Callable[[int], None] | None = None) -> tuple[EvalResult, Reranking]:
    """Metrics (per query and aggregate) of ``model``'s order of ``data``'s candidates."""
    from bgekit.evaluate.metrics import resolve

    resolve(metrics)  # bad metric names fail before any scoring
    reranked = rerank(model, data, batch_size=batch_size, max_length=max_length,
                      query_max_length=query_max_length, progress=progress)
    info: dict[str, Any] = {
        "kind": "reranker", "candidates": data.origin, "top_k": top_k if data.origin != FROM_QRELS else None,
        "pairs": reranked.pairs, "candidates_per_query": _candidate_counts(data.candidates), "data": data.source,
        "timings": {"rerank_s": reranked.seconds,
                    "pairs_per_s": reranked.pairs / reranked.seconds if reranked.seconds > 0 else None},
    }
    return evaluate_judged(label, judge_run(reranked.run, data.qrels), metrics, info), reranked


def load_cross_encoder(path: str | Path, device: str = "auto", *, max_length: int = 512,
                       query_max_length: int | None = None) -> Any:
    """A :class:`~bgekit.models.CrossEncoder` from a directory, on the chosen device backend, in inference mode."""
    from bgekit.devices import select_backend
    from bgekit.models.cross_encoder import CrossEncoder
    from bgekit.plugins import get_registry

    if not Path(path).is_dir():
        raise BgekitError(f"--model {path}: not a directory (give a saved reranker or a result directory)")
    backend = select_backend(get_registry(), device)
    model = CrossEncoder.from_pretrained(str(path), max_length=max_length, query_max_length=query_max_length)
    model.budgets()  # a query budget that leaves the passage no room fails before any scoring
    return model.to(backend.device()).eval()


def model_kind(path: str | Path) -> str:
    """``"reranker"`` for a sequence-classification checkpoint (its ``config.json`` architectures),
    ``"retriever"`` for anything else (an embedder)."""
    import json

    config = Path(path) / "config.json"
    if not config.is_file():
        raise BgekitError(f"{path}: no config.json; give a saved model directory (or say --kind)")
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except ValueError as exc:
        raise BgekitError(f"{config}: not valid JSON ({exc})") from exc
    return "reranker" if any(str(a).endswith("ForSequenceClassification") for a in architectures) else "retriever"


@dataclass
class PipelineRun:
    """The pipeline's final run and what went into it."""

    reranking: Reranking
    run: Run
    retrieved: dict[str, int]  # documents the retriever returned, per query
    reranked: dict[str, int]  # of which the reranker re-ordered, per query

    def run_lines(self, tag: str = "bgekit") -> Iterable[str]:
        return format_dict_run_lines(self.run, tag)


def combine(retrieved: Mapping[str, Sequence[str]], reranked: Run) -> Run:
    """The reranker's order of each query's first documents, then the retriever's order of the rest.

    The rest get scores strictly below the query's lowest reranker score
    (lowest - 1, lowest - 2, ...), so any trec_eval-style sort keeps them,
    in the retriever's order, after the reranked ones.
    """
    run: Run = {}
    for qid, docs in retrieved.items():
        head = dict(reranked.get(qid, {}))
        floor = min(head.values(), default=0.0)
        tail = [d for d in docs if d not in head]
        run[qid] = {**head, **{d: floor - 1.0 - i for i, d in enumerate(tail)}}
    return run


def pipeline_depths(retrieve_top: int, rerank_top: int | None) -> int:
    """The checked number of documents to rerank (all retrieved ones when ``None``)."""
    rerank_top = retrieve_top if rerank_top is None else rerank_top
    if retrieve_top < 1 or rerank_top < 1:
        raise BgekitError(f"--retrieve-top and --rerank-top must be at least 1, not {retrieve_top} and {rerank_top}")
    if rerank_top > retrieve_top:
        raise BgekitError(f"--rerank-top {rerank_top} is more than --retrieve-top {retrieve_top}: the reranker "
                          "can only re-order what was retrieved; lower --rerank-top or raise --retrieve-top")
    return rerank_top


def evaluate_pipeline(retriever: Any, reranker: Any, data: Any, metrics: Sequence[str], *, retrieve_top: int = 100,
                      rerank_top: int | None = None, label: str = "pipeline", mode: str = "dense",
                      weights: Mapping[str, float] | None = None, batch_size: int = 32,
                      query_max_length: int | None = None, passage_max_length: int | None = None,
                      max_length: int | None = None, progress: Callable[[int], None] | None = None,
                      ) -> tuple[EvalResult, PipelineRun, EvalResult, Any]:
    """Retrieve the top ``retrieve_top`` with ``retriever``, rerank the first ``rerank_top`` with ``reranker``.

    ``data`` is an :class:`~bgekit.evaluate.retrieval.EvalData`. The
    pipeline's run holds, per query, ``min(retrieve_top, corpus size)``
    documents: the reranker's order of the first ``min(rerank_top,
    retrieve_top)``, then the rest in the retriever's order. Returns the
    pipeline's result and run, and the retriever's own result and retrieval
    (same depth, same documents) to report beside it.
    """
    from bgekit.evaluate.metrics import resolve
    from bgekit.evaluate.retrieval import evaluate_retriever

    resolve(metrics)
    rerank_top = pipeline_depths(retrieve_top, rerank_top)
    first, found = evaluate_retriever(retriever, data, metrics, label="retriever", mode=mode, top_k=retrieve_top,
                                      weights=weights, batch_size=batch_size, query_max_length=query_max_length,
                                      passage_max_length=passage_max_length)
    retrieved = {qid: [found.doc_ids[i] for i in row.tolist() if i >= 0]
                 for qid, row in zip(found.query_ids, found.indices)}
    candidates = {qid: docs[:rerank_top] for qid, docs in retrieved.items()}
    wanted = {d for docs in candidates.values() for d in docs}
    texts = dict(zip(data.doc_ids, data.doc_texts))
    rerank_data = RerankData(candidates, dict(zip(data.query_ids, data.query_texts)),
                             {d: texts[d] for d in wanted}, data.qrels, FROM_RETRIEVER, dict(data.source))
    reranked = rerank(reranker, rerank_data, batch_size=batch_size, max_length=max_length, progress=progress)
    final = combine(retrieved, reranked.run)
    info: dict[str, Any] = {
        "kind": "pipeline", "candidates": FROM_RETRIEVER, "mode": mode, "retrieve_top": retrieve_top,
        "rerank_top": rerank_top, "pairs": reranked.pairs, "num_documents": len(data.doc_ids),
        "retrieved_per_query": _candidate_counts(retrieved), "reranked_per_query": _candidate_counts(candidates),
        "retriever_metrics": first.metrics, "data": dict(data.source),
        "timings": {**first.info.get("timings", {}), "rerank_s": reranked.seconds},
    }
    result = evaluate_judged(label, judge_run(final, data.qrels), metrics, info)
    pipeline = PipelineRun(reranked, final, {q: len(d) for q, d in retrieved.items()},
                           {q: len(d) for q, d in candidates.items()})
    return result, pipeline, first, found
