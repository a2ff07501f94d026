"""Built-in ``bgekit`` commands, registered as a third party's would be.

The implementations stay in :mod:`bgekit.commands`; each is imported when
the command line is built.
"""

from __future__ import annotations

from bgekit.api import CommandSpec, hookimpl

#: command name -> "module:attribute" of its click command or group
BUILTIN = {
    "plugins": "bgekit.commands.plugins:plugins",
    "recipes": "bgekit.commands.recipes:recipes",
    "run": "bgekit.commands.run:run",
    "schema": "bgekit.commands.schema:schema",
    "doctor": "bgekit.commands.doctor:doctor",
    "data": "bgekit.commands.data:data",
    "encode": "bgekit.commands.encode:encode",
    "eval": "bgekit.commands.eval:eval_group",
    "compare": "bgekit.commands.compare:compare",
    "bench": "bgekit.commands.bench:bench",
    "mine": "bgekit.commands.mine:mine",
    "score": "bgekit.commands.score:score",
    "rerank": "bgekit.commands.rerank:rerank",
    "augment": "bgekit.commands.augment:augment",
}


@hookimpl
def bgekit_commands():
    for name, target in BUILTIN.items():
        yield CommandSpec(name=name, command=target)
