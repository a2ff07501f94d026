"""Evaluating a saved model on BEIR-style data, as ``bgekit eval``, ``bgekit compare`` and ``task: evaluate`` do.

These are the steps between "paths and options" and "a result": find the
evaluation files, load the model, evaluate, save the result directory. The
commands add only their options and printing, and ``task: evaluate`` calls
the very same functions, so the two agree number for number.

Progress is the caller's: ``progress(label, total, quiet)`` is a context
manager yielding a ``progress(n)`` callback (``bgekit.commands.progress.step_progress``
on the command line); without it nothing is shown.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping

from bgekit.errors import BgekitError
from bgekit.recipe_schema import EVAL_DATA

DEFAULT_METRICS: list[str] = list(EVAL_DATA["properties"]["metrics"]["default"])
#: a reranker's defaults add top-1 accuracy, the number reranker papers report
RERANKER_METRICS: list[str] = DEFAULT_METRICS + ["accuracy@1"]

#: ``progress(label, total, quiet)`` -> a context manager yielding a ``progress(n)`` callback
Progress = Callable[[str, int, bool], ContextManager[Any]]


class _Silent:
    """A progress callback that shows nothing, with the parts of a step's progress callers use."""

    label = ""

    def advance(self, n: int = 1) -> None:
        pass

    __call__ = advance

    def phase(self, label: str, total: int | None) -> None:
        self.label = label


@contextlib.contextmanager
def no_progress(label: str, total: int | None = None, quiet: bool = False) -> Iterator[_Silent]:
    silent = _Silent()
    silent.label = label
    yield silent


def eval_data_paths(eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                    qrels: str | None) -> tuple[str, str, str]:
    """(corpus, queries, qrels) from an --eval-data directory and/or the single-file options (which win)."""
    if eval_data:
        from bgekit.data.beir import find_beir_files

        found = find_beir_files(eval_data, split)
        corpus, queries, qrels = corpus or str(found.corpus), queries or str(found.queries), qrels or str(found.qrels)
    missing = [name for name, value in (("--corpus", corpus), ("--queries", queries), ("--qrels", qrels))
               if not value]
    if missing:
        raise BgekitError(f"missing {', '.join(missing)}; give them, or --eval-data DIR with a BEIR layout")
    return corpus, queries, qrels


def resolve_eval_data(eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                      qrels: str | None):
    """Load evaluation data from --eval-data and/or the single-file options (which win)."""
    from bgekit.evaluate.retrieval import load_eval_data

    return load_eval_data(*eval_data_paths(eval_data, split, corpus, queries, qrels))


def load_rerank_inputs(eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                       qrels: str | None, run_path: str | None, top_k: int):
    """Candidates (from --run, or the qrels) and their texts, for a reranker."""
    from bgekit.evaluate.reranking import load_rerank_data

    corpus, queries, qrels = eval_data_paths(eval_data, split, corpus, queries, qrels)
    return load_rerank_data(corpus, queries, qrels, run=run_path, top_k=top_k)


class ReportingEncoder:
    """An embedder whose ``encode`` reports each batch to ``progress`` (the retrieval engine passes none)."""

    def __init__(self, model: Any, progress: Callable[[int], None]) -> None:
        self._model, self._progress = model, progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, texts: Any, **options: Any) -> Any:
        return self._model.encode(texts, progress=self._progress, **options)


def run_retriever_eval(model_path: str, data: Any, names: list[str], options: Mapping[str, Any],
                       label: str | None = None, quiet: bool = False, progress: Progress = no_progress):
    """Load an embedder, evaluate it on ``data`` (an EvalData) and return (result, retrieval).

    ``options``: ``device``, ``mode``, ``weights`` (text or mapping, see
    :func:`~bgekit.evaluate.retrieval.parse_weights`), ``top_k``, ``batch_size``,
    ``query_max_length``, ``passage_max_length``.
    """
    from bgekit.evaluate.retrieval import evaluate_retriever, load_embedder, parse_weights

    weights = parse_weights(options.get("weights"))  # bad weights fail before the model loads
    model = load_embedder(model_path, options["device"])
    with progress("encoding", len(data.doc_texts) + len(data.query_texts), quiet) as step:
        result, found = evaluate_retriever(
            ReportingEncoder(model, step.advance), data, names, label=label or Path(model_path).name,
            mode=options["mode"], top_k=options["top_k"], weights=weights, batch_size=options["batch_size"],
            query_max_length=options["query_max_length"], passage_max_length=options["passage_max_length"],
        )
    result.info["model"] = str(model_path)
    return result, found


def run_reranker_eval(model_path: str, data: Any, names: list[str], options: Mapping[str, Any],
                      label: str | None = None, quiet: bool = False, progress: Progress = no_progress):
    """Load a reranker, evaluate it on ``data`` (a RerankData) and return (result, reranking)."""
    from transformers.utils import logging as hf_logging

    from bgekit.evaluate.reranking import evaluate_reranker, load_cross_encoder

    hf_logging.disable_progress_bar()  # the caller's progress (if any) follows
    model = load_cross_encoder(model_path, options["device"], max_length=options["max_length"],
                               query_max_length=options["query_max_length"])
    with progress("reranking", data.num_pairs, quiet) as step:
        result, reranked = evaluate_reranker(model, data, names, label=label or Path(model_path).name,
                                             top_k=options["top_k"], batch_size=options["batch_size"],
                                             progress=step)
    result.info["model"] = str(model_path)
    return result, reranked


def save_result(output_dir: str | Path, result: Any, ranking: Any) -> None:
    """``run.trec`` (from ``ranking.run_lines``), ``metrics.json`` and ``per_query.jsonl`` into ``output_dir``."""
    from bgekit.evaluate.results import run_tag, write_result

    write_result(output_dir, result, ranking.run_lines(tag=run_tag(result.label)))
