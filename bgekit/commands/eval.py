"""`bgekit eval`: metrics of a run file, and of a retriever on BEIR-style data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import click
from rich.console import Console

from bgekit.recipe_schema import EVAL_DATA

DEFAULT_METRICS: list[str] = list(EVAL_DATA["properties"]["metrics"]["default"])


def split_metrics(values: Sequence[str]) -> list[str]:
    """``--metrics ndcg@10,recall@100 --metrics map`` -> three names; none given -> the defaults."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or list(DEFAULT_METRICS)


def metrics_option(func):
    return click.option(
        "--metrics", "metrics", multiple=True, metavar="NAMES",
        help=f"metrics as users write them, comma-separated or repeated (default: {','.join(DEFAULT_METRICS)})",
    )(func)


def report_option(func):
    return click.option("--report", "report_dir", type=click.Path(file_okay=False),
                        help="also write report.html, report.md and metrics.json here (needs matplotlib)")(func)


def emit(results, as_json: bool, title: str, report_dir: str | None) -> None:
    """Print results as a table (or JSON), and write a report when asked."""
    from bgekit.evaluate.display import metrics_table

    if report_dir:
        from bgekit.evaluate.report import write_report

        write_report(report_dir, results, title=title)
    if as_json:
        payload = results[0].to_json() if len(results) == 1 else [r.to_json() for r in results]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(metrics_table(results, title=title))
    if report_dir:
        console.print(f"report: {Path(report_dir) / 'report.html'}")


@click.group("eval")
def eval_group() -> None:
    """Evaluate runs and retrievers with metrics equal to trec_eval's.

    \b
    Example:
      bgekit eval metrics --qrels qrels.tsv --run run.trec --metrics ndcg@10 recall@100
      bgekit eval retriever --model runs/m3/model --corpus corpus.jsonl \\
          --queries queries.jsonl --qrels qrels.tsv --mode hybrid
    """


@eval_group.command("metrics")
@click.option("--qrels", required=True, type=click.Path(exists=True, dir_okay=False),
              help="qrels: TREC 'qid 0 docid rel' or BEIR TSV 'query-id corpus-id score'")
