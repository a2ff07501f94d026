"""Recipes: YAML files, ``extends``, command-line overrides, validation, provenance.

A recipe is resolved in layers, lowest first::

    schema defaults < device backend defaults < extended recipe(s) < recipe file < command line

Mappings merge key by key; anything else (scalars, lists) is replaced whole.
Every value remembers the layer (and file and line) it came from, so a user
can see why a run used a learning rate, and every error points at the line
to fix.

Validation has two stages, and all problems of both are reported together:

1. the outer schema (:mod:`bgekit.recipe_schema`): sections, types, unknown
   keys; each component slot only needs a ``name``;
2. each selected component's own parameter schema from the registry, plus
   the strings that name a component (``device.name``, ``data.format``,
   ``evaluate.metrics``).

Values filled in from schema defaults are not checked against the registry:
they are bgekit's choice, not the user's, and a run that needs a missing
default component fails with the registry's message when it looks it up.

Paths inside a recipe (``data.train``, ``evaluate.corpus``, ``output_dir``)
are relative to the working directory; ``extends`` is relative to the file
that contains it. A value written ``${env:NAME}`` is read from the
environment; wherever the recipe is printed or saved the reference itself
is written back, so the secret never lands on disk and the saved recipe
still runs where the variable is set.

The pieces, one job each: :mod:`bgekit.recipe_yaml` (bounded YAML with the
line of every key), :mod:`bgekit.recipe_extends` (``extends`` and
command-line overrides), :mod:`bgekit.recipe_provenance` (origins and the
merged tree), :mod:`bgekit.recipe_messages` (one line per problem). This
module puts them together (:func:`load_recipe`) and holds :class:`Recipe`.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

import bgekit
from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError
from bgekit.recipe_extends import (
    EXTENDS_ANYWHERE_ENV, MAX_EXTENDS_DEPTH, Override, apply_override, parse_override, read_chain)
from bgekit.recipe_messages import (
    HINTED_UNKNOWN_KEYS, RecipeError, mask_secrets, schema_problems, shape_fits, sorted_problems, type_name)
from bgekit.recipe_provenance import (
    COMMAND_LINE, DEVICE_DEFAULTS, EXTENDED_RECIPE, RECIPE_FILE, SCHEMA_DEFAULT, KeyPath, Origin, OriginTree,
    display_path, dotted, json_path, leaf_paths, node_paths)
from bgekit.recipe_yaml import (
    MAX_RECIPE_BYTES, MAX_RECIPE_DEPTH, MAX_RECIPE_NODES, OneLineDumper, RecipeLoader, RecipeYamlError, load_yaml,
    node_graph_problem, node_lines, parse_yaml_value)
from bgekit.registry import Registry
from bgekit.schema import component_params_schema, outer_schema_for, outer_validation_schema

#: what other modules import from here (the pieces live in recipe_yaml, recipe_extends, recipe_provenance,
#: recipe_messages; this module puts them together)
__all__ = [
    "COMMAND_LINE", "DEVICE_DEFAULTS", "EXTENDED_RECIPE", "EXTENDS_ANYWHERE_ENV", "HINTED_UNKNOWN_KEYS",
    "MAX_EXTENDS_DEPTH", "MAX_RECIPE_BYTES", "MAX_RECIPE_DEPTH", "MAX_RECIPE_NODES", "RECIPE_FILE",
    "RESOLVED_RECIPE_NAME", "SCHEMA_DEFAULT", "KeyPath", "Origin", "Override", "Recipe", "RecipeError",
    "RecipeYamlError", "dotted", "json_path", "leaf_paths", "load_recipe", "load_yaml", "node_graph_problem",
    "parse_override", "parse_yaml_value", "type_name",
]

RESOLVED_RECIPE_NAME = "resolved_recipe.yaml"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


# ---------------------------------------------------------------------------
# Walking the schema beside the values
# ---------------------------------------------------------------------------


def _markers(schema: Any, value: Any, path: KeyPath = ()) -> Iterator[tuple[str, str, KeyPath, Any]]:
    """Each ``("component" | "name_of", kind, path, value)`` the values fill."""
    if not isinstance(schema, dict):
        return
    if "$component" in schema:
        yield "component", schema["$component"], path, value
        return
    if "$name_of" in schema:
        yield "name_of", schema["$name_of"], path, value
        return
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                yield from _markers(sub, value[key], path + (key,))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _markers(schema["items"], item, path + (index,))
    for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
        if shape_fits(alternative, value):
            yield from _markers(alternative, value, path)
            break


def _fill_defaults(schema: dict[str, Any], value: Any, path: KeyPath, tree: OriginTree, origin: Origin) -> None:
    """Add each missing key that has a default; create absent sections that need nothing."""
    if "$component" in schema:
        return  # filled from the component's own schema in stage two
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key == "extends":
                continue
            if key not in value:
                if "default" in sub:
                    tree.put(path + (key,), copy.deepcopy(sub["default"]), lambda _p: origin)
                elif sub.get("type") == "object" and "properties" in sub and not sub.get("required"):
                    tree.put(path + (key,), {}, lambda _p: origin)
            if key in value:
                _fill_defaults(sub, value[key], path + (key,), tree, origin)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _fill_defaults(schema["items"], item, path + (index,), tree, origin)
    for alternative in schema.get("oneOf", []):
        if shape_fits(alternative, value):
            _fill_defaults(alternative, value, path, tree, origin)
            break


def _ordered(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with keys in the schema's order (task, model, data, ...), for reading."""
    for alternative in schema.get("oneOf", []):
        if shape_fits(alternative, value):
            return _ordered(alternative, value)
    if "$component" in schema and isinstance(value, dict):
        return {"name": value["name"], **value} if "name" in value else value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        keys = [k for k in props if k in value] + [k for k in value if k not in props]
        return {k: _ordered(props.get(k, {}), value[k]) for k in keys}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_ordered(schema["items"], v) for v in value]
    return value


