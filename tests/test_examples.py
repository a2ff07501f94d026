"""Every ``bgekit ...`` example a user can copy works: each one in a ``--help`` text and in the README's
shell code blocks is parsed by click exactly as the command line would be (model references replaced by a
local tiny model, input files that do not exist here by empty stand-ins), and the ones that need no model
or data are run.

Examples are discovered, not listed: a command or README block added later is covered without editing this
file, and nothing is skipped — an example that cannot be parsed fails with its source and text.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.commands.params import ModelDirectory

REPO = Path(__file__).resolve().parent.parent
#: parameters that name a model, whatever their click type
MODEL_PARAMS = {"model_path", "reranker_path", "retriever_path", "baseline", "candidate", "tokenizer"}
#: commands (paths of names) whose examples are also run: they need no model, data or network
RUNNABLE = {("plugins", "list"), ("recipes", "list"), ("doctor",), ("schema",)}
#: fenced block languages that hold shell commands
SHELL = {"", "bash", "sh", "shell", "console", "zsh"}


def _commands(group: click.Group = main, path: tuple[str, ...] = ()):
    """``(path, command)`` of every command and group under ``group``."""
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):  # main's commands come from the registry
        command = group.get_command(ctx, name)
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _bgekit_lines(lines: list[str]) -> list[str]:
    """Commands starting with ``bgekit `` (after ``&&`` too), with backslash continuations joined."""
    found, pending = [], ""
    for raw in lines:
        line = raw.strip()
        if pending:
            pending += " " + line
        else:
            for part in line.split("&&"):
                if part.strip().startswith("bgekit "):
                    pending = part.strip()
        if pending and pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        if pending:
            found.append(pending)
            pending = ""
    return found


def help_examples() -> list[tuple[str, str]]:
    out = [("bgekit --help", line) for line in _bgekit_lines((main.help or "").splitlines())]
    for path, command in _commands():
        out += [(f"bgekit {' '.join(path)} --help", line) for line in _bgekit_lines((command.help or "").splitlines())]
    return out


def readme_examples() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    out = []
    for match in re.finditer(r"^```([\w-]*)\n(.*?)^```", text, re.M | re.S):
        if match.group(1).lower() in SHELL:
            line_no = text[:match.start()].count("\n") + 1
            out += [(f"README.md:{line_no}", line) for line in _bgekit_lines(match.group(2).splitlines())]
    return out


EXAMPLES = help_examples() + readme_examples()


def _words(line: str) -> list[str]:
    """The words of a shell command line up to its first operator (``>``, ``|``, ``;``, ``&&``), comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word and all(ch in "();<>|&" for ch in word):
            break
        words.append(word)
    return words


def _leaf(args: list[str]) -> tuple[tuple[str, ...], click.Command, click.Context, list[str]]:
    """The command an argument list reaches, a context for it, and the arguments it gets."""
    ctx = main.make_context("bgekit", list(args), resilient_parsing=True)
    command: click.Command = main
    rest = [*ctx._protected_args, *ctx.args]
    path: list[str] = []
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, rest)
        path.append(name)
        ctx = command.context_class(command, info_name=name, parent=ctx)
        if isinstance(command, click.Group):
            sub = command.make_context(name, rest, parent=ctx.parent, resilient_parsing=True)
            rest = [*sub._protected_args, *sub.args]
    return tuple(path), command, ctx, rest


def _stand_ins(command: click.Command, ctx: click.Context, rest: list[str], model: str, folder: Path) -> dict:
    """Raw value -> what replaces it: models become the tiny model, missing inputs empty stand-ins."""
    values, _, _ = command.make_parser(ctx).parse_args(args=list(rest))
    params = {p.name: p for p in command.params}
    replace = {}
    for name, raw in values.items():
        param = params[name]
        for value in raw if isinstance(raw, (list, tuple)) else [raw]:
            if not isinstance(value, str):
                continue
            if name in MODEL_PARAMS or isinstance(param.type, ModelDirectory):
                replace[value] = model
            elif isinstance(param.type, click.Path) and param.type.exists and not Path(value).exists():
                wants_dir = value.endswith("/") or not param.type.file_okay
                stand_in = folder / f"stand-in-{len(replace)}{'' if wants_dir else Path(value).suffix}"
                stand_in.mkdir() if wants_dir else stand_in.write_text("")
                replace[value] = str(stand_in)
    return replace


def test_examples_are_found_in_every_help_and_in_the_readme():
    sources = {source for source, _ in EXAMPLES}
    assert sum(s.startswith("README.md") for s in sources) >= 8
    leaves = [(path, c) for path, c in _commands() if not isinstance(c, click.Group)]
    covered = {tuple(_leaf(_words(line)[1:])[0]) for _, line in EXAMPLES}
    missing = [" ".join(path) for path, _ in leaves if path not in covered]
    assert not missing, f"commands without any example in a --help or the README: {missing}"


@pytest.mark.parametrize("source, line", EXAMPLES, ids=[f"{s}: {l[:60]}" for s, l in EXAMPLES])
def test_example_parses(source, line, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # examples name repo files such as recipes/quickstart.yaml
    words = _words(line)
    assert words[0] == "bgekit", f"{source}: {line}"
    args = words[1:]
    path, command, ctx, rest = _leaf(args)
    replace = _stand_ins(command, ctx, rest, str(tiny_model_dir), tmp_path)
    args = [replace.get(a, a) for a in args]
    try:
        ctx = main.make_context("bgekit", list(args))
        group, rest = main, [*ctx._protected_args, *ctx.args]
        while isinstance(group, click.Group):
            name, group, rest = group.resolve_command(ctx, rest)
            ctx = group.make_context(name, rest, parent=ctx)
            rest = [*ctx._protected_args, *ctx.args] if isinstance(group, click.Group) else []
    except click.ClickException as error:
        pytest.fail(f"{source}: `{line}` does not parse: {error.format_message()}")
    if path in RUNNABLE:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, f"{source}: `{line}` failed:\n{result.output}"
