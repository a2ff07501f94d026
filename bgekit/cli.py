"""The ``bgekit`` command line.

Each command family lives in its own module under :mod:`bgekit.commands`;
they reach the command line as plugins do, through the ``bgekit_commands``
hook (the built-in ones from ``plugins/bgekit_commands``), so a third-party
package adds a subcommand the same way. A command is imported only when the
command line lists or runs it; one whose plugin fails to import shows as
failed in ``bgekit --help`` and the rest keep working.

Errors a user can fix (:class:`bgekit.BgekitError`) print as one message on
stderr with exit status 1; ``--debug`` shows the traceback instead. Usage
errors exit with 2 (click's convention).
"""

from __future__ import annotations

import sys
from typing import Any

import click
import yaml

import bgekit
from bgekit.errors import BgekitError


def one_line(exc: BaseException) -> str:
    """An expected failure that is not a :class:`BgekitError` (a file that cannot be read or
    written, text that is not valid Unicode, YAML that does not parse) as one line."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (check the path and its permissions, and free disk space)"
    if isinstance(exc, UnicodeError):
        return f"text that is not valid Unicode ({exc}); check the file's encoding (--encoding)"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to read"
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


#: Failures that come from what a user gave (files, text), not from a bug: one line, exit 1.
EXPECTED_ERRORS = (OSError, UnicodeError, yaml.YAMLError, RecursionError)


class _RegistryError(click.ClickException):
    """The plugins cannot be put together (two claim one name): one line, exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _command_specs() -> dict[str, Any]:
    """Every registered command's spec by name; a registry that cannot be built is one line, exit 1."""
    from bgekit.plugins import get_registry

    try:
        return {spec.name: spec for spec in get_registry().all("command")}
    except BgekitError as exc:
        raise _RegistryError(str(exc)) from exc


def _no_commands() -> str:
    """Why no command is registered: the built-in commands plugin is disabled, broken or not installed."""
    from bgekit.plugins import get_plugin_manager

    info = get_plugin_manager().infos.get("commands")
    if info is not None and info.status == "disabled":
        return "no bgekit commands: the built-in 'commands' plugin is disabled (BGEKIT_DISABLE_PLUGINS)"
    if info is not None and info.error:
        return f"no bgekit commands: the built-in 'commands' plugin failed to load: {info.error}"
    return ("no bgekit commands are registered (the built-in 'commands' plugin is not among the installed entry "
            "points); reinstall bgekit (pip install -e .) so that its entry points are current")


def _provider(name: str) -> str:
    from bgekit.plugins import get_registry

    return get_registry().provider("command", name)


def _failed_command(name: str, provider: str, exc: BaseException) -> click.Command:
    """Stands in for a command whose plugin failed to load: listed with the error, fails when run."""
    why = f"{type(exc).__name__}: {exc}"

    def fail() -> None:
        raise BgekitError(f"command '{name}' of plugin '{provider}' failed to load: {why}")

    return click.Command(name, callback=fail, short_help=f"(failed to load: {why})", help=f"Failed to load: {why}",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


class _BgekitGroup(click.Group):
    """Commands come from the registry; BgekitError and other expected failures become one line
    and exit 1 (unless ``--debug``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_command_specs()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        specs = _command_specs()
        if not specs:
            raise _RegistryError(_no_commands())
        spec = specs.get(name)
        if spec is None:
            return None
        try:
            command = spec.load()
        except Exception as exc:  # a broken plugin must not break the others
            return _failed_command(name, _provider(name), exc)
        if not isinstance(command, click.Command):
            return _failed_command(name, _provider(name), TypeError(f"{command!r} is not a click command"))
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BgekitError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except EXPECTED_ERRORS as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {one_line(exc)} (--debug shows the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=_BgekitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(bgekit.__version__, prog_name="bgekit")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
def main(debug: bool) -> None:
    """Fine-tune BGE-M3 embedders and BGE rerankers from one YAML recipe.

    \b
    Example:
      bgekit recipes list
      bgekit run recipes/m3.yaml train.learning_rate=2e-5 --dry-run
    """


if __name__ == "__main__":  # python -m bgekit.cli
    sys.exit(main())