# ---------------------------------------------------------------------------
# The resolved recipe
# ---------------------------------------------------------------------------


@dataclass
class Recipe:
    """A validated recipe: plain values, where each came from, and how to save it."""

    path: Path
    values: dict[str, Any]
    provenance: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)  # dotted key -> the '${env:NAME}' it was written as
    plugins: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """A value by dotted key (``train.learning_rate``), or ``default``."""
        node: Any = self.values
        for part in key.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    def masked_values(self) -> dict[str, Any]:
        """The values with every secret put back as the ``${env:NAME}`` it was read from, safe to print or save."""
        masked = copy.deepcopy(self.values)
        for key, reference in self.secrets.items():
            *parents, last = [int(p) if p.isdigit() else p for p in key.split(".")]
            node: Any = masked
            for part in parents:
                node = node[part]
            node[last] = reference
        return masked

    def values_for_plugins(self) -> dict[str, Any]:
        """What to hand plugins and callbacks as "the run's recipe": :meth:`masked_values`.

        A tracker that uploads its config must never receive a key read from
        ``${env:NAME}``; a component that needs the secret gets it as its own
        parameter, not through the recipe.
        """
        return self.masked_values()

    def to_yaml(self, header: bool = True) -> str:
        """The resolved recipe as YAML, each value followed by ``# from: <source>``."""
        text = yaml.dump(self.masked_values(), Dumper=OneLineDumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=True, width=10**9)
        lines = text.splitlines()
        key_lines: dict[KeyPath, int] = {}
        node_lines(yaml.compose(text, Loader=RecipeLoader), (), key_lines, "", [])
        for leaf in leaf_paths(self.values):
            line = key_lines.get(leaf)
            if line is not None and dotted(leaf) in self.provenance:
                lines[line - 1] += f"  # from: {self.provenance[dotted(leaf)]}"
        body = "\n".join(lines) + "\n"
        return (self._header() if header else "") + body

    def _header(self) -> str:
        out = [
            f"# Resolved from {display_path(self.path)} by bgekit {bgekit.__version__}.",
            "# Precedence: command line > recipe file > extended recipe > device backend defaults > schema default.",
            "# Plugins:",
        ]
        for name, info in sorted(self.plugins.items()):
            error = f": {info['error']}" if info.get("error") else ""
            out.append(f"#   {name} {info.get('version') or '?'} ({info.get('source')}, {info.get('status')}{error})")
        return "\n".join(out) + "\n"

    def save(self, output_dir: str | Path | None = None) -> Path:
        """Write ``resolved_recipe.yaml`` into ``output_dir`` (default: the recipe's) atomically."""
        target = Path(output_dir if output_dir is not None else self.values["output_dir"]) / RESOLVED_RECIPE_NAME
        with atomic_write(target) as fh:
            fh.write(self.to_yaml())
        return target


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_recipe(
    path: str | Path,
    overrides: Iterable[str | Override] = (),
    *,
    registry: Registry | None = None,
    backend: Any = None,
) -> Recipe:
    """Read, merge, validate and resolve a recipe; raise :class:`RecipeError` listing every problem.

    ``backend`` (a :class:`bgekit.devices.DeviceBackend`) adds its
    ``recipe_defaults()`` as the layer below the recipe files.
    """
    from bgekit.plugins import get_plugin_manager

    manager = get_plugin_manager()
    registry = registry if registry is not None else manager.registry
    recipe_path = Path(path)
    shown = display_path(recipe_path)

    # Read everything first: files that do not parse leave nothing to validate.
    problems: list[str] = []
    layers = read_chain(recipe_path, problems)
    parsed: list[Override] = []
    for item in overrides:
        try:
            parsed.append(item if isinstance(item, Override) else parse_override(item))
        except RecipeError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RecipeError(problems, what=shown)

    tree = OriginTree()
    if backend is not None:
        device = Origin(DEVICE_DEFAULTS, detail=getattr(backend, "name", ""))
        tree.merge((), backend.recipe_defaults(), lambda _p: device)
    for layer in layers:
        tree.merge((), layer.data, layer.origin)
    located: list[tuple[str, KeyPath, str]] = []  # (location, path, message)
    command_line = Origin(COMMAND_LINE)
    for override in parsed:
        apply_override(tree, override, command_line, located)

    secrets = _resolve_env(tree, located, shown)
    _check_finite(tree, located, shown)
    schema = outer_schema_for(registry)
    _fill_defaults(schema, tree.values, (), tree, Origin(SCHEMA_DEFAULT))
    for where, message in schema_problems(outer_validation_schema(registry, schema), tree.values):
        located.append((tree.location(where, shown), where, message))
    _check_components(schema, tree, registry, located, shown)
    _check_output_dir(tree, located, shown)

    if located:
        raise RecipeError(sorted_problems(mask_secrets(located, tree, secrets), shown), what=shown)
    values = _ordered(schema, tree.values)
    provenance = {dotted(p): str(tree.origin(p)) for p in leaf_paths(values) if p}
    plugins = {i.name: {"version": i.version, "source": i.source, "status": i.status, "error": i.error or ""}
               for i in manager.plugin_infos()}
    return Recipe(recipe_path, values, provenance, secrets, plugins)


