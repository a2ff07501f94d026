"""Tasks and commands come from plugins (bgekit_tasks, bgekit_commands), as a third party's would."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.errors import BgekitError
from bgekit.hookspecs import hookimpl
from bgekit.recipe import RecipeError, load_recipe
from bgekit.schema import section_schema
from bgekit.registry import CommandSpec, ConflictError, TaskSpec
from bgekit.schema import builtin_filter, recipe_schema
from bgekit.testing import registered_plugin, registered_specs

COUNT_SECTION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "limit": {"type": "integer", "minimum": 1, "default": 10, "description": "rows counted at most"},
        "label": {"type": "string", "description": "written into the summary"},
    },
    "required": ["label"],
}

RUNNER = '''
import json
from pathlib import Path

def run(recipe, backend):
    section = recipe.values["count"]
    out = Path(recipe.values["output_dir"]) / "count.json"
    out.write_text(json.dumps(section))
    return {"label": section["label"], "limit": section["limit"], "device": backend.name}
'''

RECIPE = """
task: count-rows
output_dir: {out}
model:
  name_or_path: unused
count:
  label: {label}
"""


def count_task(runner: str = "my_count_task:run") -> TaskSpec:
    return TaskSpec(name="count-rows", summary="count rows", runner=runner, sections={"count": COUNT_SECTION})


@pytest.fixture
def runner_module(tmp_path, monkeypatch):
    (tmp_path / "my_count_task.py").write_text(RUNNER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_a_plugin_task_runs_with_its_own_section_validated_and_defaulted(bgekit_pm, runner_module, tmp_path):
    out = tmp_path / "out"
    recipe = write(tmp_path / "count.yaml", RECIPE.format(out=out, label="rows"))
    with registered_specs(count_task(), name="counter", pm=bgekit_pm):
        result = CliRunner().invoke(main, ["run", str(recipe), "count.limit=3"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"label": "rows", "limit": 3, "device": "cpu"}
        assert json.loads((out / "count.json").read_text()) == {"label": "rows", "limit": 3}
        saved = (out / "resolved_recipe.yaml").read_text()
        assert "limit: 3  # from: command line" in saved
        assert load_recipe(recipe).values["count"] == {"label": "rows", "limit": 10}  # the section's default

        bad = write(tmp_path / "bad.yaml", RECIPE.format(out=out, label="rows") + "  limt: 3\n")
        result = CliRunner().invoke(main, ["run", str(bad)])
        assert result.exit_code == 1
        assert "bad.yaml:7  $.count.limt  unknown key 'limt' (did you mean 'limit'?)" in result.output
        with pytest.raises(RecipeError, match=r"command line  \$.count.label  expected string, got list"):
            load_recipe(recipe, ["count.label=[1]"])
    with pytest.raises(RecipeError, match=r"\$.task  unknown task 'count-rows'"):
        load_recipe(recipe)  # the plugin is gone, and its task with it


def test_unknown_task_names_the_known_ones(bgekit_pm, tmp_path):
    recipe = write(tmp_path / "r.yaml", "task: embeder\noutput_dir: out\nmodel: {name_or_path: m}\n")
    with pytest.raises(RecipeError, match=r"r.yaml:1  \$.task  unknown task 'embeder' \(did you mean 'embedder'\?\)"):
        load_recipe(recipe)


def test_task_sections_reach_the_schema_and_section_schema(bgekit_pm):
    assert section_schema("augment")["required"] == ["input", "method", "base_url", "model"]
    assert section_schema("train")["type"] == "object"
    with registered_specs(count_task(), name="counter", pm=bgekit_pm):
        registry = bgekit_pm.registry
        full = recipe_schema(registry)
        assert "count-rows" in full["properties"]["task"]["enum"]
        assert full["properties"]["count"]["properties"]["limit"]["default"] == 10
        assert section_schema("count") == COUNT_SECTION
        builtin = [i.name for i in bgekit_pm.plugin_infos() if i.source == "built-in"]
        shipped = recipe_schema(registry, builtin_filter(registry, builtin))
        assert "count" not in shipped["properties"] and "count-rows" not in shipped["properties"]["task"]["enum"]
        assert "augment" in shipped["properties"]["augment"]["description"]


def test_the_runner_is_imported_only_when_the_task_runs(bgekit_pm):
    spec = count_task("no_such_module_for_bgekit:run")
    with registered_specs(spec, name="counter", pm=bgekit_pm):
        bgekit_pm.registry.get("task", "count-rows")  # listing it imports nothing
        from bgekit.task_runners import runner_for

        with pytest.raises(Exception, match="task 'count-rows' is not available"):
            runner_for("count-rows")


def test_two_plugins_claiming_a_task_or_a_section_conflict_naming_both(bgekit_pm):
    with registered_specs(TaskSpec(name="mine", runner="x:run"), name="other-miner", pm=bgekit_pm):
        with pytest.raises(ConflictError, match="task 'mine' is provided by both 'tasks' and 'other-miner'"):
            bgekit_pm.registry
    other = TaskSpec(name="tally", runner="x:run", sections={"count": {"type": "object"}})
    with registered_specs(count_task(), name="counter", pm=bgekit_pm), \
            registered_specs(other, name="tallier", pm=bgekit_pm):
        with pytest.raises(ConflictError, match="'count' is defined by both task 'count-rows' \\(plugin 'counter'\\) "
                                                "and task 'tally' \\(plugin 'tallier'\\)"):
            recipe_schema(bgekit_pm.registry)
    # a task claiming one of bgekit's own sections: its plugin is listed as broken, the rest keeps working,
    # and a recipe naming that task fails with the reason
    grabby = TaskSpec(name="grabby", runner="x:run", sections={"model": {"type": "object"}})
    with registered_specs(grabby, name="grabber", pm=bgekit_pm):
        assert "embedder" in recipe_schema(bgekit_pm.registry)["properties"]["task"]["enum"]
        [info] = [i for i in bgekit_pm.plugin_infos() if i.name == "grabber"]
        assert info.status == "error" and "task 'grabby' claims the recipe section 'model'" in info.error
        with pytest.raises(BgekitError, match="'grabber': task 'grabby' claims the recipe section 'model'"):
            bgekit_pm.registry.get("task", "grabby")


@pytest.mark.parametrize("sections,reason", [
    ("no_such_module_for_bgekit_test:SECTIONS", "cannot be loaded (BgekitError"),
    ("json:loads", "must map section names to JSON-Schema objects"),
    ({"fine": "not a schema"}, "must map section names to JSON-Schema objects"),
])
def test_a_task_whose_sections_do_not_load_is_a_broken_plugin_not_a_broken_bgekit(bgekit_pm, sections, reason):
    broken = TaskSpec(name="broken-sections", runner="x:run", sections=sections)
    with registered_specs(broken, name="broken-task-plugin", pm=bgekit_pm):
        schema = recipe_schema(bgekit_pm.registry)  # every other recipe still validates
        assert "broken-sections" not in schema["properties"]["task"]["enum"]
        [info] = [i for i in bgekit_pm.plugin_infos() if i.name == "broken-task-plugin"]
        assert info.status == "error" and reason in info.error


def test_a_runner_that_is_not_a_function_is_one_line():
    with pytest.raises(BgekitError, match="runner 'json:no_such_function' is not a function"):
        TaskSpec(name="t", runner="json:no_such_function").load_runner()


@click.command()
@click.argument("who", default="world")
def hello(who: str) -> None:
    """Say hello.

    \b
    Example:
      bgekit hello you
    """
    click.echo(f"hello {who}")


def test_a_plugin_command_is_listed_and_runs(bgekit_pm):
    with registered_specs(CommandSpec(name="hello", command=hello), name="greeter", pm=bgekit_pm):
        listing = CliRunner().invoke(main, ["--help"])
        assert listing.exit_code == 0 and "hello" in listing.output and "Say hello." in listing.output
        assert CliRunner().invoke(main, ["hello", "you"]).output == "hello you\n"
        rows = json.loads(CliRunner().invoke(main, ["plugins", "list", "--json", "--kind", "command"]).output)
        assert {r["name"]: r["provides"] for r in rows}["greeter"] == {"command": ["hello"]}
    assert "hello" not in CliRunner().invoke(main, ["--help"]).output


def test_plugins_list_shows_tasks_and_commands(bgekit_pm):
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(main, ["plugins", "list", "--json"]).output)}
    assert sorted(rows["tasks"]["provides"]["task"]) == ["augment", "embedder", "evaluate", "joint", "mine", "reranker", "score"]
    assert "run" in rows["commands"]["provides"]["command"] and rows["commands"]["source"] == "built-in"


def test_a_broken_command_plugin_does_not_break_help(bgekit_pm):
    broken = CommandSpec(name="broken-cmd", command="no_such_module_for_bgekit:cmd")
    with registered_specs(broken, name="shaky", pm=bgekit_pm):
        listing = CliRunner().invoke(main, ["--help"], terminal_width=200)
        assert listing.exit_code == 0, listing.output
        assert "broken-cmd" in listing.output and "failed to load: ModuleNotFoundError" in listing.output
        assert "run " in listing.output  # the others are all there
        result = CliRunner().invoke(main, ["broken-cmd", "--x", "1"])
        assert result.exit_code == 1
        assert result.output.startswith("error: command 'broken-cmd' of plugin 'shaky' failed to load: "
                                        "ModuleNotFoundError")

    class Raising:
        @hookimpl
        def bgekit_commands(self):
            raise RuntimeError("boom")

    with registered_plugin(Raising(), name="raising", pm=bgekit_pm):
        listing = CliRunner().invoke(main, ["--help"])
        assert listing.exit_code == 0 and "run " in listing.output
        rows = {r["name"]: r for r in json.loads(CliRunner().invoke(main, ["plugins", "list", "--json"]).output)}
        assert rows["raising"]["status"] == "error" and "bgekit_commands raised RuntimeError: boom" in rows["raising"]["error"]


def test_a_command_name_claimed_twice_is_one_line_naming_both(bgekit_pm):
    with registered_specs(CommandSpec(name="run", command=hello), name="runner-too", pm=bgekit_pm):
        result = CliRunner().invoke(main, ["--help"])
        assert result.exit_code == 1
        assert result.output == ("error: command 'run' is provided by both 'commands' and 'runner-too'; disable one "
                                 "with BGEKIT_DISABLE_PLUGINS=runner-too (or uninstall it)\n")


HELLO_PLUGIN = '''
import click

from bgekit.api import CommandSpec, hookimpl


@click.command()
def hello():
    """Say hello from an installed plugin."""
    click.echo("hello from a plugin")


@hookimpl
def bgekit_commands():
    yield CommandSpec(name="hello", command="bgekit_hello:hello")
    yield CommandSpec(name="broken-cmd", command="bgekit_hello_missing:cmd")
'''


def test_an_installed_plugin_adds_commands_and_a_broken_one_is_listed(plugin_site, run_bgekit):
    plugin_site.add_dist("bgekit-hello", "hello", "bgekit_hello", HELLO_PLUGIN)
    listing = run_bgekit("--help", env=plugin_site.env(COLUMNS="200"))
    assert listing.returncode == 0, listing.stderr
    assert "Say hello from an installed plugin." in listing.stdout
    assert "broken-cmd" in listing.stdout and "(failed to load: ModuleNotFoundError" in listing.stdout
    assert "'bgekit_hello_missing'" in listing.stdout
    hello = run_bgekit("hello", env=plugin_site.env())
    assert (hello.returncode, hello.stdout) == (0, "hello from a plugin\n")
    broken = run_bgekit("broken-cmd", env=plugin_site.env())
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert broken.stderr.startswith("error: command 'broken-cmd' of plugin 'hello' failed to load")


TRAINER = '''
from pathlib import Path

CALLS = []


def run(recipe, backend):
    CALLS.append(recipe.values["data"]["train"])
    model = Path(recipe.values["output_dir"]) / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "weights.txt").write_text("trained")
    return {"model": str(model)}
'''


def test_a_plugin_training_task_runs_as_a_pipeline_train_step(bgekit_pm, tmp_path, monkeypatch):
    import importlib

    (tmp_path / "my_trainer.py").write_text(TRAINER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"query": "q", "pos": ["p"]}\n', encoding="utf-8")
    recipe = write(tmp_path / "r.yaml", "task: my-trainer\noutput_dir: runs/t\nmodel: {name_or_path: m}\n"
                                        "data: {train: train.jsonl}\nsteps: [train]\n")
    trainer = TaskSpec(name="my-trainer", runner="my_trainer:run", trains=True)
    with registered_specs(trainer, name="trainer", pm=bgekit_pm):
        for _ in range(2):
            result = CliRunner().invoke(main, ["run", str(recipe)])
            assert result.exit_code == 0, result.output
        assert importlib.import_module("my_trainer").CALLS == ["train.jsonl"]  # the second run was up to date
        assert (tmp_path / "runs/t/model/weights.txt").read_text() == "trained"
    with registered_specs(TaskSpec(name="my-trainer", runner="my_trainer:run"), name="trainer", pm=bgekit_pm):
        result = CliRunner().invoke(main, ["run", str(recipe)])
        assert result.exit_code == 1
        assert "task 'my-trainer' is not a training task (embedder, joint, reranker)" in result.output


def test_without_the_commands_plugin_a_command_says_why(monkeypatch):
    from bgekit.testing import fresh_plugin_manager

    monkeypatch.setenv("BGEKIT_DISABLE_PLUGINS", "commands")
    with fresh_plugin_manager():
        result = CliRunner().invoke(main, ["run", "x.yaml"])
    assert result.exit_code == 1
    assert result.output == ("error: no bgekit commands: the built-in 'commands' plugin is disabled "
                             "(BGEKIT_DISABLE_PLUGINS)\n")


def test_task_sections_may_be_named_lazily(tmp_path):
    """A task may name its sections as ``module:attribute`` (the built-in augment task does): they are
    loaded when the schema is built, and a reference that does not load is one error naming the task."""
    from bgekit.errors import BgekitError
    from bgekit.registry import TaskSpec

    module = tmp_path / "lazy_sections_for_test.py"
    module.write_text('SECTIONS = {"lazy": {"type": "object", "properties": {"n": {"type": "integer"}}}}\n')
    sys.path.insert(0, str(tmp_path))
    try:
        spec = TaskSpec(name="lazy", summary="", runner="x:y", sections="lazy_sections_for_test:SECTIONS")
        assert spec.owned_sections()["lazy"]["properties"]["n"] == {"type": "integer"}
    finally:
        sys.path.remove(str(tmp_path))
    broken = TaskSpec(name="broken", summary="", runner="x:y", sections="no_such_module_here:SECTIONS")
    with pytest.raises(BgekitError, match="task 'broken'.*no_such_module_here"):
        broken.owned_sections()
