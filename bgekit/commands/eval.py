"""`bgekit eval`: metrics of a run file, and of a retriever, a reranker or both on BEIR-style data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import click
from rich.console import Console

from bgekit.commands.params import MODEL_DIR
from bgekit.evaluate.runs import (  # noqa: F401 - also imported from here by bgekit.commands.compare
    DEFAULT_METRICS,
    RERANKER_METRICS,
    load_rerank_inputs,
    resolve_eval_data,
    save_result,
)


def split_metrics(values: Sequence[str], defaults: Sequence[str] = DEFAULT_METRICS) -> list[str]:
    """``--metrics ndcg@10,recall@100 --metrics map`` -> three names; none given -> the defaults."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or list(defaults)


def metrics_option(func):
    return click.option(
        "--metrics", "metrics", multiple=True, metavar="NAMES",
        help=f"metrics as users write them, comma-separated or repeated (default: {','.join(DEFAULT_METRICS)})",
    )(func)


def _check_report_dependencies(ctx, param, value):  # noqa: ANN001 - click's callback signature
    """--report's optional dependencies are checked while the command line is read, before any work."""
    if value:
        from bgekit.evaluate.report import require_report_dependencies

        require_report_dependencies()
    return value


def report_option(func):
    return click.option("--report", "report_dir", type=click.Path(file_okay=False),
                        callback=_check_report_dependencies,
                        help="also write report.html, report.md and metrics.json here (needs matplotlib)")(func)


def result_options(output_help: str, json_help: str = "print JSON instead of a table"):
    """``--output`` (saying what it writes), ``--report`` and ``--json``: how every evaluating command
    hands back its results."""

    def decorate(func):
        func = click.option("--json", "as_json", is_flag=True, help=json_help)(func)
        func = report_option(func)
        return click.option("--output", "output_dir", type=click.Path(file_okay=False), help=output_help)(func)

    return decorate


def emit(results, as_json: bool, title: str, report_dir: str | None) -> None:
    """Print results as a table (or JSON), and write a report when asked."""
    from bgekit.evaluate.display import metrics_table, show_table

    if report_dir:
        from bgekit.evaluate.report import write_report

        write_report(report_dir, results, title=title)
    if as_json:
        payload = results[0].to_json() if len(results) == 1 else [r.to_json() for r in results]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    console = Console()
    show_table(metrics_table(results, title=title), console)
    if report_dir:
        console.print(f"report: {Path(report_dir) / 'report.html'}")


@click.group("eval")
def eval_group() -> None:
    """Evaluate runs, retrievers and rerankers with metrics equal to trec_eval's.

    \b
    Example:
      bgekit eval metrics --qrels qrels.tsv --run run.trec --metrics ndcg@10,recall@100
      bgekit eval retriever --model runs/m3/model --corpus corpus.jsonl \\
          --queries queries.jsonl --qrels qrels.tsv --mode hybrid
      bgekit eval reranker --model runs/reranker/model --eval-data my_beir/ --run bm25.trec --top-k 100
      bgekit eval pipeline --retriever runs/m3/model --reranker runs/reranker/model \\
          --eval-data my_beir/ --retrieve-top 100 --rerank-top 20
    """


@eval_group.command("metrics")
@click.option("--qrels", required=True, type=click.Path(exists=True, dir_okay=False),
              help="qrels: TREC 'qid 0 docid rel' or BEIR TSV 'query-id corpus-id score'")
