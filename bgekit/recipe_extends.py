"""Layers above a recipe file and below it: ``extends`` (base recipes) and command-line overrides.

``extends`` is resolved relative to the file that contains it and must stay
inside the folder of the recipe the user ran (unless
``BGEKIT_EXTENDS_ANYWHERE=1``); overrides are dotted keys (``a.b=value``
sets, ``~a.b`` removes) whose values are read as YAML.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgekit.recipe_messages import RecipeError, type_name
from bgekit.recipe_provenance import (COMMAND_LINE, EXTENDED_RECIPE, KeyPath, Origin, OriginTree, display_path,
                                      json_path)
from bgekit.recipe_yaml import FileLayer, RecipeYamlError, parse_yaml_value, read_recipe_file
from bgekit.registry import did_you_mean

#: how many recipe files one ``extends`` chain may have
MAX_EXTENDS_DEPTH = 16
#: Set to 1 to let ``extends`` name a base recipe outside the recipe's folder (an absolute or ``../`` path).
EXTENDS_ANYWHERE_ENV = "BGEKIT_EXTENDS_ANYWHERE"


def _extends_problem(base: Any, path: Path, root: Path) -> tuple[str, Path | None]:
    """``(problem, None)`` for an ``extends`` value that breaks the rule, else ``("", base path)``.

    The rule: a relative path to a ``.yaml``/``.yml`` file, resolved from the
    file that contains it, that stays inside the folder of the recipe the user
    ran (symlinks resolved), unless ``BGEKIT_EXTENDS_ANYWHERE=1``. Errors never
    show the target's content.
    """
    if not isinstance(base, str) or not base.strip():
        return f"expected a path to a base recipe, got {type_name(base)}", None
    if "\x00" in base:
        return "the path holds a NUL character", None
    anywhere = os.environ.get(EXTENDS_ANYWHERE_ENV) == "1"
    if os.path.isabs(base) and not anywhere:
        return (f"'{base}' is an absolute path; extends takes a path relative to this file, inside the "
                f"recipe's folder (set {EXTENDS_ANYWHERE_ENV}=1 to allow any path)"), None
    if Path(base).suffix.lower() not in (".yaml", ".yml"):
        return f"'{base}' is not a recipe file (.yaml or .yml)", None
    base_path = Path(os.path.normpath(path.parent / base))
    if not anywhere:
        try:
            base_path.resolve().relative_to(root)
        except ValueError:
            return (f"'{base}' is outside the recipe's folder {display_path(root)}; copy the base recipe into it "
                    f"(or set {EXTENDS_ANYWHERE_ENV}=1 to allow any path)"), None
    return "", base_path


def read_chain(path: Path, problems: list[str], chain: tuple[Path, ...] = (),
                root: Path | None = None) -> list[FileLayer]:
    """The recipe and the recipes it extends, base-most first."""
    real = path.resolve()
    root = root if root is not None else real.parent
    layer = read_recipe_file(path, problems)
    if layer is None:
        return []
    base = layer.data.pop("extends", None)
    layers: list[FileLayer] = []
    if base is not None:
        where = layer.origin(("extends",)).location
        problem, base_path = _extends_problem(base, path, root)
        if base_path is None:
            problems.append(f"{where}  $.extends  {problem}")
        elif base_path.resolve() in (*chain, real):
            cycle = " -> ".join(display_path(p) for p in (*chain, real, base_path.resolve()))
            problems.append(f"{where}  $.extends  extends cycle: {cycle}")
        elif len(chain) + 1 >= MAX_EXTENDS_DEPTH:
            problems.append(f"{where}  $.extends  more than {MAX_EXTENDS_DEPTH} recipes extend one another")
        elif not base_path.is_file():
            problems.append(f"{where}  $.extends  base recipe '{base}' not found "
                            f"(looked for {display_path(base_path)}; paths are relative to this file)")
        else:
            layers = read_chain(base_path, problems, (*chain, real), root)
            for base_layer in layers:
                base_layer.source = EXTENDED_RECIPE
    layers.append(layer)
    return layers


# ---------------------------------------------------------------------------
# Command-line overrides
# ---------------------------------------------------------------------------

_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.([A-Za-z_][\w-]*|\d+))*$")
_REMOVE = object()


@dataclass(frozen=True)
class Override:
    """``a.b=value`` (set) or ``~a.b`` (remove) from the command line."""

    path: KeyPath
    value: Any = _REMOVE
    text: str = ""

    @property
    def removes(self) -> bool:
        return self.value is _REMOVE


def parse_override(text: str) -> Override:
    """Parse one override; the value is read as YAML (``3e-5`` is a number)."""
    removing = text.startswith("~")
    key, sep, raw = (text[1:], "", "") if removing else text.partition("=")
    if not removing and not sep:
        raise RecipeError([f"command line  {text}  expected KEY=VALUE (train.learning_rate=2e-5) "
                           "or ~KEY to remove a key"], what="override")
    if not _OVERRIDE_KEY.match(key):
        raise RecipeError([f"command line  {text}  '{key}' is not a dotted key such as train.batch_size"],
                          what="override")
    path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    if removing:
        return Override(path, text=text)
    try:
        value = parse_yaml_value(raw)
    except RecipeYamlError as exc:
        raise RecipeError([f"command line  {json_path(path)}  value {raw!r}: {exc}"],
                          what="override") from None
    return Override(path, value, text)


def apply_override(tree: OriginTree, override: Override, origin: Origin,
                    located: list[tuple[str, KeyPath, str]]) -> None:
    path = override.path
    blocked = _override_blocked(tree.values, path)
    if blocked:
        located.append((COMMAND_LINE, path, f"'{override.text}': {blocked}"))
    elif override.removes:
        if tree.has(path):
            tree.remove(path)
            return
        siblings = tree.get(path[:-1]) if tree.has(path[:-1]) else {}
        hint = did_you_mean(str(path[-1]), [str(k) for k in siblings]) if isinstance(siblings, dict) else ""
        located.append((COMMAND_LINE, path, f"'{override.text}': nothing to remove{hint}"))
    else:
        tree.merge(path, override.value, lambda _p: origin)


def _override_blocked(values: dict[str, Any], path: KeyPath) -> str | None:
    """Why ``path`` cannot be set in ``values`` (a bad list index, a scalar in the way), or None."""
    node: Any = values
    for depth, key in enumerate(path):
        here = json_path(path[:depth])
        if isinstance(node, list):
            if not isinstance(key, int) or key >= len(node):
                return f"{here} is a list of {len(node)}; use an index below {len(node)}"
            node = node[key]
        elif isinstance(node, dict):
            if isinstance(key, int):
                return f"{here} is a mapping, not a list"
            if key not in node:
                later_index = any(isinstance(k, int) for k in path[depth + 1:])
                return f"there is no list at {json_path(path[:depth + 1])}" if later_index else None
            node = node[key]
        else:
            return f"{here} is a {type_name(node)}, not a mapping"
    return None
