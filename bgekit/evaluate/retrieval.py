"""Retriever evaluation: encode a BEIR-style corpus and queries, search, score.

:func:`evaluate_embedder` is what the trainer calls during training (returns
the aggregate metrics); :func:`evaluate_retriever` is what ``bgekit eval
retriever`` calls (returns the full result and the ranking for ``run.trec``).

Only judged queries are encoded: trec_eval skips queries without qrels, so
their rankings could not change any metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from bgekit.errors import BgekitError
from bgekit.evaluate.judged import judge_topk, order_topk
from bgekit.evaluate.results import EvalResult, evaluate_judged
from bgekit.evaluate.search import HYBRID, HeadSearch
from bgekit.evaluate.trec import Qrels, format_run_lines, read_qrels

#: the heads ``--weights "1,0.3,1"`` (three numbers, no names) gives weights to, in that order
POSITIONAL_WEIGHTS = ("dense", "sparse", "colbert")


@dataclass
class EvalData:
    """Documents (ids and the text given to the encoder), judged queries, and qrels."""

    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: Qrels
    source: dict[str, str] = field(default_factory=dict)


def _corpus(corpus: str | Path | Mapping[str, Any]) -> tuple[list[str], list[str]]:
    from bgekit.data.beir import iter_corpus, passage_text
    from bgekit.data.example import RowError

    if isinstance(corpus, Mapping):
        items = [(str(k), v if isinstance(v, str) else passage_text(v.get("title") or "", v["text"]))
                 for k, v in corpus.items()]
        return [k for k, _ in items], [t for _, t in items]
    ids, texts = [], []
    for item in iter_corpus(corpus):  # bad and repeated ids come as row errors, with their lines
        if isinstance(item, RowError):
            raise BgekitError(str(item))
        doc_id, title, text = item
        ids.append(doc_id)
        texts.append(passage_text(title, text))
    return ids, texts


def load_eval_data(corpus: str | Path | Mapping[str, Any], queries: str | Path | Mapping[str, str],
                   qrels: str | Path | Qrels) -> EvalData:
    """Load BEIR-style data from paths, or take it as mappings (id -> text, qid -> docid -> grade)."""
    from bgekit.data.beir import load_queries

    judgements = qrels if isinstance(qrels, Mapping) else read_qrels(qrels)
    query_map = dict(queries) if isinstance(queries, Mapping) else load_queries(queries, only=judgements)
    doc_ids, doc_texts = _corpus(corpus)
    if not doc_ids:
        raise BgekitError(f"{corpus}: the corpus has no documents")
    qids = [q for q in judgements if q in query_map]
    if not qids:
        raise BgekitError(f"no query id of the qrels {_name(qrels)} is in the queries {_name(queries)}; "
                          "check that both use the same ids")
    source = {k: str(v) for k, v in (("corpus", corpus), ("queries", queries), ("qrels", qrels))
              if not isinstance(v, Mapping)}
    return EvalData(doc_ids, doc_texts, qids, [query_map[q] for q in qids],
                    {q: judgements[q] for q in qids}, source)


def _name(value: Any) -> str:
    return "(given in memory)" if isinstance(value, Mapping) else str(value)


def parse_weights(text: str | Sequence[float] | Mapping[str, float] | None) -> dict[str, float] | None:
    """Hybrid weights by head name from ``"dense=1,sparse=0.3"`` (any head), or from three numbers
    ``"1,0.3,1"`` (dense, sparse, colbert, as before names were accepted). ``None``: each head's own
    ``hybrid_weight``. Heads not named keep their own weight."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        pairs = [(str(k), v) for k, v in text.items()]
    else:
        parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
        named = [isinstance(p, str) and "=" in p for p in parts]
        if any(named) and not all(named):
            raise BgekitError(f"--weights '{text}': either NAME=WEIGHT for every head (dense=1,sparse=0.3) "
                              "or three numbers dense,sparse,colbert (1,0.3,1), not both")
        if all(named) and parts:
            pairs = [tuple(x.strip() for x in p.split("=", 1)) for p in parts]
        elif len(parts) == len(POSITIONAL_WEIGHTS):
            pairs = list(zip(POSITIONAL_WEIGHTS, parts))
        else:
            raise BgekitError(f"--weights '{text}': expected NAME=WEIGHT pairs (dense=1,sparse=0.3,colbert=1) "
                              "or three numbers 'dense,sparse,colbert', e.g. 1,0.3,1")
    weights: dict[str, float] = {}
    for name, value in pairs:
        try:
            weights[name] = float(value)
        except (TypeError, ValueError):
            raise BgekitError(f"--weights '{text}': the weight of '{name}' is not a number: '{value}'") from None
        if not name or weights[name] < 0 or weights[name] != weights[name]:
            raise BgekitError(f"--weights '{text}': weights are non-negative numbers given to head names, "
                              f"not '{name}={value}'")
    if not any(weights.values()):
        raise BgekitError(f"--weights '{text}': weights must not all be zero, e.g. 1,0.3,1")
    return weights


def search_plan(model: Any, mode: str, weights: Mapping[str, float] | None = None) -> HeadSearch:
    """How ``mode`` (a head of ``model`` or ``hybrid``) searches: the heads to encode, the candidate
    sources, the weights; unknown modes and weights fail here, before anything is encoded."""
    return HeadSearch(model.heads, mode, weights)