@click.option("--run", "run_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="TREC run 'qid Q0 docid rank score tag'")
@metrics_option
@click.option("--complete", is_flag=True,
              help="count qrels queries missing from the run as zeros (trec_eval -c); default skips them")
@result_options("write metrics.json and per_query.jsonl here")
def metrics_command(qrels: str, run_path: str, metrics: tuple[str, ...], complete: bool, output_dir: str | None,
                    report_dir: str | None, as_json: bool) -> None:
    """Metrics of a TREC run against qrels, equal to trec_eval's.

    Documents are ranked by score (ties: document id descending), the rank
    column is ignored, and only queries in both files count (with --complete,
    every qrels query), exactly as trec_eval does. A query whose judgements
    are all 0 has nothing relevant: it counts, with 0 on every metric.

    \b
    Example:
      bgekit eval metrics --qrels qrels.tsv --run run.trec --metrics ndcg@10,recall@100 --json
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


#: every model option of the eval, compare commands; each command picks the ones it takes
MODEL_OPTIONS = {
    "mode": click.option("--mode", default="dense", show_default=True, metavar="HEAD|hybrid",
                         help="which head(s) retrieve: a head of the model (dense, sparse, colbert or a plugin's) "
                              "or hybrid; colbert re-scores the candidates of the retrieving heads (dense+sparse)"),
    "weights": click.option("--weights", metavar="WEIGHTS",
                            help="hybrid weights by head, e.g. dense=1,sparse=0.3,colbert=1, or three numbers "
                                 "dense,sparse,colbert (1,0.3,1); heads not named keep their own weight  "
                                 "[default: each head's own: dense 1, sparse 0.3, colbert 1]"),
    "top_k": click.option("--top-k", type=click.IntRange(min=1), default=100, show_default=True,
                          help="documents retrieved per query (a retriever), or taken from --run (a reranker)"),
    "batch_size": click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
                               help="texts encoded, or pairs scored, per batch"),
    "query_max_length": click.option("--query-max-length", type=click.IntRange(min=1),
                                     help="query length in tokens (retriever default 64; reranker default 3/4 "
                                          "of --max-length)"),
    "passage_max_length": click.option("--passage-max-length", type=click.IntRange(min=1),
                                       help="passage length in tokens of a retriever (default 512)"),
    "max_length": click.option("--max-length", type=click.IntRange(min=8), default=512, show_default=True,
                               help="tokens per (query, passage) pair of a reranker"),
    "run": click.option("--run", "run_path", type=click.Path(exists=True, dir_okay=False),
                        help="TREC run whose --top-k documents per query the reranker re-orders "
                             "(default: each query's judged documents in the qrels, and nothing else)"),
    "device": click.option("--device", default="auto", show_default=True,
                           help="device backend: auto, cpu, cuda, ascend"),
}


def model_options(*names: str):
    """The :data:`MODEL_OPTIONS` called ``names``, in that order."""
    def decorate(func):
        for name in reversed(names):
            func = MODEL_OPTIONS[name](func)
        return func
    return decorate


retrieval_options = model_options("mode", "weights", "top_k", "batch_size", "query_max_length",
                                  "passage_max_length", "device")
reranker_options = model_options("run", "top_k", "batch_size", "max_length", "query_max_length", "device")


def run_retriever_eval(model_path: str, data, names: list[str], options: dict, label: str | None = None,
                       quiet: bool = False):
    """:func:`bgekit.evaluate.runs.run_retriever_eval` with a progress bar (none with ``quiet``)."""
    from bgekit.commands.progress import step_progress
    from bgekit.evaluate import runs

    return runs.run_retriever_eval(model_path, data, names, options, label, quiet, progress=_progress(step_progress))


def run_reranker_eval(model_path: str, data, names: list[str], options: dict, label: str | None = None,
                      quiet: bool = False):
    """:func:`bgekit.evaluate.runs.run_reranker_eval` with a progress bar (none with ``quiet``)."""
    from bgekit.commands.progress import step_progress
    from bgekit.evaluate import runs

    return runs.run_reranker_eval(model_path, data, names, options, label, quiet, progress=_progress(step_progress))


def _progress(step_progress):  # noqa: ANN001, ANN202 - adapts step_progress to runs.Progress
    return lambda label, total, quiet: step_progress(label, total, quiet=quiet)


@eval_group.command("retriever")
@click.option("--model", "model_path", required=True, type=MODEL_DIR,
              help="a saved embedder directory (FlagEmbedding layout)")
@eval_data_options
@retrieval_options
@metrics_option
@result_options("write run.trec, metrics.json and per_query.jsonl here")
def retriever_command(model_path: str, eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                      qrels: str | None, metrics: tuple[str, ...], output_dir: str | None, report_dir: str | None,
                      as_json: bool, **options) -> None:
    """Encode a corpus and queries, search with the chosen head(s), and score against qrels.

    Dense search is exact (FAISS flat inner product), sparse search exact
    lexical matching; colbert re-scores the union of the dense and sparse top
    k, and hybrid sums the weighted scores of the three heads over the same
    candidates. Only judged queries are encoded.

    \b
    Example:
      bgekit eval retriever --model runs/m3/model --eval-data my_beir/ --mode hybrid --output results/m3
    """
    from bgekit.evaluate.metrics import resolve

    names = split_metrics(metrics)
    resolve(names)
    data = resolve_eval_data(eval_data, split, corpus, queries, qrels)
    result, found = run_retriever_eval(model_path, data, names, options, quiet=as_json)
    if output_dir:
        save_result(output_dir, result, found)
    emit([result], as_json, f"{model_path} ({options['mode']})", report_dir)


@eval_group.command("reranker")
@click.option("--model", "model_path", required=True, type=MODEL_DIR,
              help="a saved reranker directory (AutoModelForSequenceClassification, one label)")
@eval_data_options
@reranker_options
@metrics_option
@result_options("write run.trec, metrics.json and per_query.jsonl here")
def reranker_command(model_path: str, eval_data: str | None, split: str, corpus: str | None, queries: str | None,
                     qrels: str | None, run_path: str | None, metrics: tuple[str, ...], output_dir: str | None,
                     report_dir: str | None, as_json: bool, **options) -> None:
    """Re-order candidates with a reranker and score the new ranking against qrels.

    With --run, each judged query's best --top-k documents of the run (in
    trec_eval's order) are re-ordered. Without it, the candidates are each
    query's judged documents in the qrels (relevant and non-relevant) and
    nothing else: the metrics then measure ordering only. Default metrics add
    accuracy@1 (share of queries whose first document is relevant).

    \b
    Example:
      bgekit eval reranker --model runs/reranker/model --eval-data my_beir/ \\
          --run bm25.trec --top-k 100 --output results/reranker
    """
    from bgekit.evaluate.metrics import resolve

    names = split_metrics(metrics, RERANKER_METRICS)
    resolve(names)
    data = load_rerank_inputs(eval_data, split, corpus, queries, qrels, run_path, options["top_k"])
    result, reranked = run_reranker_eval(model_path, data, names, options, quiet=as_json)
    if output_dir:
        save_result(output_dir, result, reranked)
    what = f"top {options['top_k']} of {run_path}" if run_path else "judged documents"
    emit([result], as_json, f"{model_path} reranking {what}", report_dir)


@eval_group.command("pipeline")
@click.option("--retriever", "retriever_path", required=True, type=MODEL_DIR,
              help="a saved embedder directory (FlagEmbedding layout)")
@click.option("--reranker", "reranker_path", required=True, type=MODEL_DIR,
              help="a saved reranker directory")
@eval_data_options
@click.option("--retrieve-top", type=click.IntRange(min=1), default=100, show_default=True,
              help="documents the retriever returns per query")
@click.option("--rerank-top", type=click.IntRange(min=1),
              help="of those, how many the reranker re-orders  [default: all of --retrieve-top]")
@model_options("mode", "weights", "batch_size", "query_max_length", "passage_max_length", "max_length", "device")
@metrics_option
@result_options("write run.trec, metrics.json and per_query.jsonl here, the retriever's alone under "
                "retriever/", json_help="print JSON (retriever, then pipeline) instead of a table")
def pipeline_command(retriever_path: str, reranker_path: str, eval_data: str | None, split: str,
                     corpus: str | None, queries: str | None, qrels: str | None, retrieve_top: int,
                     rerank_top: int | None, metrics: tuple[str, ...], output_dir: str | None,
                     report_dir: str | None, as_json: bool, **options) -> None:
    """Retrieve the top N with a retriever, re-order the top M with a reranker, and score both.

    The pipeline's run holds N documents per query (fewer if the corpus is
    smaller): the reranker's order of the first M, then the retriever's order
    of the rest. The retriever's own metrics on its top N are shown beside it
    (and saved under OUTPUT/retriever). --query-max-length and
    --passage-max-length are the retriever's; --max-length is the reranker's
    pair length (its query takes at most 3/4 of it).

    \b
    Example:
      bgekit eval pipeline --retriever runs/m3/model --reranker runs/reranker/model \\
          --eval-data my_beir/ --retrieve-top 100 --rerank-top 20 --output results/pipeline
    """
    from bgekit.evaluate.metrics import resolve
    from bgekit.evaluate.reranking import (
        evaluate_pipeline,
        load_cross_encoder,
        pipeline_depths,
    )
    from bgekit.commands.progress import step_progress
    from bgekit.evaluate.display import distinct_labels
    from bgekit.evaluate.retrieval import load_embedder, parse_weights
    from bgekit.evaluate.runs import ReportingEncoder

    names = split_metrics(metrics, RERANKER_METRICS)
    resolve(names)
    weights = parse_weights(options["weights"])
    rerank_top = pipeline_depths(retrieve_top, rerank_top)  # fails before anything loads
    data = resolve_eval_data(eval_data, split, corpus, queries, qrels)
    retriever = load_embedder(retriever_path, options["device"])
    reranker = load_cross_encoder(reranker_path, options["device"], max_length=options["max_length"])
    reranked_pairs = len(data.query_ids) * min(rerank_top, len(data.doc_ids))
    retriever_name, reranker_name = distinct_labels([retriever_path, reranker_path])  # never "model + model"
    encoded_texts = len(data.doc_texts) + len(data.query_texts)
    with step_progress("encoding", encoded_texts, quiet=as_json) as progress:
        def reranked(n: int) -> None:  # the first scored pairs end the encoding phase
            if progress.label != "reranking":
                progress.phase("reranking", reranked_pairs)
            progress.advance(n)

        result, final, first, found = evaluate_pipeline(
            ReportingEncoder(retriever, progress.advance), reranker, data, names, retrieve_top=retrieve_top,
            rerank_top=rerank_top, label=f"{retriever_name} + {reranker_name}", mode=options["mode"],
            weights=weights, batch_size=options["batch_size"], query_max_length=options["query_max_length"],
            passage_max_length=options["passage_max_length"], max_length=options["max_length"], progress=reranked)
    first.label = f"{retriever_name} (retriever only)"
    result.info.update({"retriever": str(retriever_path), "reranker": str(reranker_path)})
    first.info["model"] = str(retriever_path)
    if output_dir:
        save_result(output_dir, result, final)
        save_result(Path(output_dir) / "retriever", first, found)
    emit([first, result], as_json, f"retrieve top {retrieve_top} ({options['mode']}), rerank top {rerank_top}",
         report_dir)
