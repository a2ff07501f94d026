"""``bgekit plugins``: what is installed, what it provides, what failed to load."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
