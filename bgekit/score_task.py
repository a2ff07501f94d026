"""``task: score``: teacher scores for ``data.train`` from the ``score`` section's cross-encoder.

The same work as the pipeline's ``score`` step (:mod:`bgekit.pipeline`) and
``bgekit score``: every (query, pos) and (query, neg) pair of one training
file gets the teacher's score, written as ``pos_scores``/``neg_scores`` to
``<output_dir>/scored.jsonl``; a stopped run resumes without rescoring
finished rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from bgekit.errors import BgekitError

OUTPUT_NAME = "scored.jsonl"

console = Console(stderr=True)


def score_data(values: dict[str, Any], backend: Any, source: str, output: Path) -> dict[str, Any]:
    """Score ``source`` into ``output`` with the recipe's ``score`` settings; a small summary."""
    from bgekit.teacher import TeacherScorer, score_file
    from bgekit.train.settings import setting  # the schema's defaults, for values built in code

    settings = values.get("score") or {}
    reranker = settings.get("reranker")
    if not reranker:
        raise BgekitError("score.reranker: the teacher cross-encoder is not set (e.g. BAAI/bge-reranker-v2-m3)")
    scorer = TeacherScorer(reranker, device=getattr(backend, "name", "auto"),
                           max_length=setting(settings, "score", "max_length"),
                           query_max_length=settings.get("query_max_length"),
                           batch_size=setting(settings, "score", "batch_size"))
    fmt = setting(values.get("data"), "data", "format")
    summary = score_file(source, output, scorer, normalize=bool(settings.get("normalize")), fmt=fmt)
    console.print(f"scored {summary.rows} rows into {output} ({summary.pairs_scored} pairs, "
                  f"{summary.seconds:.1f}s)")
    return {"output": str(output), "rows": summary.rows, "pairs_scored": summary.pairs_scored}


def run(recipe: Any, backend: Any) -> dict[str, Any]:
    """Score the recipe's one training file into ``<output_dir>/scored.jsonl``."""
    values = recipe.values
    train = (values.get("data") or {}).get("train")
    files = [train] if isinstance(train, str) else list(train or [])
    if len(files) != 1:
        raise BgekitError(f"data.train: task score reads one data file, and {len(files)} are given"
                          f"{'; merge them first' if files else ''}")
    output = Path(values["output_dir"]) / OUTPUT_NAME
    output.parent.mkdir(parents=True, exist_ok=True)
    return score_data(values, backend, files[0], output)
