"""``task: mine`` in a recipe: mine negatives for ``data.train`` into ``output_dir/mined.jsonl``.

The miner and its parameters come from the recipe's ``miner`` section
(without one: the miner the ``mine`` task's spec declares, the dense miner
for the built-in; ``miner.corpus`` is the candidate pool), the model and encoding
lengths from ``model``; the summary is saved as ``output_dir/mine_summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError
from bgekit.mine.retriever import MiningContext
from bgekit.mine.run import format_summary, mine_file
from bgekit.registry import Registry, task_default

OUTPUT_NAME = "mined.jsonl"
SUMMARY_NAME = "mine_summary.json"
#: the task whose declared ``miner`` applies to a recipe without one (the pipeline's mine step runs this
#: task inside a training recipe, whose own task declares no miner)
TASK = "mine"


def recipe_miner(values: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """A copy of the recipe's ``miner`` section, or of the mine task's declared default when it has none."""
    return dict(values.get("miner") or task_default(registry, TASK, "miner"))


def run(recipe: Any, backend: Any) -> dict[str, Any]:
    values = recipe.values
    train = values.get("data", {}).get("train")
    if isinstance(train, list):
        if len(train) != 1:
            raise BgekitError("task: mine takes one data.train file; merge the files or run one recipe per file")
        train = train[0]
    if not train:
        raise BgekitError("task: mine needs data.train, the file to mine negatives for")
    from bgekit.plugins import get_registry

    miner = recipe_miner(values, get_registry())
    model = values.get("model", {})
    context = MiningContext(model=model.get("name_or_path"), device=backend.name,
                            batch_size=values.get("evaluate", {}).get("batch_size", 64),
                            query_max_length=model.get("query_max_length"),
                            passage_max_length=model.get("passage_max_length"),
                            cache_dir=Path(values["output_dir"]) / "embedding_cache")
    output = Path(values["output_dir"]) / OUTPUT_NAME
    corpus = miner.pop("corpus", None)
    miner.pop("refresh_every", None)
    summary = mine_file(train, output, miner.pop("name"), miner, context, corpus=corpus,
                        fmt=values.get("data", {}).get("format", "auto"))
    for line in format_summary(summary):
        print(line)
    with atomic_write(Path(values["output_dir"]) / SUMMARY_NAME) as handle:
        handle.write(json.dumps(summary.to_json(), indent=2) + "\n")
    return {"output": str(output), "rows": summary.stats.rows}
