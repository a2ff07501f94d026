"""``task: evaluate``: what ``bgekit eval retriever`` does, driven by a recipe.

The recipe's ``model.name_or_path`` is encoded and searched over its
``evaluate`` section's BEIR-style files (``corpus``, ``queries``, ``qrels``)
with ``evaluate.mode``, ``top_k``, ``batch_size`` and ``metrics``; the run
file, ``metrics.json`` and ``per_query.jsonl`` go into ``output_dir``. It
calls the very functions the command calls, so the two agree number for
number on the same data.
"""

from __future__ import annotations

from typing import Any

from bgekit.errors import BgekitError

EVAL_FILES = ("corpus", "queries", "qrels")


def run(recipe: Any, backend: Any) -> dict[str, Any]:
    """Evaluate the recipe's model on its ``evaluate`` data; returns the output folder and the aggregates."""
    from rich.console import Console

    from bgekit.evaluate.display import metrics_table, show_table
    from bgekit.evaluate.metrics import resolve
    from bgekit.evaluate.retrieval import load_eval_data
    from bgekit.evaluate.runs import DEFAULT_METRICS, run_retriever_eval, save_result
    from bgekit.model_paths import resolve_model_path

    values = recipe.values
    section = dict(values.get("evaluate") or {})
    missing = [k for k in EVAL_FILES if not section.get(k)]
    if missing:
        raise BgekitError(f"task: evaluate needs evaluate.{', evaluate.'.join(missing)} (BEIR-style files)")
    model = values.get("model") or {}
    if not model.get("name_or_path"):
        raise BgekitError("task: evaluate needs model.name_or_path, the saved embedder to evaluate")
    model_path = resolve_model_path(str(model["name_or_path"]))
    names = list(section.get("metrics") or DEFAULT_METRICS)
    resolve(names)  # bad metric names fail before the model loads
    data = load_eval_data(*(section[k] for k in EVAL_FILES))
    options = {
        "device": getattr(backend, "name", "auto"),
        "mode": section.get("mode", "dense"),
        "weights": None,  # the hybrid default, as the command's --weights default
        "top_k": section.get("top_k", 100),
        "batch_size": section.get("batch_size", 64),
        "query_max_length": model.get("query_max_length"),
        "passage_max_length": model.get("passage_max_length"),
    }
    result, found = run_retriever_eval(model_path, data, names, options)
    output_dir = values["output_dir"]
    save_result(output_dir, result, found)
    show_table(metrics_table([result], title=f"{model_path} ({options['mode']})"), Console())
    return {"output": str(output_dir), "metrics": result.values.summary()}
