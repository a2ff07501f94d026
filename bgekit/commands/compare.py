"""`bgekit compare`: is the candidate better than the baseline, with confidence?"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from bgekit.commands.eval import (
    eval_data_options,
    metrics_option,
    report_option,
    resolve_eval_data,
    retrieval_options,
    run_retriever_eval,
    save_retriever_result,
    split_metrics,
)


def _result(which: str, path: str, names, data_loader, options: dict, output_dir: str | None):
    """A result directory as it is, or a model evaluated now (its result saved under --output)."""
    from bgekit.evaluate.results import is_result_dir, read_result

    if is_result_dir(path):
        result = read_result(path)
        result.label = f"{which}: {result.label}"
        return result
    result, found = run_retriever_eval(path, data_loader(), names, options, label=f"{which}: {Path(path).name}")
    if output_dir:
        save_retriever_result(Path(output_dir) / which, result, found)
    return result


@click.command("compare")
@click.option("--baseline", required=True, type=click.Path(exists=True, file_okay=False),
              help="the model you start from, or a result directory from 'bgekit eval ... --output'")
@click.option("--candidate", required=True, type=click.Path(exists=True, file_okay=False),
              help="the model to judge (e.g. your fine-tuned one), or a result directory")
@eval_data_options
@retrieval_options
@metrics_option
@click.option("--samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="bootstrap resamples and randomisation permutations")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="confidence level of the intervals")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the resampling")
@click.option("--output", "output_dir", type=click.Path(file_okay=False),
              help="write comparison.json (and each evaluated model's results) here")
@report_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def compare(baseline: str, candidate: str, eval_data, split, corpus, queries, qrels, metrics, samples: int,
            confidence: float, seed: int, output_dir: str | None, report_dir: str | None, as_json: bool,
            **options) -> None:
    """Compare two retrievers on the same queries, metric by metric.

    For each metric: baseline, candidate, delta, paired bootstrap confidence
    interval of the delta, p-value of a two-sided paired randomisation
    (sign-flip) test, paired Cohen's d, and queries improved / hurt / tied.
    A model compared with itself gives deltas of 0 and p = 1.
    """
    from bgekit.data.atomic import atomic_write
    from bgekit.evaluate.compare import compare_results
    from bgekit.evaluate.display import comparison_table, metrics_table
    from bgekit.evaluate.metrics import resolve

    names = split_metrics(metrics)
    resolve(names)
    loaded = {}

    def data_loader():  # read the data once, and only when a model has to be evaluated
        if "data" not in loaded:
            loaded["data"] = resolve_eval_data(eval_data, split, corpus, queries, qrels)
        return loaded["data"]

    base = _result("baseline", baseline, names, data_loader, options, output_dir)
    cand = _result("candidate", candidate, names, data_loader, options, output_dir)
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
    console.print(metrics_table([base, cand]))
    console.print(comparison_table(payload["metrics"], title=f"{cand.label} - {base.label} "
                                   f"({payload['queries']} queries, {confidence:.0%} CI, p: paired randomisation)"))
    if report_dir:
        console.print(f"report: {Path(report_dir) / 'report.html'}")
