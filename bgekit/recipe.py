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
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import jsonschema
import yaml

import bgekit
from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError
from bgekit.registry import Registry, did_you_mean
from bgekit.schema import component_params_schema, outer_schema_for, outer_validation_schema

RESOLVED_RECIPE_NAME = "resolved_recipe.yaml"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.([A-Za-z_][\w-]*|\d+))*$")

KeyPath = tuple  # a location inside the recipe: ("train", "learning_rate") or ("model", "heads", 0)


class RecipeError(BgekitError):
    """A recipe that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str], what: str = "recipe") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{what}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(header + "\n" + "\n".join(f"  {p}" for p in self.problems))


# ---------------------------------------------------------------------------
# Where a value came from
# ---------------------------------------------------------------------------

COMMAND_LINE = "command line"
RECIPE_FILE = "recipe file"
EXTENDED_RECIPE = "extended recipe"
DEVICE_DEFAULTS = "device backend defaults"
SCHEMA_DEFAULT = "schema default"


@dataclass(frozen=True)
class Origin:
    """The layer a value came from, with file and line when it has them."""

    source: str
    file: str | None = None
    line: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.file:
            return f"{self.source} {self.location}"
        return f"{self.source} ({self.detail})" if self.detail else self.source

    @property
    def location(self) -> str | None:
        """``FILE:LINE`` or ``command line``: where a user goes to change it."""
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        return COMMAND_LINE if self.source == COMMAND_LINE else None


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def json_path(path: KeyPath) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _display(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


# ---------------------------------------------------------------------------
# Reading YAML with line numbers
# ---------------------------------------------------------------------------


#: libyaml's C parser when PyYAML has it (8x faster, so even a crafted recipe parses in well under a second)
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _RecipeLoader(_SafeBase):  # type: ignore[valid-type, misc]
    """SafeLoader that also reads ``1e-5`` as a number (YAML 1.1 wants ``1.0e-5``)."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _OneLineDumper(yaml.SafeDumper):
    """Keeps every value on one line (multi-line strings double-quoted), so a
    ``# from:`` comment can follow it."""


_OneLineDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"' if "\n" in text else None),
)


#: Recipes are a few kilobytes; these bounds make any file, however crafted, load in well under a second.
MAX_RECIPE_BYTES = 64 * 1024
#: values in one recipe file counted after expanding YAML aliases (an alias bomb expands exponentially)
MAX_RECIPE_NODES = 5_000
MAX_RECIPE_DEPTH = 50
#: how many recipe files one ``extends`` chain may have
MAX_EXTENDS_DEPTH = 16


