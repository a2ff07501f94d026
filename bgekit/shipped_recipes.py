"""The recipes that ship with bgekit, found whether it is installed or checked out.

The repository keeps them in ``recipes/``; ``bgekit/_recipes`` is a symlink
to that folder, so a wheel carries them as package data and an editable
install sees the working tree. Where symlinks are not checked out (a plain
copy on Windows) the repository folder is used directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bgekit.errors import BgekitError
from bgekit.registry import did_you_mean

_PACKAGE_DIR = Path(__file__).resolve().parent


def recipes_dir() -> Path:
    """The folder of shipped recipes."""
    packaged = Path(__file__).parent / "_recipes"
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / "recipes"


@dataclass(frozen=True)
class ShippedRecipe:
    """A shipped recipe: ``name`` is its path under ``recipes/`` without ``.yaml``."""

    name: str
    path: Path
    description: str


def describe(path: Path) -> str:
    """The first sentence of the header comment's first paragraph of prose.

    The schema modeline and lines showing a command (``bgekit run ...``) are skipped.
    """
    paragraph: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        text = stripped.lstrip("#").strip()
        if text.startswith("yaml-language-server") or "bgekit " in text:
            continue
        if not text:
            if paragraph:
                break
            continue
        paragraph.append(text)
    prose = " ".join(paragraph)
    end = prose.find(". ")
    return prose[: end + 1] if end >= 0 else prose


def shipped_recipes() -> list[ShippedRecipe]:
    """Every ``*.yaml`` under the recipes folder, sorted by name."""
    root = recipes_dir().resolve()  # show recipes/x.yaml, not the symlink
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.rglob("*.yaml")):
        name = path.relative_to(root).with_suffix("").as_posix()
        out.append(ShippedRecipe(name, path, describe(path)))
    return out


def find_shipped(name: str) -> ShippedRecipe:
    """A shipped recipe by name (``m3`` or ``m3.yaml``), or an error listing them."""
    wanted = name[:-5] if name.endswith(".yaml") else name
    recipes = shipped_recipes()
    for recipe in recipes:
        if recipe.name == wanted:
            return recipe
    names = [r.name for r in recipes]
    raise BgekitError(f"no shipped recipe '{name}'{did_you_mean(wanted, names)}; "
                      f"shipped: {', '.join(names) or 'none'} (see `bgekit recipes list`)")
