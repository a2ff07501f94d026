"""``bgekit recipes``: list, copy and validate recipes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bgekit.errors import BgekitError
from bgekit.recipe import RecipeError, load_recipe
from bgekit.shipped_recipes import find_shipped, shipped_recipes

_MODELINE = re.compile(r"^(#\s*yaml-language-server:\s*\$schema=)(\S+)(.*)$")


@click.group()
def recipes() -> None:
    """Shipped recipes, and checking your own.

    \b
    Example:
      bgekit recipes cp quickstart my-recipe.yaml
      bgekit recipes validate my-recipe.yaml
    """


@recipes.command("list")
def list_recipes() -> None:
    """List the recipes shipped with bgekit and what each one is for.

    \b
    Example:
      bgekit recipes list
    """
    shipped = shipped_recipes()
    if not shipped:
        click.echo("no shipped recipes found")
        return
    table = Table(title="shipped recipes (copy one with `bgekit recipes cp NAME DEST`)", title_justify="left")
    table.add_column("name")
    table.add_column("description", overflow="fold")
    for recipe in shipped:
        table.add_row(Text(recipe.name), Text(recipe.description or "-"))
    Console().print(table)


@recipes.command("cp")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
def copy_recipe(name: str, dest: Path, force: bool) -> None:
    """Copy shipped recipe NAME to DEST (a file, or a folder to copy into).

    \b
    Example:
      bgekit recipes cp m3 recipes/my-m3.yaml
    """
    recipe = find_shipped(name)
    target = dest / recipe.path.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise BgekitError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(recipe.path, target)
    _repoint_modeline(recipe.path, target)
    click.echo(f"copied {recipe.name} to {target}")


def _repoint_modeline(source: Path, target: Path) -> None:
    """Keep the editor's ``$schema=`` pointing at the schema after the file moved."""
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    match = _MODELINE.match(lines[0].rstrip("\n")) if lines else None
    if not match or "://" in match.group(2):
        return
    schema = (source.parent / match.group(2)).resolve()
    if schema.is_file():
        lines[0] = f"{match.group(1)}{schema.as_uri()}{match.group(3)}\n"
        target.write_text("".join(lines), encoding="utf-8")


@recipes.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check recipe FILES against the schema and the installed plugins.

    Every problem in every file is printed as FILE:LINE  $.path  message;
    the exit status is 1 when any file has a problem.

    \b
    Example:
      bgekit recipes validate recipes/*.yaml
    """
    failed = 0
    for path in files:
        try:
            load_recipe(path)
        except RecipeError as exc:
            failed += 1
            click.echo(str(exc), err=True)
        else:
            click.echo(f"{path}: ok")
    if failed:
        raise BgekitError(f"{failed} of {len(files)} recipe{'s' if len(files) != 1 else ''} invalid")
