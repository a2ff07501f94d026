"""The generated recipe schema: committed copy up to date, valid draft-07, agrees with validation."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from bgekit.plugins import get_plugin_manager
from bgekit.schema import REGENERATE_COMMAND, builtin_filter, dumps, recipe_schema

COMMITTED = Path(__file__).resolve().parent.parent / "schemas" / "recipe.schema.json"

RECIPE = {
    "task": "embedder",
    "output_dir": "runs/x",
    "model": {"name_or_path": "tiny", "heads": [{"name": "toy-pool", "pooling": "mean"}]},
    "loss": {"name": "toy-contrastive", "temperature": 0.02, "weight": 0.5},
    "device": {"name": "auto"},
    "evaluate": {"metrics": ["ndcg@10", "recall@100"]},
}


def builtin_schema() -> dict:
    manager = get_plugin_manager()
    builtin = [i.name for i in manager.plugin_infos() if i.source == "built-in"]
    return recipe_schema(manager.registry, builtin_filter(manager.registry, builtin))


def test_committed_schema_is_up_to_date(bgekit_pm):
    current = dumps(builtin_schema())
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == current, f"schemas/recipe.schema.json is stale; regenerate it with: {REGENERATE_COMMAND}"


def test_generation_is_deterministic_and_valid_draft07(toy_plugin):
    schema = recipe_schema(get_plugin_manager().registry)
    assert dumps(schema) == dumps(recipe_schema(get_plugin_manager().registry))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator.check_schema(builtin_schema())


def test_builtin_only_leaves_out_other_plugins(toy_plugin):
    everything = dumps(recipe_schema(get_plugin_manager().registry))
    assert "toy-contrastive" in everything and "toy-contrastive" not in dumps(builtin_schema())


def test_component_slots_carry_each_components_parameters(toy_plugin):
    schema = recipe_schema(get_plugin_manager().registry)
    loss = schema["properties"]["loss"]["oneOf"][0]
    assert "toy-contrastive" in loss["properties"]["name"]["enum"]
    [branch] = [b for b in loss["allOf"] if b["if"]["properties"]["name"]["const"] == "toy-contrastive"]
    params = branch["then"]
    assert params["additionalProperties"] is False
    assert params["properties"]["temperature"] == {"type": "number", "exclusiveMinimum": 0, "default": 0.05,
                                                   "description": "softmax temperature"}
    assert params["properties"]["weight"]["default"] == 1.0
    assert schema["properties"]["device"]["properties"]["name"]["enum"][:1] == ["auto"]
    assert "cpu" in schema["properties"]["device"]["properties"]["name"]["enum"]


def test_full_schema_agrees_with_two_stage_validation(toy_plugin):
    validator = jsonschema.Draft7Validator(recipe_schema(get_plugin_manager().registry))
    assert list(validator.iter_errors(RECIPE)) == []
    typo = yaml.safe_load(yaml.safe_dump(RECIPE))
    typo["loss"]["temprature"] = typo["loss"].pop("temperature")
    assert any("temprature" in e.message for e in validator.iter_errors(typo) for e in [e, *(e.context or [])])
    unknown = yaml.safe_load(yaml.safe_dump(RECIPE))
    unknown["evaluate"]["metrics"] = ["ndgc@10"]
    assert list(validator.iter_errors(unknown))


@pytest.mark.parametrize("section", ["train", "model", "data", "evaluate", "device"])
def test_every_outer_key_is_documented(section):
    props = builtin_schema()["properties"][section]["properties"]
    assert all(p.get("description") for p in props.values()), section
