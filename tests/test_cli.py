"""The command line, in-process (CliRunner) and as real subprocesses."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.hookspecs import hookimpl
from bgekit.schema import dumps, recipe_schema
from bgekit.plugins import get_plugin_manager

GOOD = """
# yaml-language-server: $schema=../schemas/recipe.schema.json
# A toy recipe for the CLI tests.
# bgekit run good.yaml
task: embedder
output_dir: {out}
model:
  name_or_path: tiny
  heads: [{{name: toy-pool}}]
loss:
  name: toy-contrastive
  temperature: 0.02
train:
  learning_rate: 1e-5
"""

BAD = """
task: embedder
output_dir: runs/bad
model:
  name_or_path: tiny
  heads: [{name: toy-pool}]
loss:
  name: toy-contrastive
  temprature: 0.05
train:
  batch_size: "eight"
miner:
  name: no-such-miner
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # main's commands come from the registry
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, prefix + (name,))


def test_every_command_has_help_with_an_example(runner):
    for path, _ in _all_commands(main):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output, f"bgekit {' '.join(path)} --help has no example"


# -- the "must show" items, as a user sees them (real subprocesses) ----------


def test_validate_reports_typo_type_and_unknown_name_in_one_run(toy_site, tmp_path, run_bgekit):
    bad = write(tmp_path / "bad.yaml", BAD)
    good = write(tmp_path / "good.yaml", GOOD.format(out=tmp_path / "out"))
    result = run_bgekit("recipes", "validate", str(bad), str(good), env=toy_site.env(), cwd=tmp_path)
    assert result.returncode == 1
    err = result.stderr
    assert "bad.yaml:8  $.loss.temprature  unknown key 'temprature' (did you mean 'temperature'?)" in err
    assert "bad.yaml:10  $.train.batch_size  expected integer, got string ('eight')" in err
    assert "bad.yaml:12  $.miner.name  unknown miner 'no-such-miner'" in err
    assert "good.yaml: ok" in result.stdout
    assert "error: 1 of 2 recipes invalid" in err
    assert "Traceback" not in err


