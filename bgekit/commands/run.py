"""``bgekit run``: resolve a recipe and run its task (or only show it, with ``--dry-run``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.plugins import get_registry
from bgekit.preflight import check_recipe
from bgekit.recipe import Recipe, load_recipe
from bgekit.shipped_recipes import find_shipped


def recipe_path(text: str) -> Path:
    """A recipe file, or the name of a shipped recipe (``quickstart``)."""
    path = Path(text)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in text:
        return path
    return find_shipped(text).path


def resolve(recipe: str, overrides: tuple[str, ...], dry_run: bool = False) -> tuple[Recipe, object | None]:
    """Load the recipe, pick its device backend, and reload with the backend's defaults."""
    path = recipe_path(recipe)
    first = load_recipe(path, overrides)
    try:
        backend = select_backend(get_registry(), first.values["device"]["name"])
    except BgekitError as exc:
        if not dry_run:
            raise
        click.echo(f"warning: {exc}; showing the recipe without device defaults", err=True)
        return first, None
    return load_recipe(path, overrides, backend=backend), backend


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system error that reached the top of a run."""
    import errno

    from bgekit.train.checkpoint import describe_write_error

    where = exc.filename or "the output folder"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"{where}: no such file or folder ({exc.strerror}); check the path in the recipe"
    return describe_write_error(exc, str(where))


@click.command()
@click.argument("recipe")
@click.argument("overrides", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print the resolved recipe, each value with its source, and stop.")
def run(recipe: str, overrides: tuple[str, ...], dry_run: bool) -> None:
    """Run RECIPE (a file, or a shipped recipe's name) with OVERRIDES.

    OVERRIDES are dotted keys: 'train.learning_rate=2e-5' sets a value (read
    as YAML), '~miner' removes a key (quote it: the shell expands ~). The resolved recipe is saved as
    OUTPUT_DIR/resolved_recipe.yaml with plugin versions.

    \b
    Example:
      bgekit run recipes/m3.yaml train.learning_rate=3e-5 --dry-run
      bgekit run my-recipe.yaml output_dir=runs/try2 '~miner'
    """
    resolved, backend = resolve(recipe, overrides, dry_run)
    if dry_run:
        click.echo(resolved.to_yaml(), nl=False)
        click.echo("dry run: nothing was loaded or written", err=True)
        return
    from bgekit.tasks import run_task
    from bgekit.train.stop import Stopped

    check_recipe(resolved)  # input files and lengths, in one line each, before anything heavy loads
    try:
        result = run_task(resolved, backend)
    except Stopped as exc:  # SIGTERM/SIGINT: the checkpoint is saved; exit as the signal would (143/130)
        click.echo(f"stopped: {exc}", err=True)
        click.get_current_context().exit(exc.exit_code)
    except OSError as exc:
        raise BgekitError(describe_os_error(exc)) from exc
    if os.environ.get("RANK", "0") == "0":  # under torchrun the main process speaks for the run
        click.echo(json.dumps(result, indent=2, default=str))
