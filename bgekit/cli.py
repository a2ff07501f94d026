"""The ``bgekit`` command line.

Each command family lives in its own module under :mod:`bgekit.commands`;
``COMMANDS`` below is the one list that puts them on the command line.
Errors a user can fix (:class:`bgekit.BgekitError`) print as one message on
stderr with exit status 1; ``--debug`` shows the traceback instead. Usage
errors exit with 2 (click's convention).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
import yaml

import bgekit
from bgekit.errors import BgekitError

#: ``module:attribute`` of every command (group); add a line to add a command.
COMMANDS = [
    "bgekit.commands.plugins:plugins",
    "bgekit.commands.recipes:recipes",
    "bgekit.commands.run:run",
    "bgekit.commands.schema:schema",
    "bgekit.commands.doctor:doctor",
    "bgekit.commands.data:data",
    "bgekit.commands.encode:encode",
    "bgekit.commands.eval:eval_group",
    "bgekit.commands.compare:compare",
    "bgekit.commands.bench:bench",
    "bgekit.commands.mine:mine",
    "bgekit.commands.score:score",
    "bgekit.commands.rerank:rerank",
    "bgekit.commands.augment:augment",
]


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


class _BgekitGroup(click.Group):
    """Turns BgekitError and other expected failures into one line and exit 1 (unless ``--debug``)."""

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


def _load(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


for _target in COMMANDS:
    main.add_command(_load(_target))


if __name__ == "__main__":  # python -m bgekit.cli
    sys.exit(main())