def test_dry_run_shows_override_with_provenance(toy_site, tmp_path, run_bgekit):
    out = tmp_path / "out"
    good = write(tmp_path / "good.yaml", GOOD.format(out=out))
    result = run_bgekit("run", str(good), "train.learning_rate=3e-5", "--dry-run", env=toy_site.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  learning_rate: 3.0e-05  # from: command line\n" in result.stdout
    assert "  temperature: 0.02  # from: recipe file good.yaml:11\n" in result.stdout
    assert "  dtype: fp32  # from: device backend defaults (cpu)\n" in result.stdout
    assert "dry run: nothing was loaded or written" in result.stderr
    assert not out.exists()


def test_broken_plugin_component_fails_with_the_plugins_error(plugin_site, tmp_path, run_bgekit):
    plugin_site.add_dist("bgekit-broken", "broken", "bgekit_broken_loss",
                         'raise ImportError("bgekit_broken_loss needs CUDA 13")\n')
    recipe = write(tmp_path / "r.yaml", "task: embedder\noutput_dir: o\nmodel: {name_or_path: m}\n"
                                        "loss: {name: broken-loss}\n")
    result = run_bgekit("recipes", "validate", str(recipe), env=plugin_site.env(), cwd=tmp_path)
    assert result.returncode == 1
    assert "r.yaml:4  $.loss.name  unknown loss 'broken-loss'" in result.stderr
    assert "'broken': ImportError: bgekit_broken_loss needs CUDA 13" in result.stderr
    doctor = run_bgekit("doctor", "--output-dir", str(tmp_path / "runs"), env=plugin_site.env(COLUMNS="200"))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "needs CUDA 13" in doctor.stdout


# -- in-process ---------------------------------------------------------------------


def test_user_errors_exit_1_without_traceback_unless_debug(runner, toy_plugin, tmp_path):
    bad = write(tmp_path / "bad.yaml", BAD)
    result = runner.invoke(main, ["run", str(bad), "--dry-run"])
    assert result.exit_code == 1 and "$.loss.temprature" in result.output
    assert "Traceback" not in result.output
    debug = runner.invoke(main, ["--debug", "run", str(bad), "--dry-run"])
    assert debug.exit_code == 1 and type(debug.exception).__name__ == "RecipeError"


def test_usage_errors_exit_2(runner):
    assert runner.invoke(main, ["run"]).exit_code == 2
    assert runner.invoke(main, ["plugins", "list", "--kind", "nope"]).exit_code == 2
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2


def replace_task(pm, name: str, runner: str) -> None:
    """Swap the built-in tasks plugin for one whose task ``name`` runs ``runner``."""
    builtin = pm.unregister(name="tasks")

    class Tasks:
        @hookimpl
        def bgekit_tasks(self):
            for spec in builtin.bgekit_tasks():
                yield dataclasses.replace(spec, runner=runner, factory=None) if spec.name == name else spec

    pm.register(Tasks(), name="tasks")


def test_run_saves_resolved_recipe_and_calls_the_task(runner, bgekit_pm, toy_plugin, tmp_path, monkeypatch):
    replace_task(bgekit_pm, "embedder", "bgekit_toy_components:fake_run")
    monkeypatch.syspath_prepend(str(Path(toy_plugin.__file__).parent))
    out = tmp_path / "out"
    good = write(tmp_path / "good.yaml", GOOD.format(out=out))
    toy_plugin.CALLS.clear()
    result = runner.invoke(main, ["run", str(good), "train.batch_size=2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"task": "embedder", "device": "cpu"}
    [call] = toy_plugin.CALLS
    assert call["recipe"].values["train"]["batch_size"] == 2 and call["backend"].name == "cpu"
    saved = (out / "resolved_recipe.yaml").read_text()
    assert "batch_size: 2  # from: command line" in saved


def test_task_without_a_runner_is_a_clear_error(runner, bgekit_pm, toy_plugin, tmp_path):
    replace_task(bgekit_pm, "joint", "bgekit.train.no_such_module:run")
    good = write(tmp_path / "good.yaml", GOOD.format(out=tmp_path / "out"))
    result = runner.invoke(main, ["run", str(good), "task=joint"])
    assert result.exit_code == 1
    assert "task 'joint' is not available in this version of bgekit" in result.output


def test_plugins_list_filters_by_kind(runner, toy_plugin):
    rows = json.loads(runner.invoke(main, ["plugins", "list", "--json", "--kind", "loss"]).output)
    toy = [r for r in rows if r["name"] == "toy"]
    assert toy and toy[0]["provides"] == {"loss": ["toy-contrastive"]}
    assert all(list(r["provides"]) == ["loss"] for r in rows)
    table = runner.invoke(main, ["plugins", "list", "--kind", "head"], terminal_width=200)
    assert table.exit_code == 0 and "toy-pool" in table.output and "toy-contrastive" not in table.output


def test_schema_command_prints_the_generated_schema(runner, toy_plugin):
    result = runner.invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == dumps(recipe_schema(get_plugin_manager().registry))
    assert "toy-contrastive" not in runner.invoke(main, ["schema", "--builtin-only"]).output


def test_recipes_list_and_cp(runner, tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    (shipped / "extra").mkdir(parents=True)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "recipe.schema.json").write_text("{}")
    write(shipped / "demo.yaml", """
        # yaml-language-server: $schema=../schemas/recipe.schema.json
        # bgekit run demo
        # Fine-tune a demo model on demo data.
        task: embedder
        """)
    write(shipped / "extra" / "other.yaml", "# Another recipe.\ntask: evaluate\n")
    monkeypatch.setattr("bgekit.shipped_recipes.recipes_dir", lambda: shipped)
    listing = runner.invoke(main, ["recipes", "list"], terminal_width=200)
    assert listing.exit_code == 0
    assert "demo" in listing.output and "Fine-tune a demo model on demo data." in listing.output
    assert "extra/other" in listing.output and "Another recipe." in listing.output

    dest = tmp_path / "mine"
    dest.mkdir()
    assert runner.invoke(main, ["recipes", "cp", "demo", str(dest)]).exit_code == 0
    copied = (dest / "demo.yaml").read_text()
    assert copied.splitlines()[0] == f"# yaml-language-server: $schema={(tmp_path / 'schemas' / 'recipe.schema.json').as_uri()}"
    assert copied.splitlines()[1:] == (shipped / "demo.yaml").read_text().splitlines()[1:]
    again = runner.invoke(main, ["recipes", "cp", "demo", str(dest)])
    assert again.exit_code == 1 and "pass --force" in again.output
    assert runner.invoke(main, ["recipes", "cp", "demo", str(dest), "--force"]).exit_code == 0
    missing = runner.invoke(main, ["recipes", "cp", "dmeo", str(dest)])
    assert missing.exit_code == 1 and "did you mean 'demo'" in missing.output


def test_shipped_recipes_are_found_through_the_package(tmp_path):
    from bgekit.shipped_recipes import recipes_dir

    assert recipes_dir().resolve() == (Path(__file__).resolve().parent.parent / "recipes")


def test_doctor_fails_on_an_unwritable_output_dir(runner, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ok = runner.invoke(main, ["doctor", "--output-dir", str(tmp_path / "runs")], terminal_width=200)
    assert ok.exit_code == 0 and "torch" in ok.output and "device cpu" in ok.output
    bad = runner.invoke(main, ["doctor", "--output-dir", str(blocker / "runs")], terminal_width=200)
    assert bad.exit_code == 1 and "cannot write" in bad.output


def test_ci_runs_the_readme_test_command():
    root = Path(__file__).resolve().parent.parent
    command = "pip install torch==2.13.0 -e '.[test]' && python -m pytest -q"
    assert f"```bash\n{command}\n```" in (root / "README.md").read_text(encoding="utf-8")
    assert (root / ".ci" / "run").read_text(encoding="utf-8").rstrip().endswith(command)
