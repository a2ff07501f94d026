"""`bgekit compare`: is the candidate better than the baseline, with confidence?"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from bgekit.commands.eval import (
    RERANKER_METRICS,
    eval_data_options,
    load_rerank_inputs,
    metrics_option,
    model_options,
    resolve_eval_data,
    result_options,
    run_reranker_eval,
    run_retriever_eval,
    save_result,
    split_metrics,
)
from bgekit.commands.params import MODEL_DIR


def _model_kind(path: str, kind: str) -> str:
    """--kind, or (auto) what the model directory holds: a sequence classifier is a reranker."""
    from bgekit.evaluate.reranking import model_kind

    return model_kind(path) if kind == "auto" else kind


def _result(which: str, path: str, name: str, kind: str, names, loaders: dict, options: dict,
            output_dir: str | None, quiet: bool):
    """A result directory as it is, or a model evaluated now (its result saved under --output)."""
    from bgekit.evaluate.results import is_result_dir, read_result

    if is_result_dir(path):
        result = read_result(path)
        result.label = f"{which}: {result.label}"
        return result
    label = f"{which}: {name}"
    if kind == "reranker":
        result, ranking = run_reranker_eval(path, loaders["reranker"](), names, options, label=label, quiet=quiet)
    else:
        result, ranking = run_retriever_eval(path, loaders["retriever"](), names, options, label=label, quiet=quiet)
    if output_dir:
        save_result(Path(output_dir) / which, result, ranking)
    return result


@click.command("compare")
@click.option("--baseline", required=True, type=MODEL_DIR,
              help="the model you start from, or a result directory from 'bgekit eval ... --output'")
@click.option("--candidate", required=True, type=MODEL_DIR,
              help="the model to judge (e.g. your fine-tuned one), or a result directory")
@eval_data_options
@click.option("--kind", type=click.Choice(["auto", "retriever", "reranker"]), default="auto", show_default=True,
              help="what the models are; auto: a sequence-classification checkpoint is a reranker, else a retriever")
@model_options("mode", "weights", "run", "top_k", "batch_size", "query_max_length", "passage_max_length",
               "max_length", "device")
@metrics_option
@click.option("--samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="bootstrap resamples and randomisation permutations")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="confidence level of the intervals")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the resampling")
@result_options("write comparison.json (and each evaluated model's results) here")
def compare(baseline: str, candidate: str, eval_data, split, corpus, queries, qrels, kind: str, run_path,
            metrics, samples: int, confidence: float, seed: int, output_dir: str | None, report_dir: str | None,
            as_json: bool, **options) -> None:
    """Compare two retrievers, or two rerankers, on the same queries, metric by metric.

    For each metric: baseline, candidate, delta, paired bootstrap confidence
    interval of the delta, p-value of a two-sided paired randomisation
    (sign-flip) test, paired Cohen's d, and queries improved / hurt / tied.
    A model compared with itself gives deltas of 0 and p = 1.

    Rerankers re-order the same candidates: --run's top --top-k per query,
    or without --run each query's judged documents (as 'bgekit eval
    reranker' does). --mode and --weights apply to retrievers, --run and
    --max-length to rerankers.

    \b
    Examples:
      bgekit compare --baseline BAAI-bge-m3/ --candidate runs/m3/model --eval-data my_beir/
      bgekit compare --baseline results/base --candidate results/tuned   # two 'eval --output' dirs
      bgekit compare --baseline bge-reranker-base/ --candidate runs/reranker/model \\
          --eval-data my_beir/ --run bm25.trec --top-k 100
    """
    from bgekit.commands.eval import DEFAULT_METRICS
    from bgekit.data.atomic import atomic_write
    from bgekit.errors import BgekitError
    from bgekit.evaluate.compare import compare_results
    from bgekit.evaluate.display import comparison_table, distinct_labels, metrics_table, show_table
    from bgekit.evaluate.metrics import resolve
    from bgekit.evaluate.results import is_result_dir

    kinds = {which: _model_kind(path, kind) if not is_result_dir(path) else None
             for which, path in (("baseline", baseline), ("candidate", candidate))}
    models = {k for k in kinds.values() if k}
    if len(models) > 1:
        raise BgekitError(f"--baseline {baseline} is a {kinds['baseline']} but --candidate {candidate} is a "
                          f"{kinds['candidate']}; compare two retrievers or two rerankers (or give --kind)")
    names = split_metrics(metrics, RERANKER_METRICS if models == {"reranker"} else DEFAULT_METRICS)
    resolve(names)
    loaded = {}

    def loader(what: str, load):  # read the data once, and only when a model has to be evaluated
        def get():
            if what not in loaded:
                loaded[what] = load()
            return loaded[what]
        return get

    loaders = {
        "retriever": loader("retriever", lambda: resolve_eval_data(eval_data, split, corpus, queries, qrels)),
        "reranker": loader("reranker", lambda: load_rerank_inputs(eval_data, split, corpus, queries, qrels,
                                                                   run_path, options["top_k"])),
    }
    base_name, cand_name = distinct_labels([baseline, candidate])  # runs/a/model vs runs/b/model: a/model, b/model
    base = _result("baseline", baseline, base_name, kinds["baseline"], names, loaders, options, output_dir, as_json)
    cand = _result("candidate", candidate, cand_name, kinds["candidate"], names, loaders, options, output_dir,
                   as_json)
    comparison = compare_results(base, cand, names if metrics else None, samples=samples,
                                 confidence=confidence, seed=seed)
    payload = comparison.to_json()
    if output_dir:
        with atomic_write(Path(output_dir) / "comparison.json") as fh:
            fh.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    if report_dir:
        from bgekit.evaluate.report import write_report

        write_report(report_dir, [base, cand], comparison, title=f"{cand.label} vs {base.label}")
    if as_json:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    console = Console()
    show_table(metrics_table([base, cand]), console)
    show_table(comparison_table(payload["metrics"], title=f"{cand.label} - {base.label} "
                                f"({payload['queries']} queries, {confidence:.0%} CI, p: paired randomisation)"),
               console)
    if report_dir:
        console.print(f"report: {Path(report_dir) / 'report.html'}")