class RecipeYamlError(Exception):
    """A YAML text that is not a usable recipe; ``line`` (1-based) when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def node_graph_problem(node: yaml.Node) -> tuple[str, int] | None:
    """``(why, line)`` when a composed YAML document is cyclic, too deep or too big once
    aliases are expanded; None when it is fine.

    Counts each node's expanded size once (memoised), so checking a bomb of
    nested aliases takes time linear in the file, not in its expansion.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
    while stack:
        current, depth, done = stack.pop()
        key = id(current)
        line = current.start_mark.line + 1
        if done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(current))
            if size > MAX_RECIPE_NODES:
                return (f"too many values (over {MAX_RECIPE_NODES}, counting what each YAML alias expands "
                        "to); a recipe needs far fewer (is this the right file? are aliases nested in aliases?)",
                        line)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            return "a YAML alias refers to a value that contains it (a recursive structure)", line
        if depth > MAX_RECIPE_DEPTH:
            return f"nested more than {MAX_RECIPE_DEPTH} levels deep", line
        on_path.add(key)
        stack.append((current, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(current))
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


_QUOTED = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'""")
_BRACKET = re.compile(r"[\[\]{}]")


def _flow_too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting passes :data:`MAX_RECIPE_DEPTH`, else None.

    PyYAML's scanner slows down quadratically with flow nesting, so a file of
    100,000 ``[`` must be refused before it is scanned. Quoted strings are
    skipped; a stray bracket in a plain string only counts towards the bound.
    """
    depth = 0
    for match in _BRACKET.finditer(_QUOTED.sub("", text)):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_RECIPE_DEPTH:
            stripped = _QUOTED.sub("", text)
            return stripped.count("\n", 0, match.start()) + 1
    return None


def load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """``(value, node)`` of one YAML document read as a recipe reads it, within the bounds above.

    Raises :class:`RecipeYamlError` (with a line when known) for anything
    that is not a usable document: bad syntax, control characters, alias
    cycles or bombs, too deep, too big.
    """
    if len(text) > MAX_RECIPE_BYTES:
        raise RecipeYamlError(f"the file is over {MAX_RECIPE_BYTES // 1024} KiB; a recipe is a few kilobytes "
                              "(is this the right file?)")
    deep = _flow_too_deep(text)
    if deep:
        raise RecipeYamlError(f"nested more than {MAX_RECIPE_DEPTH} levels deep", deep)
    loader = None
    try:
        loader = _RecipeLoader(text)  # checks every character first
        node = loader.get_single_node()
        if node is None:
            return None, None
        problem = node_graph_problem(node)
        if problem:
            raise RecipeYamlError(*problem)
        return loader.construct_document(node), node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RecipeYamlError(f"not valid YAML: {exc.problem or exc.context}",
                              mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        # libyaml counts bytes of the UTF-8 text, the Python reader characters
        encoded = text.encode("utf-8", "surrogatepass") if _SafeBase is not yaml.SafeLoader else text
        line = encoded.count(b"\n" if isinstance(encoded, bytes) else "\n", 0, exc.position) + 1 \
            if isinstance(exc.position, int) else None
        raise RecipeYamlError(f"not valid YAML text: character #x{exc.character:04x} is not allowed; a recipe "
                              "is plain UTF-8 text (is this the right file?)" if isinstance(exc.character, int)
                              else f"not valid YAML text: {exc.reason}", line) from None
    except yaml.YAMLError as exc:
        raise RecipeYamlError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise RecipeYamlError(f"nested more than {MAX_RECIPE_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_yaml_value(text: str) -> Any:
    """A value as a recipe file would read it (``3e-5`` -> float, ``[a, b]`` -> list)."""
    return load_yaml(text)[0]


@dataclass
class _FileLayer:
    """One recipe file: its values and the line of every key and list item."""

    file: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int]
    source: str = RECIPE_FILE

    def origin(self, path: KeyPath) -> Origin:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return Origin(self.source, _display(self.file), self.lines[path[:end]])
        return Origin(self.source, _display(self.file), 1)


def _read_file(path: Path, problems: list[str]) -> _FileLayer | None:
    shown = _display(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)
        if len(raw) > MAX_RECIPE_BYTES:
            problems.append(f"{shown}  $  the file is over {MAX_RECIPE_BYTES // 1024} KiB; a recipe is a few "
                            "kilobytes (is this the right file?)")
            return None
        text = raw.decode("utf-8")
    except FileNotFoundError:
        problems.append(f"{shown}  $  no such recipe file")
        return None
    except IsADirectoryError:
        problems.append(f"{shown}  $  is a directory, not a recipe file")
        return None
    except OSError as exc:
        problems.append(f"{shown}  $  cannot read the file: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problems.append(f"{shown}:{line}  $  not UTF-8 text (byte {raw[exc.start]:#04x}); save the recipe as UTF-8")
        return None
    try:
        data, node = load_yaml(text)
    except RecipeYamlError as exc:
        problems.append(f"{shown}{f':{exc.line}' if exc.line else ''}  $  {exc}")
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{shown}:1  $  a recipe is a mapping of sections (task:, model:, ...), "
                        f"not a {type(data).__name__}")
        return None
    lines: dict[KeyPath, int] = {(): 1}
    if node is not None:
        _node_lines(node, (), lines, shown, problems)
    return _FileLayer(path, data, lines)


def _node_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], shown: str, problems: list[str]) -> None:
    """Record the line of each key (mappings) and item (sequences); flag duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(f"{shown}:{key_node.start_mark.line + 1}  {json_path(path + (key,))}  "
                                f"duplicate key '{key}' (a later value would silently win)")
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _node_lines(value_node, path + (key,), lines, shown, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _node_lines(item, path + (index,), lines, shown, problems)


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
        return f"expected a path to a base recipe, got {_type_name(base)}", None
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
            return (f"'{base}' is outside the recipe's folder {_display(root)}; copy the base recipe into it "
                    f"(or set {EXTENDS_ANYWHERE_ENV}=1 to allow any path)"), None
    return "", base_path


def _read_chain(path: Path, problems: list[str], chain: tuple[Path, ...] = (),
                root: Path | None = None) -> list[_FileLayer]:
    """The recipe and the recipes it extends, base-most first."""
    real = path.resolve()
    root = root if root is not None else real.parent
    layer = _read_file(path, problems)
    if layer is None:
        return []
    base = layer.data.pop("extends", None)
    layers: list[_FileLayer] = []
    if base is not None:
        where = layer.origin(("extends",)).location
        problem, base_path = _extends_problem(base, path, root)
        if base_path is None:
            problems.append(f"{where}  $.extends  {problem}")
        elif base_path.resolve() in (*chain, real):
            cycle = " -> ".join(_display(p) for p in (*chain, real, base_path.resolve()))
            problems.append(f"{where}  $.extends  extends cycle: {cycle}")
        elif len(chain) + 1 >= MAX_EXTENDS_DEPTH:
            problems.append(f"{where}  $.extends  more than {MAX_EXTENDS_DEPTH} recipes extend one another")
        elif not base_path.is_file():
            problems.append(f"{where}  $.extends  base recipe '{base}' not found "
                            f"(looked for {_display(base_path)}; paths are relative to this file)")
        else:
            layers = _read_chain(base_path, problems, (*chain, real), root)
            for base_layer in layers:
                base_layer.source = EXTENDED_RECIPE
    layers.append(layer)
    return layers


# ---------------------------------------------------------------------------
# Command-line overrides
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# The merged tree with an origin for every node
# ---------------------------------------------------------------------------


class _Tree:
    """Recipe values plus the origin of every node in them."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origins: dict[KeyPath, Origin] = {(): Origin(SCHEMA_DEFAULT)}
        #: paths holding a mapping or list: only replacing one of these has origins below it to forget
        self.containers: set[KeyPath] = {()}

    def get(self, path: KeyPath) -> Any:
        node: Any = self.values
        for key in path:
            node = node[key]
        return node

    def has(self, path: KeyPath) -> bool:
        try:
            self.get(path)
            return True
        except (KeyError, IndexError, TypeError):
            return False

    def merge(self, path: KeyPath, value: Any, origin: Callable[[KeyPath], Origin]) -> None:
        """Merge mappings key by key; replace anything else."""
        if isinstance(value, dict) and self.has(path) and isinstance(self.get(path), dict):
            self.origins[path] = origin(path)
            for key, sub in value.items():
                self.merge(path + (key,), sub, origin)
        else:
            self.put(path, copy.deepcopy(value), origin)

    def put(self, path: KeyPath, value: Any, origin: Callable[[KeyPath], Origin]) -> None:
        """Set ``path`` (creating mappings on the way) and record origins under it."""
        parent = self.values
        for depth, key in enumerate(path[:-1]):
            if isinstance(parent, dict):
                if not isinstance(parent.get(key), (dict, list)):
                    parent[key] = {}
                    self.origins[path[: depth + 1]] = origin(path[: depth + 1])
                    self.containers.add(path[: depth + 1])
                parent = parent[key]
            else:
                parent = parent[key]
        if path:
            parent[path[-1]] = value
        self._forget(path)
        for sub_path, sub in _node_items(value, path):
            self.origins[sub_path] = origin(sub_path)
            if isinstance(sub, (dict, list)):
                self.containers.add(sub_path)

    def remove(self, path: KeyPath) -> None:
        parent = self.get(path[:-1])
        del parent[path[-1]]
        self._forget(path)

    def _forget(self, path: KeyPath) -> None:
        if path not in self.containers:  # a scalar (or nothing) was here: nothing below it
            self.origins.pop(path, None)
            return
        for known in [p for p in self.origins if p[: len(path)] == path]:
            del self.origins[known]
        self.containers = {p for p in self.containers if p[: len(path)] != path}

    def origin(self, path: KeyPath) -> Origin:
        for end in range(len(path), -1, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return self.origins[()]

    def location(self, path: KeyPath, fallback: str) -> str:
        """The nearest place a user wrote something at or above ``path``."""
        for end in range(len(path), -1, -1):
            found = self.origins.get(path[:end])
            if found is not None and found.location:
                return found.location
        return fallback


def _node_paths(value: Any, path: KeyPath) -> Iterator[KeyPath]:
    for sub_path, _ in _node_items(value, path):
        yield sub_path


def _node_items(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """``(path, value)`` of ``value`` and everything inside it."""
    yield path, value
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _node_items(sub, path + (key,))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _node_items(sub, path + (index,))


def leaf_paths(value: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    """Scalars, lists of scalars and empty mappings: what provenance is kept for."""
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            yield from leaf_paths(sub, path + (key,))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for index, sub in enumerate(value):
            yield from leaf_paths(sub, path + (index,))
    else:
        yield path


# ---------------------------------------------------------------------------
# Walking the schema beside the values
# ---------------------------------------------------------------------------


def _shape_fits(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` has the JSON type a ``oneOf`` alternative expects."""
    if "$component" in schema:
        return isinstance(value, dict)
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    python = {"object": dict, "array": list, "string": str, "null": type(None),
              "boolean": bool, "number": (int, float), "integer": int}
    return any(k in python and isinstance(value, python[k]) for k in kinds)


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
        if _shape_fits(alternative, value):
            yield from _markers(alternative, value, path)
            break


def _fill_defaults(schema: dict[str, Any], value: Any, path: KeyPath, tree: _Tree, origin: Origin) -> None:
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
        if _shape_fits(alternative, value):
            _fill_defaults(alternative, value, path, tree, origin)
            break


def _ordered(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with keys in the schema's order (task, model, data, ...), for reading."""
    for alternative in schema.get("oneOf", []):
        if _shape_fits(alternative, value):
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
# Turning jsonschema errors into one line each
# ---------------------------------------------------------------------------

_JSON_TYPES = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


#: unknown keys per mapping that get a "did you mean"; past that they are only named
HINTED_UNKNOWN_KEYS = 20


def _explain(error: jsonschema.ValidationError, prefix: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    path = prefix + tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in allowed]
        for number, key in enumerate(unknown):
            if number >= HINTED_UNKNOWN_KEYS:  # a file of thousands of keys: name them, skip the hints
                yield path + (key,), f"unknown key '{key}'"
                continue
            hint = did_you_mean(str(key), allowed) or f"; allowed here: {', '.join(allowed)}"
            yield path + (key,), f"unknown key '{key}'{hint}"
    elif kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        for key in missing:
            yield path, f"missing required key '{key}'"
    elif kind == "enum":
        options = [str(o) for o in error.validator_value]
        hint = did_you_mean(str(error.instance), options)
        yield path, f"{error.instance!r} is not one of: {', '.join(options)}{hint}"
    elif kind == "const":
        yield path, f"expected {error.validator_value!r}, got {error.instance!r}"
    elif kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        yield path, f"expected {expected}, got {_type_name(error.instance)} ({error.instance!r})"
    elif kind in ("oneOf", "anyOf"):
        alternatives = error.validator_value
        fitting = [i for i, alt in enumerate(alternatives) if _shape_fits(alt, error.instance)]
        inner = [e for e in error.context or [] if fitting and e.schema_path and e.schema_path[0] == fitting[0]]
        if inner:
            for sub in inner:
                yield from _explain(sub, prefix)
        else:
            wanted = error.schema.get("description") or "one of the allowed shapes"
            yield path, f"expected {wanted}, got {_type_name(error.instance)} ({error.instance!r})"
    else:
        yield path, error.message


def _schema_problems(schema: dict[str, Any], instance: Any, prefix: KeyPath = ()) -> list[tuple[KeyPath, str]]:
    validator = jsonschema.Draft7Validator(schema)
    found: list[tuple[KeyPath, str]] = []
    seen: set[tuple[KeyPath, str]] = set()
    for error in validator.iter_errors(instance):
        for item in _explain(error, prefix):
            if item not in seen:
                seen.add(item)
                found.append(item)
    return found


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
        text = yaml.dump(self.masked_values(), Dumper=_OneLineDumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=True, width=10**9)
        lines = text.splitlines()
        key_lines: dict[KeyPath, int] = {}
        _node_lines(yaml.compose(text, Loader=_RecipeLoader), (), key_lines, "", [])
        for leaf in leaf_paths(self.values):
            line = key_lines.get(leaf)
            if line is not None and dotted(leaf) in self.provenance:
                lines[line - 1] += f"  # from: {self.provenance[dotted(leaf)]}"
        body = "\n".join(lines) + "\n"
        return (self._header() if header else "") + body

    def _header(self) -> str:
        out = [
            f"# Resolved from {_display(self.path)} by bgekit {bgekit.__version__}.",
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
    shown = _display(recipe_path)

    # Read everything first: files that do not parse leave nothing to validate.
    problems: list[str] = []
    layers = _read_chain(recipe_path, problems)
    parsed: list[Override] = []
    for item in overrides:
        try:
            parsed.append(item if isinstance(item, Override) else parse_override(item))
        except RecipeError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RecipeError(problems, what=shown)

    tree = _Tree()
    if backend is not None:
        device = Origin(DEVICE_DEFAULTS, detail=getattr(backend, "name", ""))
        tree.merge((), backend.recipe_defaults(), lambda _p: device)
    for layer in layers:
        tree.merge((), layer.data, layer.origin)
    located: list[tuple[str, KeyPath, str]] = []  # (location, path, message)
    command_line = Origin(COMMAND_LINE)
    for override in parsed:
        _apply_override(tree, override, command_line, located)

    secrets = _resolve_env(tree, located, shown)
    _check_finite(tree, located, shown)
    schema = outer_schema_for(registry)
    _fill_defaults(schema, tree.values, (), tree, Origin(SCHEMA_DEFAULT))
    for where, message in _schema_problems(outer_validation_schema(registry), tree.values):
        located.append((tree.location(where, shown), where, message))
    _check_components(schema, tree, registry, located, shown)
    _check_output_dir(tree, located, shown)

    if located:
        raise RecipeError(_sorted_problems(_mask_secrets(located, tree, secrets), shown), what=shown)
    values = _ordered(schema, tree.values)
    provenance = {dotted(p): str(tree.origin(p)) for p in leaf_paths(values) if p}
    plugins = {i.name: {"version": i.version, "source": i.source, "status": i.status, "error": i.error or ""}
               for i in manager.plugin_infos()}
    return Recipe(recipe_path, values, provenance, secrets, plugins)


def _apply_override(tree: _Tree, override: Override, origin: Origin,
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
            return f"{here} is a {_type_name(node)}, not a mapping"
    return None


def _resolve_env(tree: _Tree, located: list[tuple[str, KeyPath, str]], shown: str) -> dict[str, str]:
    """Replace ``${env:NAME}`` in string values; return each such dotted key with the text it held."""
    secrets: dict[str, str] = {}
    for path in list(_node_paths(tree.values, ())):
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


def _check_finite(tree: _Tree, located: list[tuple[str, KeyPath, str]], shown: str) -> None:
    """Every number a user wrote is finite: ``.inf`` and ``.nan`` train NaN or fail hours later."""
    for path in _node_paths(tree.values, ()):
        value = tree.get(path)
        if isinstance(value, float) and not math.isfinite(value):
            written = ".nan" if value != value else (".inf" if value > 0 else "-.inf")
            located.append((tree.location(path, shown), path, f"must be a finite number, not {written}"))


def _check_output_dir(tree: _Tree, located: list[tuple[str, KeyPath, str]], shown: str) -> None:
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


def _mask_secrets(located: list[tuple[str, KeyPath, str]], tree: _Tree,
                  secrets: dict[str, str]) -> list[tuple[str, KeyPath, str]]:
    """The problems with every value read from ``${env:NAME}`` shown as that reference instead."""
    if not secrets:
        return located
    paths = {tuple(int(p) if p.isdigit() else p for p in key.split(".")): ref for key, ref in secrets.items()}
    out = []
    for where, path, message in located:
        for secret_path, reference in paths.items():
            n = min(len(path), len(secret_path))
            if path[:n] != secret_path[:n] or not tree.has(secret_path):
                continue
            value = tree.get(secret_path)
            if isinstance(value, str) and value:
                message = message.replace(repr(value), reference).replace(value, reference)
        out.append((where, path, message))
    return out


def _check_components(schema: dict[str, Any], tree: _Tree, registry: Registry,
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
        mismatch = _loss_task_mismatch(spec, tree.values.get("task"), registry)
        if mismatch:
            located.append((tree.location(name_path, shown), name_path, mismatch))
            continue
        params = component_params_schema(spec)
        default = Origin(SCHEMA_DEFAULT, detail=f"{kind} '{spec.name}'")
        _fill_defaults(params, value, path, tree, default)
        for where, message in _schema_problems(params, value, path):
            located.append((tree.location(where, shown), where, message))


#: Tasks that train one kind of model, so their losses must take that model's scores.
SINGLE_MODEL_TASKS = ("embedder", "reranker")


def _loss_task_mismatch(spec: Any, task: Any, registry: Registry) -> str | None:
    """Why a loss cannot train this recipe's task (an embedder loss for a reranker, ...), or None."""
    loss_task = getattr(spec, "task", None)
    if spec.kind != "loss" or task not in SINGLE_MODEL_TASKS or loss_task in (None, task):
        return None
    fitting = [s.name for s in registry.all("loss") if getattr(s, "task", None) == task]
    return (f"loss '{spec.name}' trains a{'n' if loss_task[0] in 'aeiou' else ''} {loss_task}, but this "
            f"recipe's task is {task}; {task} losses: {', '.join(fitting) or 'none installed'}")


def _sorted_problems(located: list[tuple[str, KeyPath, str]], shown: str) -> list[str]:
    """One line per problem, in file order, command-line problems last."""

    def key(item: tuple[str, KeyPath, str]) -> tuple[int, str, int, str]:
        location = item[0]
        file, _, line = location.rpartition(":")
        if not line.isdigit():
            file, line = location, "0"
        return (location == COMMAND_LINE, file, int(line), json_path(item[1]))

    out: list[str] = []
    seen: set[str] = set()
    for location, path, message in sorted(located, key=key):
        text = f"{location}  {json_path(path)}  {message}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
