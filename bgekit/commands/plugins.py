"""``bgekit plugins``: what is installed, what it provides, what failed to load."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bgekit.plugin_templates import KIND_NAMES
from bgekit.plugins import PluginInfo, get_plugin_manager
from bgekit.registry import KINDS

_STATUS_STYLE = {"ok": "green", "error": "red", "disabled": "yellow"}


@click.group()
def plugins() -> None:
    """Inspect installed plugins.

    \b
    Example:
      bgekit plugins list --kind loss
    """


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (keys: name, version, status, error, source, provides, hooks).")
@click.option("--kind", type=click.Choice(sorted(KINDS)), help="Only plugins that provide this kind of component.")
def list_plugins(as_json: bool, kind: str | None) -> None:
    """List plugins with their status and the components they provide.

    A plugin that failed to import shows status 'error' and its message; the
    command still succeeds.

    \b
    Example:
      bgekit plugins list
      bgekit plugins list --json --kind metric
    """
    infos = get_plugin_manager().plugin_infos()
    if kind:
        infos = [i for i in infos if kind in i.provides]
    if as_json:
        rows = [i.to_json() for i in infos]
        if kind:
            for row in rows:
                row["provides"] = {kind: row["provides"][kind]}
        click.echo(json.dumps(rows, indent=2, sort_keys=False))
        return
    Console().print(_table(infos, kind))


def _table(infos: list[PluginInfo], kind: str | None) -> Table:
    table = Table(title="bgekit plugins", title_justify="left")
    for column in ("name", "version", "status", "source", "provides"):
        table.add_column(column, overflow="fold")
    for info in infos:
        kinds = [kind] if kind else sorted(info.provides)
        provides = "\n".join(f"{k}: {', '.join(info.provides[k])}" for k in kinds if k in info.provides)
        status = Text(info.status, style=_STATUS_STYLE.get(info.status, ""))
        if info.error:
            status.append(f"\n{info.error}", style="red")
        table.add_row(Text(info.name), Text(info.version or "-"), status, Text(info.source), Text(provides or "-"))
    return table


@plugins.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(KIND_NAMES),
              help="what the plugin provides: a recipe component (loss ... augmenter), a recipe task "
                   "(task) or a bgekit subcommand (command)")
@click.option("--output", "output_dir", type=click.Path(file_okay=False),
              help="folder to write the package into (default: ./NAME); must not exist or be empty")
def new_plugin(name: str, kind: str, output_dir: str | None) -> None:
    """Write an installable plugin package: pyproject.toml with the bgekit entry point, the
    module (using only bgekit.api) and a passing test (using bgekit.testing).

    \b
    Example:
      bgekit plugins new my-loss --kind loss
      pip install -e './my-loss[test]' && pytest my-loss/tests
      bgekit plugins new data-stats --kind task    # a recipe's task: data-stats
    """
    from bgekit.data.atomic import atomic_write
    from bgekit.errors import BgekitError
    from bgekit.plugin_templates import render

    files = render(name, kind)
    target = Path(output_dir or name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BgekitError(f"{target} already exists and is not empty; choose another --output or remove it")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(text)
    click.echo(f"wrote {kind} plugin '{name}' to {target}/ ({', '.join(sorted(files))})")
    where = str(target) if target.is_absolute() else f"./{target}"
    click.echo(f"next: pip install -e '{where}[test]' && pytest {where}/tests")
