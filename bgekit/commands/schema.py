"""``bgekit schema``: the recipe JSON Schema for editors and CI."""

from __future__ import annotations

import click

from bgekit.plugins import get_plugin_manager
from bgekit.schema import builtin_filter, dumps, recipe_schema


@click.command()
@click.option("--builtin-only", is_flag=True,
              help="Only built-in plugins' components (what schemas/recipe.schema.json holds).")
def schema(builtin_only: bool) -> None:
    """Print the draft-07 JSON Schema of recipes, with every plugin's parameters.

    Point your editor at it with a first recipe line such as
    '# yaml-language-server: $schema=schemas/recipe.schema.json'.

    \b
    Example:
      bgekit schema --builtin-only > schemas/recipe.schema.json
    """
    manager = get_plugin_manager()
    registry = manager.registry
    include = None
    if builtin_only:
        include = builtin_filter(registry, [i.name for i in manager.plugin_infos() if i.source == "built-in"])
    click.echo(dumps(recipe_schema(registry, include)), nl=False)
