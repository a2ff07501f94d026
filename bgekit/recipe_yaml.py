"""Reading recipe YAML: bounded (size, depth, alias bombs), with the line of every key.

Any file, however crafted, loads in well under a second or is refused with a
line number; :func:`read_recipe_file` returns its values with a line map, so
later problems can be reported as ``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bgekit.recipe_provenance import RECIPE_FILE, KeyPath, Origin, display_path, json_path

#: libyaml's C parser when PyYAML has it (8x faster, so even a crafted recipe parses in well under a second)
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RecipeLoader(_SafeBase):  # type: ignore[valid-type, misc]
    """SafeLoader that also reads ``1e-5`` as a number (YAML 1.1 wants ``1.0e-5``)."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class OneLineDumper(yaml.SafeDumper):
    """Keeps every value on one line (multi-line strings double-quoted), so a
    ``# from:`` comment can follow it."""


OneLineDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"' if "\n" in text else None),
)


#: Recipes are a few kilobytes; these bounds make any file, however crafted, load in well under a second.
MAX_RECIPE_BYTES = 64 * 1024
#: values in one recipe file counted after expanding YAML aliases (an alias bomb expands exponentially)
MAX_RECIPE_NODES = 5_000
MAX_RECIPE_DEPTH = 50


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
        loader = RecipeLoader(text)  # checks every character first
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
class FileLayer:
    """One recipe file: its values and the line of every key and list item."""

    file: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int]
    source: str = RECIPE_FILE

    def origin(self, path: KeyPath) -> Origin:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return Origin(self.source, display_path(self.file), self.lines[path[:end]])
        return Origin(self.source, display_path(self.file), 1)


def read_recipe_file(path: Path, problems: list[str]) -> FileLayer | None:
    shown = display_path(path)
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
        node_lines(node, (), lines, shown, problems)
    return FileLayer(path, data, lines)


def node_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], shown: str, problems: list[str]) -> None:
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
            node_lines(value_node, path + (key,), lines, shown, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            node_lines(item, path + (index,), lines, shown, problems)
