"""A run's lifecycle: the recipe's callbacks registered for the run, start and end hooks fired.

Callbacks whose spec is ``always_on`` (the JSONL metrics log) are added when
the recipe does not list them (listing one lets a recipe set its options).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from bgekit.errors import BgekitError
from bgekit.registry import Registry


def recipe_for_plugins(recipe: Any) -> dict[str, Any]:
    """The recipe values that callbacks see as ``run.recipe``: secrets read from ``${env:NAME}`` stay
    references (a tracker that uploads its config must never receive the key itself)."""
    masked = getattr(recipe, "values_for_plugins", None)
    return masked() if callable(masked) else recipe.values


def build_callbacks(entries: Sequence[dict[str, Any]], registry: Registry) -> list[tuple[str, Any]]:
    """``[(name, callback object)]`` for the recipe's ``callbacks`` list, then each always-on callback it omits."""
    entries = list(entries or [])
    listed = {e.get("name") for e in entries}
    entries += [{"name": spec.name} for spec in registry.all("callback")
                if getattr(spec, "always_on", False) and spec.name not in listed]
    built = []
    for i, entry in enumerate(entries):
        params = {k: v for k, v in entry.items() if k != "name"}
        spec = registry.get("callback", entry["name"])
        try:
            built.append((entry["name"], spec.create(**params)))
        except TypeError as exc:
            raise BgekitError(f"callbacks[{i}] '{entry['name']}': {exc}") from exc
    return built


@contextlib.contextmanager
def run_lifecycle(plugin_manager: Any, run: Any, callbacks: Sequence[tuple[str, Any]]) -> Iterator[None]:
    """Register ``callbacks`` for the block; fire ``bgekit_on_run_start`` and ``bgekit_on_run_end``."""
    registered: list[str] = []
    try:
        for name, callback in callbacks:
            plugin_name = plugin_manager.register(callback, name=f"callback:{name}:{id(callback)}")
            if plugin_name is not None:
                registered.append(plugin_name)
        plugin_manager.hook.bgekit_on_run_start(run=run)
        status = "error"
        try:
            yield
            status = "ok"
        except Exception as exc:
            if getattr(exc, "signum", None):  # bgekit.train.stop.Stopped: checkpoint saved, resumable
                status = "interrupted"
            raise
        finally:
            plugin_manager.hook.bgekit_on_run_end(run=run, status=status)
    finally:
        for plugin_name in registered:
            plugin_manager.unregister(name=plugin_name)
