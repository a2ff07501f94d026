"""Which code runs a recipe's ``task``: the registered :class:`bgekit.registry.TaskSpec` of that name.

Tasks come from the ``bgekit_tasks`` hook (the built-in ones from
``plugins/bgekit_tasks``); a runner is imported only when a recipe runs it.
Kept apart from :mod:`bgekit.tasks` so that :mod:`bgekit.pipeline` (whose
train step runs the recipe's task) and :mod:`bgekit.tasks` (which runs a
pipeline) do not import each other. A runner has the signature
``run(recipe: Recipe, backend: DeviceBackend) -> dict``.
"""

from __future__ import annotations

from typing import Any, Callable

from bgekit.plugins import get_registry
from bgekit.registry import TaskSpec


def runner_for(task: str) -> Callable[..., dict[str, Any]]:
    """Import the runner of ``task``; a clear error when no plugin provides it or its module is absent."""
    spec = get_registry().get("task", task)
    assert isinstance(spec, TaskSpec)
    return spec.load_runner()