@click.option("--run", "run_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="TREC run 'qid Q0 docid rank score tag'")
@metrics_option
@click.option("--complete", is_flag=True,
              help="count qrels queries missing from the run as zeros (trec_eval -c); default skips them")
@click.option("--output", "output_dir", type=click.Path(file_okay=False),
              help="write metrics.json and per_query.jsonl here")
@report_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def metrics_command(qrels: str, run_path: str, metrics: tuple[str, ...], complete: bool, output_dir: str | None,
                    report_dir: str | None, as_json: bool) -> None:
    """Metrics of a TREC run against qrels, equal to trec_eval's.

    Documents are ranked by score (ties: document id descending), the rank
    column is ignored, and only queries in both files count (with --complete,
    every qrels query), exactly as trec_eval does. A query whose judgements
    are all 0 has nothing relevant: it counts, with 0 on every metric.
    """
    from bgekit.evaluate.judged import judge_run
    from bgekit.evaluate.metrics import resolve
    from bgekit.evaluate.results import evaluate_judged, write_result
    from bgekit.evaluate.trec import read_qrels, read_run

    names = split_metrics(metrics)
    resolve(names)  # bad names fail before the files are read
    judged = judge_run(read_run(run_path), read_qrels(qrels), complete=complete)
    result = evaluate_judged(Path(run_path).name, judged, names,
                             {"run": str(run_path), "qrels": str(qrels), "complete": complete})
    if output_dir:
        write_result(output_dir, result)
    emit([result], as_json, f"{run_path} vs {qrels}", report_dir)


def eval_data_options(func):
    """--eval-data DIR (BEIR layout) or --corpus/--queries/--qrels, shared by eval retriever and compare."""
    options = [
        click.option("--eval-data", type=click.Path(exists=True, file_okay=False),
                     help="a BEIR-style directory: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv"),
        click.option("--split", default="test", show_default=True, help="qrels split under --eval-data"),
        click.option("--corpus", type=click.Path(exists=True, dir_okay=False), help="corpus.jsonl (id, text, title)"),
        click.option("--queries", type=click.Path(exists=True, dir_okay=False), help="queries.jsonl (id, text)"),
        click.option("--qrels", type=click.Path(exists=True, dir_okay=False), help="qrels, BEIR TSV or TREC"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def retrieval_options(func):
    options = [
        click.option("--mode", type=click.Choice(["dense", "sparse", "colbert", "hybrid"]), default="dense",
                     show_default=True, help="which head(s) retrieve; colbert re-scores dense+sparse candidates"),
        click.option("--weights", default="1,0.3,1", show_default=True,
                     help="hybrid weights of dense,sparse,colbert scores"),
        click.option("--top-k", type=click.IntRange(min=1), default=100, show_default=True,
                     help="documents retrieved per query"),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
                     help="texts encoded per batch"),
        click.option("--query-max-length", type=click.IntRange(min=1), help="query length in tokens (default 64)"),
        click.option("--passage-max-length", type=click.IntRange(min=1),
                     help="passage length in tokens (default 512)"),
        click.option("--device", default="auto", show_default=True, help="device backend: auto, cpu, cuda, ascend"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_eval_data(eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                      qrels: str | None):
    """Load evaluation data from --eval-data and/or the single-file options (which win)."""
    from bgekit.errors import BgekitError
    from bgekit.evaluate.retrieval import load_eval_data

    if eval_data:
        from bgekit.data.beir import find_beir_files

        found = find_beir_files(eval_data, split)
        corpus, queries, qrels = corpus or str(found.corpus), queries or str(found.queries), qrels or str(found.qrels)
    missing = [name for name, value in (("--corpus", corpus), ("--queries", queries), ("--qrels", qrels))
               if not value]
    if missing:
        raise BgekitError(f"missing {', '.join(missing)}; give them, or --eval-data DIR with a BEIR layout")
    return load_eval_data(corpus, queries, qrels)


def run_retriever_eval(model_path: str, data, names: list[str], options: dict, label: str | None = None):
    """Load a model, evaluate it on ``data`` and return (result, retrieval)."""
    from bgekit.evaluate.retrieval import evaluate_retriever, load_embedder, parse_weights

    model = load_embedder(model_path, options["device"])
    result, found = evaluate_retriever(
        model, data, names, label=label or Path(model_path).name, mode=options["mode"], top_k=options["top_k"],
        weights=parse_weights(options["weights"]), batch_size=options["batch_size"],
        query_max_length=options["query_max_length"], passage_max_length=options["passage_max_length"],
    )
    result.info["model"] = str(model_path)
    return result, found


def save_retriever_result(output_dir: str, result, found) -> None:
    """``run.trec``, ``metrics.json`` and ``per_query.jsonl`` into ``output_dir``."""
    from bgekit.data.atomic import atomic_write
    from bgekit.evaluate.results import RUN_FILE, write_result

    with atomic_write(Path(output_dir) / RUN_FILE) as fh:
        fh.writelines(found.run_lines(tag=result.label.replace(" ", "_") or "bgekit"))
    write_result(output_dir, result)


@eval_group.command("retriever")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="a saved embedder directory (FlagEmbedding layout)")
@eval_data_options
@retrieval_options
@metrics_option
@click.option("--output", "output_dir", type=click.Path(file_okay=False),
              help="write run.trec, metrics.json and per_query.jsonl here")
@report_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def retriever_command(model_path: str, eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                      qrels: str | None, metrics: tuple[str, ...], output_dir: str | None, report_dir: str | None,
                      as_json: bool, **options) -> None:
    """Encode a corpus and queries, search with the chosen head(s), and score against qrels.

    Dense search is exact (FAISS flat inner product), sparse search exact
    lexical matching; colbert re-scores the union of the dense and sparse top
    k, and hybrid sums the weighted scores of the three heads over the same
    candidates. Only judged queries are encoded.
    """
    from bgekit.evaluate.metrics import resolve

    names = split_metrics(metrics)
    resolve(names)
    data = resolve_eval_data(eval_data, split, corpus, queries, qrels)
    result, found = run_retriever_eval(model_path, data, names, options)
    if output_dir:
        save_retriever_result(output_dir, result, found)
    emit([result], as_json, f"{model_path} ({options['mode']})", report_dir)
