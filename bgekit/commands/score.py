"""``bgekit score``: teacher scores from a cross-encoder, for distillation."""

from __future__ import annotations

import click


@click.command("score")
@click.option("--reranker", "reranker_path", required=True, metavar="MODEL",
              help="cross-encoder (AutoModelForSequenceClassification, one label): folder, hub id or pkg:NAME")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="training data")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="canonical JSONL with pos_scores and neg_scores")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="pairs per batch")
@click.option("--max-length", default=512, show_default=True, type=click.IntRange(min=8),
              help="tokens per (query, passage) pair")
@click.option("--query-max-length", type=click.IntRange(min=1),
              help="tokens a query may take of the pair [default: 3/4 of --max-length]")
@click.option("--normalize", is_flag=True, help="write sigmoid(logit) in [0, 1] instead of raw logits")
@click.option("--format", "fmt", default="auto", show_default=True, help="input data format")
@click.option("--device", default="auto", show_default=True, help="device backend: auto, cpu, cuda, ascend")
def score(reranker_path: str, input_path: str, output_path: str, batch_size: int, max_length: int,
          query_max_length: int | None, normalize: bool, fmt: str, device: str) -> None:
    """Score every (query, pos) and (query, neg) of INPUT with a cross-encoder teacher.

    Resumable: if a run is stopped, running the same command again continues
    from OUTPUT.progress.jsonl without rescoring finished rows.

    \b
    Example:
      bgekit score --reranker BAAI/bge-reranker-v2-m3 --input mined.jsonl --output scored.jsonl
    """
    from transformers.utils import logging as hf_logging

    from bgekit.commands.progress import step_progress
    from bgekit.teacher import TeacherScorer, score_file

    hf_logging.disable_progress_bar()
    scorer = TeacherScorer(reranker_path, device=device, max_length=max_length,
                          query_max_length=query_max_length, batch_size=batch_size)
    with step_progress("scoring rows") as progress:
        summary = score_file(input_path, output_path, scorer, normalize=normalize, fmt=fmt,
                             progress=progress.advance, on_start=progress.set_total)
    resumed = f" ({summary.rows_resumed} rows resumed from an earlier run)" if summary.rows_resumed else ""
    click.echo(f"scored {summary.rows} rows into {output_path}{resumed}: {summary.pairs_scored} pairs in "
               f"{summary.seconds:.1f}s ({summary.pairs_per_second:.1f} pairs/s)")
