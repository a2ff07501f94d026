"""Which code runs a recipe's ``task``.

Each task maps to ``module:function``, imported only when a recipe runs it,
so ``bgekit recipes validate`` and ``bgekit --help`` never import torch. A
runner has the signature ``run(recipe: Recipe, backend: DeviceBackend) -> dict``
and returns a small summary (paths written, final metrics). A recipe with
``steps`` runs them through :mod:`bgekit.pipeline` instead.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from bgekit.errors import BgekitError

if TYPE_CHECKING:
    from bgekit.devices import DeviceBackend
    from bgekit.recipe import Recipe

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


def run_task(recipe: "Recipe", backend: "DeviceBackend") -> dict[str, Any]:
    """Save the resolved recipe beside the outputs, then run the recipe's ``steps`` or else its task."""
    if recipe.values.get("steps"):
        from bgekit.pipeline import check_order, run_pipeline

        check_order(list(recipe.values["steps"]), recipe.values.get("task"))
        recipe.save(recipe.values["output_dir"])
        return run_pipeline(recipe, backend)
    runner = runner_for(recipe.values["task"])
    recipe.save(recipe.values["output_dir"])
    return runner(recipe, backend)
