"""``bgekit rerank``: score query/passage pairs, or re-order a run, with a cross-encoder."""

from __future__ import annotations

import click


@click.command("rerank")
@click.option("--model", "model_path", required=True, metavar="MODEL",
              help="reranker folder (AutoModelForSequenceClassification, one label), hub id, or pkg:NAME")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL with 'query' and 'passage' per line, or a TREC run (with --queries and --corpus)")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="JSONL with a 'score' added to each line, or the re-ordered TREC run")
@click.option("--queries", "queries_path", type=click.Path(exists=True, dir_okay=False),
              help="queries.jsonl (id, text) of the run given as --input")
@click.option("--corpus", "corpus_path", type=click.Path(exists=True, dir_okay=False),
              help="corpus.jsonl (id, text, optional title) of the run given as --input")
@click.option("--top-k", type=click.IntRange(min=1), help="re-order each query's best K documents of the run "
              "(and write only those)  [default: all]")
@click.option("--normalize", is_flag=True, help="write sigmoid(logit) in [0, 1] instead of the raw logit")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="pairs per batch")
@click.option("--max-length", default=512, show_default=True, type=click.IntRange(min=8),
              help="tokens per (query, passage) pair")
@click.option("--query-max-length", type=click.IntRange(min=1),
              help="tokens the query may take of the pair  [default: 3/4 of --max-length]")
@click.option("--device", default="auto", show_default=True, help="device backend: auto, cpu, cuda, ascend")
def rerank(model_path: str, input_path: str, output_path: str, queries_path: str | None, corpus_path: str | None,
           top_k: int | None, normalize: bool, batch_size: int, max_length: int, query_max_length: int | None,
           device: str) -> None:
    """Score the (query, passage) pairs of INPUT with a reranker, or re-order a run.

    \b
    Examples:
      bgekit rerank --model runs/reranker/model --input pairs.jsonl --output scored.jsonl --normalize
      bgekit rerank --model runs/reranker/model --input bm25.trec --queries queries.jsonl \\
          --corpus corpus.jsonl --top-k 100 --output reranked.trec
    """
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from bgekit.commands.progress import step_progress
    from bgekit.model_paths import resolve_model_path

    from bgekit.devices import select_backend
    from bgekit.errors import BgekitError
    from bgekit.models.cross_encoder import CrossEncoder
    from bgekit.plugins import get_registry
    from bgekit.rerank import rerank_pairs_file, rerank_run_file

    is_run = queries_path is not None or corpus_path is not None
    if is_run and (queries_path is None or corpus_path is None):
        raise BgekitError("re-ordering a run needs both --queries and --corpus")
    if top_k is not None and not is_run:
        raise BgekitError("--top-k applies to a run; give --queries and --corpus with a TREC run as --input")
    model_path = resolve_model_path(model_path)  # a bad reference fails in one line before anything loads
    hf_logging.disable_progress_bar()
    backend = select_backend(get_registry(), device)
    model = CrossEncoder.from_pretrained(model_path, max_length=max_length, query_max_length=query_max_length)
    model.budgets()  # a query budget that leaves the passage no room fails before any reading
    model.to(backend.device())

    options = dict(batch_size=batch_size, normalize=normalize)
    with step_progress("scoring pairs") as progress:
        options.update(progress=progress.advance, on_start=progress.set_total)
        if is_run:
            summary = rerank_run_file(model, input_path, queries_path, corpus_path, output_path, top_k=top_k,
                                      **options)
        else:
            summary = rerank_pairs_file(model, input_path, output_path, **options)
    what = f" for {summary.queries} queries" if summary.queries is not None else ""
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"scored {summary.pairs} pairs{what} into {output_path}")