def _resolve_env(tree: OriginTree, located: list[tuple[str, KeyPath, str]], shown: str) -> dict[str, str]:
    """Replace ``${env:NAME}`` in string values; return each such dotted key with the text it held."""
    secrets: dict[str, str] = {}
    for path in list(node_paths(tree.values, ())):
        value = tree.get(path)
        if not isinstance(value, str) or "${env:" not in value:
            continue
        if value.count("${env:") != len(_ENV_REF.findall(value)):
            located.append((tree.location(path, shown), path,
                            "malformed environment reference; write ${env:NAME} (NAME: letters, digits and _, "
                            "not starting with a digit)"))
            continue
        missing = [name for name in _ENV_REF.findall(value) if name not in os.environ]
        if missing:
            located.append((tree.location(path, shown), path,
                            f"environment variable {', '.join(missing)} is not set (the recipe reads "
                            f"{value}); export it before running"))
            continue
        parent = tree.get(path[:-1])
        parent[path[-1]] = _ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
        secrets[dotted(path)] = value
    return secrets


def _check_finite(tree: OriginTree, located: list[tuple[str, KeyPath, str]], shown: str) -> None:
    """Every number a user wrote is finite: ``.inf`` and ``.nan`` train NaN or fail hours later."""
    for path in node_paths(tree.values, ()):
        value = tree.get(path)
        if isinstance(value, float) and not math.isfinite(value):
            written = ".nan" if value != value else (".inf" if value > 0 else "-.inf")
            located.append((tree.location(path, shown), path, f"must be a finite number, not {written}"))


def _check_output_dir(tree: OriginTree, located: list[tuple[str, KeyPath, str]], shown: str) -> None:
    """``output_dir`` names a folder of its own: not empty, not the working folder, not / or home.

    A run writes checkpoints there and deletes old ones; pointed at the
    current folder it mixes with (and could prune) the user's own files.
    """
    value = tree.values.get("output_dir")
    if not isinstance(value, str):
        return
    where = tree.location(("output_dir",), shown)
    if not value.strip():
        problem = "is empty"
    else:
        target = Path(value).expanduser().resolve()
        if target == Path.cwd().resolve():
            problem = f"'{value}' is the current folder"
        elif target == Path(target.anchor) or target == Path.home().resolve():
            problem = f"'{value}' is {'the filesystem root' if target == Path(target.anchor) else 'your home folder'}"
        else:
            return
    located.append((where, ("output_dir",), f"{problem}; a run writes (and prunes) checkpoints in its output "
                    "folder, so name a folder of its own, e.g. output_dir: runs/try1"))


