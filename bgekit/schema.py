"""The recipe JSON Schema, built from the outer schema and the live registry.

:mod:`bgekit.recipe_schema` describes the sections of a recipe and marks the
places where a plugin's component goes (``{"$component": KIND}``) or where a
string names one (``"$name_of": KIND``). This module turns the markers into
real schema:

- :func:`outer_schema_for` — the outer schema plus what the registered tasks
  bring: the sections each task owns (:attr:`TaskSpec.sections`), markers
  still in place, so a task's section takes components like any other.
- :func:`recipe_schema` — the complete draft-07 schema that ``bgekit schema``
  prints and editors use: each component slot lists the registered names and,
  per name, that component's parameters (closed with
  ``additionalProperties: false``).
- :func:`outer_validation_schema` — stage one of recipe validation: the
  sections, with each component slot only required to be ``{name: ...}``.
- :func:`component_params_schema` — stage two: one selected component's
  closed parameter schema.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Callable, Iterable

from bgekit.recipe_schema import outer_schema
from bgekit.registry import ComponentSpec, ConflictError, MetricSpec, Registry, TaskSpec

#: Every loss also takes ``weight``: a recipe may train a weighted sum of losses.
LOSS_WEIGHT = {"type": "number", "default": 1.0, "description": "weight of this loss in the summed objective"}

REGENERATE_COMMAND = "bgekit schema --builtin-only > schemas/recipe.schema.json"


def component_params_schema(spec: ComponentSpec) -> dict[str, Any]:
    """The closed schema of one component entry: ``name`` plus its parameters."""
    fragment = spec.params_schema or {}
    properties: dict[str, Any] = {"name": {"const": spec.name}}
    properties.update(copy.deepcopy(dict(fragment.get("properties", {}))))
    if spec.kind == "loss":
        properties.setdefault("weight", dict(LOSS_WEIGHT))
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if fragment.get("required"):
        out["required"] = sorted(fragment["required"])
    if spec.summary:
        out["description"] = spec.summary
    return out


def outer_schema_for(registry: Registry, include: Callable[[ComponentSpec], bool] | None = None) -> dict[str, Any]:
    """:func:`bgekit.recipe_schema.outer_schema` with the sections of the registered tasks added.

    A section belongs to one task; two tasks that bring different schemas for
    one section name, or a task claiming a core section, is a conflict naming
    both owners.
    """
    keep = include or (lambda spec: True)
    schema = outer_schema()
    properties = schema["properties"]
    added: dict[str, Any] = {}
    owners: dict[str, TaskSpec] = {}
    for task in registry.all("task"):
        if not keep(task) or not isinstance(task, TaskSpec):
            continue
        for name, fragment in task.owned_sections().items():
            if name in properties and name not in owners:
                raise ConflictError(f"task '{task.name}' of plugin '{registry.provider('task', task.name)}' "
                                    f"claims the recipe section '{name}', which is bgekit's own")
            if name in owners and owners[name].owned_sections()[name] != fragment:
                first = owners[name]
                raise ConflictError(
                    f"recipe section '{name}' is defined by both task '{first.name}' (plugin "
                    f"'{registry.provider('task', first.name)}') and task '{task.name}' (plugin "
                    f"'{registry.provider('task', task.name)}')")
            owners[name] = task
            added[name] = copy.deepcopy(dict(fragment))
    # Task sections go before the training settings, so resolved recipes read in a stable order.
    keys = list(properties)
    at = keys.index("train") if "train" in keys else len(keys)
    schema["properties"] = {**{k: properties[k] for k in keys[:at]}, **added,
                            **{k: properties[k] for k in keys[at:]}}
    return schema


def outer_validation_schema(registry: Registry, outer: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stage one: component slots only need a ``name`` string; parameters come later. ``outer`` is
    :func:`outer_schema_for`'s result when the caller has built it already (it is not changed)."""

    def open_slot(kind: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "description": f"a registered {kind} name"}},
        }

    return replace_markers(outer if outer is not None else outer_schema_for(registry), open_slot,
                           lambda kind, node: _without_marker(node))


def recipe_schema(registry: Registry, include: Callable[[ComponentSpec], bool] | None = None) -> dict[str, Any]:
    """The complete recipe schema for the components in ``registry``.

    ``include`` filters components, e.g. to built-in plugins only, so the
    committed schema does not depend on what else is installed.
    """
    keep = include or (lambda spec: True)

    def specs(kind: str) -> list[ComponentSpec]:
        return [s for s in registry.all(kind) if keep(s)]

    def slot(kind: str) -> dict[str, Any]:
        chosen = specs(kind)
        names = [s.name for s in chosen]
        out: dict[str, Any] = {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"enum": names, "description": f"which {kind}: {', '.join(names) or 'none installed'}"}},
        }
        if chosen:  # draft-07 wants allOf non-empty
            out["allOf"] = [
                {"if": {"properties": {"name": {"const": s.name}}, "required": ["name"]},
                 "then": component_params_schema(s)}
                for s in chosen
            ]
        return out

    def name_of(kind: str, node: dict[str, Any]) -> dict[str, Any]:
        out = _without_marker(node)
        chosen = specs(kind)
        if kind == "metric":
            # Users write metrics with a cut-off (ndcg@10), so a pattern, not an enum.
            alternatives = "|".join(re.escape(s.name) for s in chosen) or "(?!)"
            out["pattern"] = f"^({alternatives})(@[0-9]+)?$"
            ks = {s.name: s for s in chosen if isinstance(s, MetricSpec)}
            out["description"] = "metric as name@k: " + ", ".join(
                f"{n}@k" if ks[n].takes_k else n for n in sorted(ks)) if ks else "no metric installed"
        else:
            names = [s.name for s in chosen]
            out.pop("type", None)
            out["enum"] = ["auto", *names] if out.get("default") == "auto" else names
        return out

    return replace_markers(outer_schema_for(registry, include), slot, name_of)


def replace_markers(
    schema: Any,
    component: Callable[[str], dict[str, Any]],
    name_of: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> Any:
    """A copy of ``schema`` with every ``$component`` / ``$name_of`` marker rebuilt."""
    if isinstance(schema, dict):
        if "$component" in schema:
            return component(schema["$component"])
        if "$name_of" in schema:
            return name_of(schema["$name_of"], schema)
        return {k: replace_markers(v, component, name_of) for k, v in schema.items()}
    if isinstance(schema, list):
        return [replace_markers(v, component, name_of) for v in schema]
    return schema


def _without_marker(node: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in node.items() if k != "$name_of"}


def dumps(schema: dict[str, Any]) -> str:
    """Deterministic JSON text (sorted keys, trailing newline) for committing."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def builtin_filter(registry: Registry, builtin_plugins: Iterable[str]) -> Callable[[ComponentSpec], bool]:
    """``include`` for :func:`recipe_schema` that keeps built-in plugins' components."""
    builtin = set(builtin_plugins)
    return lambda spec: registry.provider(spec.kind, spec.name) in builtin


def section_schema(name: str) -> dict[str, Any]:
    """The schema of one recipe section (markers in place), whether the core or a registered task owns it:
    the one place training settings take their defaults from (:mod:`bgekit.train.settings`)."""
    properties = outer_schema()["properties"]
    if name in properties:
        return properties[name]
    from bgekit.plugins import get_registry

    for task in get_registry().all("task"):
        sections = task.owned_sections()
        if name in sections:
            return copy.deepcopy(dict(sections[name]))
    raise KeyError(name)
