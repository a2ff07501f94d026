"""Which code runs a recipe's ``task``: a ``module:function`` per task, imported on use.

Kept apart from :mod:`bgekit.tasks` so that :mod:`bgekit.pipeline` (whose
train step runs the recipe's task) and :mod:`bgekit.tasks` (which runs a
pipeline) do not import each other. A runner has the signature
``run(recipe: Recipe, backend: DeviceBackend) -> dict``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from bgekit.errors import BgekitError

TASK_RUNNERS: dict[str, str] = {
    "embedder": "bgekit.train.embedder_task:run",
    "reranker": "bgekit.train.reranker_task:run",
    "joint": "bgekit.train.joint_task:run",
    "mine": "bgekit.mine.mine_task:run",
    "evaluate": "bgekit.evaluate.evaluate_task:run",
    "augment": "bgekit.augment.task:run",
}


def runner_for(task: str) -> Callable[..., dict[str, Any]]:
    """Import the runner of ``task``; a clear error when this version has none."""
    target = TASK_RUNNERS.get(task)
    if target is None:
        raise BgekitError(f"unknown task '{task}'; tasks: {', '.join(TASK_RUNNERS)}")
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the runner's own module being absent means "not in this version";
        # a missing dependency inside it is a real error and keeps its message.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise BgekitError(f"task '{task}' is not available in this version of bgekit") from exc
        raise
    return getattr(module, function)
