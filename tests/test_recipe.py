"""Recipes: extends, overrides, two-stage validation, provenance, secrets, saving."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from bgekit.devices import select_backend
from bgekit.recipe import RecipeError, load_recipe, parse_override
from bgekit.plugins import get_registry


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


BASE = """
task: embedder
model:
  name_or_path: tiny-model
  heads:
    - name: toy-pool
train:
  learning_rate: 2e-5
  batch_size: 4
loss:
  name: toy-contrastive
"""

CHILD = """
# yaml-language-server: $schema=../schemas/recipe.schema.json
extends: base.yaml
output_dir: runs/child
train:
  batch_size: 16
"""


@pytest.fixture
def child(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    return write(tmp_path / "child.yaml", CHILD)


def problems(excinfo) -> list[str]:
    return excinfo.value.problems


def test_extends_merges_and_every_leaf_says_where_it_came_from(toy_plugin, child):
    recipe = load_recipe(child, ["train.learning_rate=3e-5"])
    v, p = recipe.values, recipe.provenance
    assert v["train"]["learning_rate"] == 3e-5 and p["train.learning_rate"] == "command line"
    assert v["train"]["batch_size"] == 16 and p["train.batch_size"].endswith("child.yaml:5")
    assert p["train.batch_size"].startswith("recipe file ")
    assert v["model"]["name_or_path"] == "tiny-model"
    assert p["model.name_or_path"].startswith("extended recipe ") and p["model.name_or_path"].endswith("base.yaml:3")
    assert v["train"]["epochs"] == 1 and p["train.epochs"] == "schema default"
    # component parameters get their schema defaults, and every loss a weight
    assert v["loss"] == {"name": "toy-contrastive", "temperature": 0.05, "symmetric": False, "weight": 1.0}
    assert p["loss.temperature"] == "schema default (loss 'toy-contrastive')"
    assert v["model"]["heads"] == [{"name": "toy-pool", "pooling": "cls"}]
    assert p["model.heads.0.name"].endswith("base.yaml:5")
    assert "extends" not in v
    assert list(v)[:4] == ["task", "steps", "output_dir", "seed"]  # schema order, not file order
    assert set(p) == {k for k in p}  # every leaf has a source
    assert recipe.get("model.heads.0.pooling") == "cls" and recipe.get("train.nope", 7) == 7


def test_extends_chain_and_cycle(toy_plugin, tmp_path):
    write(tmp_path / "a.yaml", "extends: sub/b.yaml\noutput_dir: x\n")
    write(tmp_path / "sub" / "b.yaml", "extends: ../c.yaml\n")
    write(tmp_path / "c.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "a.yaml")
    [line] = problems(info)
    where, cycle = line.split("  $.extends  extends cycle: ")
    assert where == f"{tmp_path / 'c.yaml'}:1"
    assert [Path(p).name for p in cycle.split(" -> ")] == ["a.yaml", "b.yaml", "c.yaml", "a.yaml"]


def test_missing_base_recipe_points_at_the_extends_line(toy_plugin, tmp_path):
    path = write(tmp_path / "r.yaml", "output_dir: x\nextends: nothere.yaml\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert problems(info) == [f"{path}:2  $.extends  base recipe 'nothere.yaml' not found "
                              f"(looked for {tmp_path / 'nothere.yaml'}; paths are relative to this file)"]


def test_every_problem_is_reported_with_file_line_and_path(toy_plugin, tmp_path):
    path = write(tmp_path / "bad.yaml", """
        task: embedder
        output_dir: runs/bad
        model:
          name_or_path: tiny
          heads: [{name: toy-pool}]
        loss:
          name: toy-contrastive
          temprature: 0.05
        train:
          batch_size: many
          learnig_rate: 1e-5
        miner:
          name: hard-negative-mienr
        """)
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["train.epochs=-1"])
    lines = problems(info)
    assert lines[0] == f"{path}:8  $.loss.temprature  unknown key 'temprature' (did you mean 'temperature'?)"
    assert lines[1] == f"{path}:10  $.train.batch_size  expected integer, got string ('many')"
    assert lines[2] == f"{path}:11  $.train.learnig_rate  unknown key 'learnig_rate' (did you mean 'learning_rate'?)"
    assert lines[3].startswith(f"{path}:13  $.miner.name  unknown miner 'hard-negative-mienr'")
    assert lines[4] == "command line  $.train.epochs  -1 is less than the minimum of 0"
    assert len(lines) == 5
    assert str(info.value).startswith(f"{path}: 5 problems")


def test_unknown_component_name_gets_a_suggestion(toy_plugin, tmp_path):
    path = write(tmp_path / "r.yaml", BASE + "output_dir: x\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["loss.name=toy-contrastiv", "device.name=cpux"])
    text = "\n".join(problems(info))
    assert "$.loss.name  unknown loss 'toy-contrastiv' (did you mean 'toy-contrastive'?)" in text
    assert "$.device.name  unknown device 'cpux' (did you mean 'cpu'?)" in text


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = write(tmp_path / "r.yaml", "task: embedder\nmodel:\n  name_or_path: [unclosed\noutput_dir: x\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    [line] = problems(info)
    assert line.startswith(f"{path}:4  $  not valid YAML")


def test_duplicate_keys_are_an_error(tmp_path):
    path = write(tmp_path / "r.yaml", "task: embedder\noutput_dir: a\noutput_dir: b\n")
    with pytest.raises(RecipeError, match=r"r.yaml:3  \$.output_dir  duplicate key 'output_dir'"):
        load_recipe(path)


def test_overrides_are_typed_and_can_remove(toy_plugin, child):
    recipe = load_recipe(child, [
        "train.learning_rate=1e-4",  # YAML 1.1 would read this as a string
        "train.gradient_checkpointing=true",
        "evaluate.metrics=[ndcg@10, recall@5]",
        "~train.batch_size",  # back to the schema default
        "model.heads.0.pooling=mean",
    ])
    v = recipe.values
    assert v["train"]["learning_rate"] == pytest.approx(1e-4)
    assert v["train"]["gradient_checkpointing"] is True
    assert v["evaluate"]["metrics"] == ["ndcg@10", "recall@5"]
    assert v["train"]["batch_size"] == 8 and recipe.provenance["train.batch_size"] == "schema default"
    assert v["model"]["heads"][0]["pooling"] == "mean"
    assert recipe.provenance["model.heads.0.pooling"] == "command line"


def test_a_list_of_losses_each_with_a_weight(toy_plugin, child):
    recipe = load_recipe(child, ["loss=[{name: toy-contrastive}, {name: toy-contrastive, temperature: 0.1}]",
                                 "loss.1.weight=0.5"])
    assert [(l["temperature"], l["weight"]) for l in recipe.values["loss"]] == [(0.05, 1.0), (0.1, 0.5)]


def test_bad_overrides(toy_plugin, child):
    with pytest.raises(RecipeError) as info:
        load_recipe(child, ["train.learning_rate", "2bad.key=1"])
    assert len(problems(info)) == 2 and "expected KEY=VALUE" in problems(info)[0]
    with pytest.raises(RecipeError) as info:
        load_recipe(child, ["~train.batch_sise", "model.heads.3.pooling=mean", "train.learnin_rate=1"])
    text = "\n".join(problems(info))
    assert "'~train.batch_sise': nothing to remove (did you mean 'batch_size'?)" in text
    assert "$.model.heads is a list of 1; use an index below 1" in text
    assert "command line  $.train.learnin_rate  unknown key 'learnin_rate' (did you mean 'learning_rate'?)" in text
    assert parse_override("a.b=").value is None


def test_device_backend_defaults_sit_between_files_and_schema(toy_plugin, child, tmp_path):
    cpu = select_backend(get_registry(), "cpu")
    recipe = load_recipe(child, backend=cpu)
    assert recipe.values["train"]["dtype"] == "fp32"
    assert recipe.provenance["train.dtype"] == "device backend defaults (cpu)"
    assert load_recipe(child).values["train"]["dtype"] == "auto"  # no backend: the schema default
    write(tmp_path / "bf16.yaml", "extends: child.yaml\ntrain: {dtype: bf16}\n")
    pinned = load_recipe(tmp_path / "bf16.yaml", backend=cpu)
    assert pinned.values["train"]["dtype"] == "bf16" and pinned.provenance["train.dtype"].startswith("recipe file")


def test_secrets_come_from_the_environment_and_are_masked(toy_plugin, child, tmp_path, monkeypatch):
    path = write(tmp_path / "secret.yaml", """
        extends: child.yaml
        callbacks:
          - name: toy-logger
            api_key: ${env:TOY_API_KEY}
        """)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert problems(info) == [f"{path}:4  $.callbacks[0].api_key  environment variable TOY_API_KEY is not set "
                              "(the recipe reads ${env:TOY_API_KEY}); export it before running"]
    monkeypatch.setenv("TOY_API_KEY", "sk-very-secret")
    recipe = load_recipe(path)
    assert recipe.values["callbacks"][0]["api_key"] == "sk-very-secret"
    saved = recipe.save(tmp_path / "out").read_text()
    assert "sk-very-secret" not in saved and "sk-very-secret" not in recipe.to_yaml()
    assert "api_key: ${env:TOY_API_KEY}" in saved  # the reference, so the saved recipe runs again
    rerun = load_recipe(tmp_path / "out" / "resolved_recipe.yaml")
    assert rerun.values["callbacks"][0]["api_key"] == "sk-very-secret"
    monkeypatch.delenv("TOY_API_KEY")
    with pytest.raises(RecipeError, match="TOY_API_KEY is not set"):
        load_recipe(tmp_path / "out" / "resolved_recipe.yaml")


def test_saved_recipe_records_sources_and_versions_and_reloads_to_the_same_values(toy_plugin, child, tmp_path):
    recipe = load_recipe(child, ["train.learning_rate=3e-5", 'model.query_instruction="Represent this:\\n # not a comment"'])
    assert recipe.values["model"]["query_instruction"] == "Represent this:\n # not a comment"
    out = recipe.save(tmp_path / "runs" / "x")
    assert out == tmp_path / "runs" / "x" / "resolved_recipe.yaml"
    text = out.read_text()
    assert "  learning_rate: 3.0e-05  # from: command line\n" in text
    assert "  epochs: 1  # from: schema default\n" in text
    assert "#   toy 0.0.1 (registered, ok)" in text and "by bgekit 0.1.0" in text
    assert not [p for p in out.parent.iterdir() if p.name != "resolved_recipe.yaml"]  # no temp file left
    assert yaml.safe_load(text) == recipe.values
    again = load_recipe(out)
    assert again.values == recipe.values


def test_top_level_shape_errors(tmp_path):
    path = write(tmp_path / "list.yaml", "- task: embedder\n")
    with pytest.raises(RecipeError, match="a recipe is a mapping of sections"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "absent.yaml")
    empty = write(tmp_path / "empty.yaml", "# nothing yet\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(empty)
    assert [p.split("  ", 2)[2] for p in problems(info)] == [
        "missing required key 'task'", "missing required key 'model'", "missing required key 'output_dir'"]
