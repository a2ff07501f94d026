"""Running a recipe's ``task`` around its output folder (lock, saved recipe, clean-up on failure).

Which code runs each task is the registered task's runner
(:mod:`bgekit.task_runners`), imported only when a recipe runs it, so
``bgekit recipes validate`` never imports a task's dependencies. A runner has the signature
``run(recipe: Recipe, backend: DeviceBackend) -> dict`` and returns a small
summary (paths written, final metrics). A recipe with ``steps`` runs them
through :mod:`bgekit.pipeline` instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bgekit.task_runners import runner_for

if TYPE_CHECKING:
    from bgekit.devices import DeviceBackend
    from bgekit.recipe import Recipe


def run_task(recipe: "Recipe", backend: "DeviceBackend") -> dict[str, Any]:
    """Run the recipe's ``steps`` or else its task, holding the output folder's lock.

    The resolved recipe is saved beside the outputs first; if the run fails before writing anything else
    into a folder that was empty, it is removed again (a failed run leaves nothing behind). SIGTERM and
    SIGINT stop a training run at a step boundary with a checkpoint (:mod:`bgekit.train.stop`), and
    ``ulimit -f`` becomes a write error instead of killing the process mid-write.
    """
    from bgekit.train import stop
    from bgekit.train.checkpoint import ignore_file_size_signal
    from bgekit.train.output_lock import locked_output_dir

    values = recipe.values
    if values.get("steps"):
        from bgekit.pipeline import check_order, run_pipeline

        check_order(list(values["steps"]), values.get("task"))
        execute: Callable[..., dict[str, Any]] = run_pipeline
    else:
        execute = runner_for(values["task"])
    output_dir = Path(values["output_dir"])
    created = not output_dir.exists()
    was_empty = created or (output_dir.is_dir() and not any(output_dir.iterdir()))
    ignore_file_size_signal()
    lock = locked_output_dir(output_dir) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext()
    try:
        with stop.handle_signals(), lock:
            try:
                recipe.save(output_dir)
                return execute(recipe, backend)
            except BaseException:
                if was_empty:
                    _remove_if_only_recipe(output_dir)
                raise
    finally:
        if created:
            with contextlib.suppress(OSError):
                output_dir.rmdir()  # only when empty: the failed run left nothing


def _remove_if_only_recipe(output_dir: Path) -> None:
    """Delete the resolved recipe of a failed run that wrote nothing else (the lock goes on release)."""
    from bgekit.recipe import RESOLVED_RECIPE_NAME
    from bgekit.train.output_lock import LOCK_FILE

    with contextlib.suppress(OSError):
        if {p.name for p in output_dir.iterdir()} <= {RESOLVED_RECIPE_NAME, LOCK_FILE}:
            (output_dir / RESOLVED_RECIPE_NAME).unlink(missing_ok=True)