def _check_components(schema: dict[str, Any], tree: OriginTree, registry: Registry,
                      located: list[tuple[str, KeyPath, str]], shown: str) -> None:
    """Stage two: each selected component's parameters, and names of components.

    The first :data:`HINTED_UNKNOWN_KEYS` unknown names get the registry's
    "did you mean"; later ones are only named, so a file listing thousands of
    them is still refused at once.
    """
    hinted = 0
    for what, kind, path, value in list(_markers(schema, tree.values)):
        from_default = tree.origin(path).source == SCHEMA_DEFAULT
        if what == "name_of":
            if isinstance(value, str) and value != "auto" and not from_default:
                base = value.partition("@")[0].strip().lower() if kind == "metric" else value
                if hinted >= HINTED_UNKNOWN_KEYS and base not in registry.names(kind):
                    located.append((tree.location(path, shown), path, f"unknown {kind} '{value}'"))
                    continue
                try:
                    registry.metric(value) if kind == "metric" else registry.get(kind, value)
                except BgekitError as exc:
                    hinted += 1
                    message = str(exc)
                    if kind == "metric":  # the registry looks names up lowercased; show them as written
                        written = value.partition("@")[0].strip()
                        message = message.replace(f"metric '{written.lower()}'", f"metric '{written}'", 1)
                    located.append((tree.location(path, shown), path, message))
            continue
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            continue  # stage one reported the shape
        name_path = path + ("name",)
        if value["name"] not in registry.names(kind):
            if not tree.origin(name_path).source == SCHEMA_DEFAULT:
                hinted += 1
                message = (registry.unknown_message(kind, value["name"]) if hinted <= HINTED_UNKNOWN_KEYS
                           else f"unknown {kind} '{value['name']}'")
                located.append((tree.location(name_path, shown), name_path, message))
            continue
        spec = registry.get(kind, value["name"])
        slot = ".".join(str(key) for key in path if not isinstance(key, int))  # loss[1] is slot "loss"
        mismatch = loss_task_mismatch(spec, tree.values.get("task"), slot, registry)
        if mismatch:
            located.append((tree.location(name_path, shown), name_path, mismatch))
            continue
        params = component_params_schema(spec)
        default = Origin(SCHEMA_DEFAULT, detail=f"{kind} '{spec.name}'")
        _fill_defaults(params, value, path, tree, default)
        for where, message in schema_problems(params, value, path):
            located.append((tree.location(where, shown), where, message))


#: The kind of loss (a loss spec's ``task``: whose scores it takes) each loss slot of a built-in task takes: a
#: single-model task's ``loss`` trains that model; the joint task's ``loss`` is the retriever's own and its
#: ``joint.reranker_loss`` the reranker's.
LOSS_SLOT_TASKS: dict[str, dict[str, str]] = {
    "embedder": {"loss": "embedder"},
    "reranker": {"loss": "reranker"},
    "joint": {"loss": "embedder", "joint.reranker_loss": "reranker"},
}

#: What a slot is for, where the task's name does not say it.
_LOSS_SLOT_ROLES = {("joint", "loss"): "the retriever's own loss",
                    ("joint", "joint.reranker_loss"): "the reranker's loss"}


def _a(word: str) -> str:
    return f"a{'n' if word[:1] in tuple('aeiou') else ''} {word}"


def loss_task_mismatch(spec: Any, task: Any, slot: str, registry: Registry) -> str | None:
    """Why loss ``spec`` cannot fill ``slot`` (``"loss"``, ``"joint.reranker_loss"``) of a ``task`` recipe (an
    embedder loss for a reranker, ...), or None. Shared by validation and the runners' own check."""
    expected = LOSS_SLOT_TASKS.get(task, {}).get(slot) if isinstance(task, str) else None
    loss_task = getattr(spec, "task", None)
    if spec.kind != "loss" or expected is None or loss_task in (None, expected):
        return None
    fitting = [s.name for s in registry.all("loss") if getattr(s, "task", None) == expected]
    role = _LOSS_SLOT_ROLES.get((task, slot))
    why = f"in {_a(task)} recipe '{slot}' is {role}" if role else f"this recipe's task is {task}"
    return (f"loss '{spec.name}' trains {_a(loss_task)}, but {why}; {expected} losses: "
            f"{', '.join(fitting) or 'none installed'}")


def check_loss_tasks(entries: list[dict[str, Any]], task: str, slot: str,
                     registry: Registry) -> list[dict[str, Any]]:
    """``entries`` themselves (a loss slot's components), each refused unless it fits ``slot`` of a ``task``
    recipe: validation's check again at run time, for a recipe built in code."""
    for entry in entries:
        mismatch = loss_task_mismatch(registry.get("loss", entry["name"]), task, slot, registry)
        if mismatch:
            raise BgekitError(mismatch if slot == "loss" else f"{slot}: {mismatch}")
    return entries
