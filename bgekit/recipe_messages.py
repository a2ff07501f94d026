"""Recipe problems as one line each: ``file:line  $.path  message``.

:class:`RecipeError` carries every problem found; :func:`schema_problems`
turns jsonschema's errors into readable lines (unknown keys with a "did you
mean", missing keys, wrong types), :func:`sorted_problems` orders them by
file and line, and :func:`mask_secrets` keeps values read from
``${env:NAME}`` out of them.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import jsonschema

from bgekit.errors import BgekitError
from bgekit.recipe_provenance import COMMAND_LINE, KeyPath, OriginTree, json_path
from bgekit.registry import did_you_mean

class RecipeError(BgekitError):
    """A recipe that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str], what: str = "recipe") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{what}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(header + "\n" + "\n".join(f"  {p}" for p in self.problems))


def shape_fits(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` has the JSON type a ``oneOf`` alternative expects."""
    if "$component" in schema:
        return isinstance(value, dict)
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    python = {"object": dict, "array": list, "string": str, "null": type(None),
              "boolean": bool, "number": (int, float), "integer": int}
    return any(k in python and isinstance(value, python[k]) for k in kinds)


_JSON_TYPES = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}


def type_name(value: Any) -> str:
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
        yield path, f"expected {expected}, got {type_name(error.instance)} ({error.instance!r})"
    elif kind in ("oneOf", "anyOf"):
        alternatives = error.validator_value
        fitting = [i for i, alt in enumerate(alternatives) if shape_fits(alt, error.instance)]
        inner = [e for e in error.context or [] if fitting and e.schema_path and e.schema_path[0] == fitting[0]]
        if inner:
            for sub in inner:
                yield from _explain(sub, prefix)
        else:
            wanted = error.schema.get("description") or "one of the allowed shapes"
            yield path, f"expected {wanted}, got {type_name(error.instance)} ({error.instance!r})"
    else:
        yield path, error.message


def schema_problems(schema: dict[str, Any], instance: Any, prefix: KeyPath = ()) -> list[tuple[KeyPath, str]]:
    validator = jsonschema.Draft7Validator(schema)
    found: list[tuple[KeyPath, str]] = []
    seen: set[tuple[KeyPath, str]] = set()
    for error in validator.iter_errors(instance):
        for item in _explain(error, prefix):
            if item not in seen:
                seen.add(item)
                found.append(item)
    return found


def mask_secrets(located: list[tuple[str, KeyPath, str]], tree: OriginTree,
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


def sorted_problems(located: list[tuple[str, KeyPath, str]], shown: str) -> list[str]:
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
