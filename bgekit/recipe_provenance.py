"""Where each value of a recipe came from: layers, origins (file and line), and the tree that keeps them.

A resolved recipe is merged from layers (schema defaults, device backend
defaults, extended recipes, the recipe file, the command line); every node
of the merged values remembers its :class:`Origin`, so ``--dry-run`` can say
why a run used a value and every error can point at the line to fix.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

KeyPath = tuple  # a location inside the recipe: ("train", "learning_rate") or ("model", "heads", 0)


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


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


class OriginTree:
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
        for sub_path, sub in node_items(value, path):
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


def node_paths(value: Any, path: KeyPath) -> Iterator[KeyPath]:
    for sub_path, _ in node_items(value, path):
        yield sub_path


def node_items(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """``(path, value)`` of ``value`` and everything inside it."""
    yield path, value
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from node_items(sub, path + (key,))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from node_items(sub, path + (index,))


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