def search_encoded(plan: HeadSearch, queries: Mapping[str, Any], passages: Mapping[str, Any],
                   top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the top k passages per query, unsorted within a row (exact search)."""
    plan.index(passages)
    return plan.search(queries, top_k)


@dataclass
class Retrieval:
    """Rankings in trec_eval order: row i holds query ``query_ids[i]``."""

    query_ids: list[str]
    doc_ids: list[str]
    indices: np.ndarray
    scores: np.ndarray
    timings: dict[str, float]

    def run_lines(self, tag: str = "bgekit") -> Iterable[str]:
        return format_run_lines(self.query_ids, self.doc_ids, self.indices, self.scores, tag)


def retrieve(model: Any, data: EvalData, *, mode: str = "dense", top_k: int = 100,
             weights: Mapping[str, float] | None = None, batch_size: int = 64,
             query_max_length: int | None = None, passage_max_length: int | None = None) -> Retrieval:
    """Encode with ``model`` (an :class:`~bgekit.models.Embedder`) and search."""
    if top_k < 1:
        raise BgekitError(f"top_k must be at least 1, not {top_k}")
    plan = search_plan(model, mode, weights)
    heads = plan.needed
    q_len = query_max_length or getattr(model, "query_max_length", 64)
    p_len = passage_max_length or getattr(model, "passage_max_length", 512)
    started = time.perf_counter()
    passages = model.encode(data.doc_texts, is_query=False, batch_size=batch_size, max_length=p_len, heads=heads)
    encoded = time.perf_counter()
    queries = model.encode(data.query_texts, is_query=True, batch_size=batch_size, max_length=q_len, heads=heads)
    queried = time.perf_counter()
    indices, scores = search_encoded(plan, queries, passages, top_k)
    indices, scores = order_topk(indices, scores, data.doc_ids)
    done = time.perf_counter()
    timings = {"encode_corpus_s": encoded - started, "encode_queries_s": queried - encoded, "search_s": done - queried}
    return Retrieval(list(data.query_ids), data.doc_ids, indices, scores, timings)


def evaluate_retriever(model: Any, data: EvalData, metrics: Sequence[str], *, label: str = "model",
                       mode: str = "dense", top_k: int = 100, weights: Mapping[str, float] | None = None,
                       batch_size: int = 64, query_max_length: int | None = None,
                       passage_max_length: int | None = None) -> tuple[EvalResult, Retrieval]:
    """Metrics (per query and aggregate) of ``model`` retrieving from ``data``."""
    from bgekit.evaluate.metrics import resolve

    resolve(metrics)  # bad metric names fail before any encoding
    plan = search_plan(model, mode, weights)
    found = retrieve(model, data, mode=mode, top_k=top_k, weights=weights, batch_size=batch_size,
                     query_max_length=query_max_length, passage_max_length=passage_max_length)
    judged = judge_topk(found.query_ids, found.doc_ids, found.indices, data.qrels)
    info: dict[str, Any] = {"mode": mode, "top_k": top_k, "num_documents": len(data.doc_ids),
                            **({"weights": plan.weights} if mode == HYBRID else {}),
                            "data": data.source, "timings": found.timings}
    return evaluate_judged(label, judged, metrics, info), found


def evaluate_embedder(model: Any, corpus: EvalData | str | Path | Mapping[str, Any],
                      queries: str | Path | Mapping[str, str] | None, qrels: str | Path | Qrels | None, metrics: Sequence[str] = ("ndcg@10", "recall@100", "mrr@10"),
                      mode: str = "dense", top_k: int = 100, batch_size: int = 64,
                      weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Aggregate metrics of an in-memory embedder, for evaluation during training.

    ``corpus``/``queries``/``qrels`` are paths (BEIR layout) or mappings
    (``{doc_id: text or {"title", "text"}}``, ``{qid: text}``,
    ``{qid: {doc_id: grade}}``). The model's ``query_max_length`` and
    ``passage_max_length`` attributes set the encoding lengths. Pass an
    :class:`EvalData` from :func:`load_eval_data` as ``corpus`` (with
    ``queries`` and ``qrels`` set to ``None``) to avoid re-reading files at every evaluation.
    """
    if isinstance(corpus, EvalData):
        data = corpus
    elif queries is None or qrels is None:
        raise BgekitError("evaluate_embedder needs queries and qrels (or an EvalData as corpus)")
    else:
        data = load_eval_data(corpus, queries, qrels)
    result, _ = evaluate_retriever(model, data, metrics, mode=mode, top_k=top_k, weights=weights,
                                   batch_size=batch_size)
    return result.metrics


def load_embedder(path: str | Path, device: str = "auto") -> Any:
    """An :class:`~bgekit.models.Embedder` from a directory, with the heads it was saved with,
    on the chosen device backend, in inference mode."""
    from bgekit.devices import select_backend
    from bgekit.models import Embedder
    from bgekit.plugins import get_registry

    if not Path(path).is_dir():
        raise BgekitError(f"--model {path}: not a directory (give a saved model or a result directory)")
    backend = select_backend(get_registry(), device)
    model = Embedder.from_pretrained(str(path))
    return model.to(backend.device()).eval()
