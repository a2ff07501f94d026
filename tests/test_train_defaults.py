"""The settings dataclasses of the training tasks take their keys and defaults from the recipe schema."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from bgekit.errors import BgekitError
from bgekit.recipe_schema import outer_schema
from bgekit import schema as schema_module
from bgekit.schema import section_schema
from bgekit.train.joint_task import JointSettings, RerankerSettings
from bgekit.train.trainer import TrainConfig

#: each settings class, the recipe section it reads, and its fields that come from elsewhere in the recipe
SETTINGS = [(TrainConfig, "train", {"seed"}), (JointSettings, "joint", set()), (RerankerSettings, "reranker", set())]


def test_section_schema_finds_core_and_task_owned_sections():
    for name in ("train", "data"):
        assert section_schema(name) == outer_schema()["properties"][name]
    # the joint task owns these two: they come from its TaskSpec, not the core schema
    from bgekit.train.joint_section import JOINT, RERANKER

    assert "joint" not in outer_schema()["properties"] and "reranker" not in outer_schema()["properties"]
    assert section_schema("joint") == JOINT and section_schema("reranker") == RERANKER


@pytest.mark.parametrize("cls,section,elsewhere", SETTINGS, ids=[s for _, s, _ in SETTINGS])
def test_every_schema_key_is_a_field_with_the_schemas_default(cls, section, elsewhere):
    keys = section_schema(section)["properties"]
    fields = {f.name for f in dataclasses.fields(cls)}
    assert set(keys) == fields - elsewhere
    made = cls()
    for key, schema in keys.items():
        assert getattr(made, key) == schema.get("default"), f"{section}.{key}"


def test_the_seed_default_is_the_recipes_top_level_one():
    assert TrainConfig().seed == outer_schema()["properties"]["seed"]["default"]
    assert TrainConfig.from_recipe({"seed": 7}).seed == 7


def test_a_default_changed_in_the_schema_changes_the_settings(monkeypatch):
    """The schema is the one source: nothing else holds a copy of the default."""
    changed = copy.deepcopy(outer_schema())
    changed["properties"]["train"]["properties"]["batch_size"]["default"] = 123
    monkeypatch.setattr(schema_module, "outer_schema", lambda: copy.deepcopy(changed))
    from bgekit.train.joint_section import JOINT, RERANKER  # the joint task's own sections

    monkeypatch.setitem(JOINT["properties"]["temperature"], "default", 0.5)
    monkeypatch.setitem(RERANKER["properties"]["max_length"], "default", 99)
    assert TrainConfig().batch_size == 123 and TrainConfig.from_recipe({}).batch_size == 123
    assert JointSettings().temperature == 0.5 and JointSettings.from_recipe({"joint": {}}).temperature == 0.5
    assert RerankerSettings.from_recipe({"reranker": {"name_or_path": "x"}}).max_length == 99


def test_recipe_values_win_over_the_defaults():
    config = TrainConfig.from_recipe({"train": {"batch_size": 3, "select_best": "ndcg@10"}, "seed": 5})
    assert (config.batch_size, config.select_best, config.seed) == (3, "ndcg@10", 5)
    assert JointSettings.from_recipe({"joint": {"reranker_loss": {"name": "bce"}}}).reranker_loss == {"name": "bce"}


@pytest.mark.parametrize("build,line", [
    (lambda: TrainConfig.from_recipe({"train": {"learning_rat": 1e-5}}),
     "train.learning_rat: unknown key (did you mean 'learning_rate'?)"),
    (lambda: TrainConfig.from_recipe({"train": {"seed": 1}}), "train.seed: unknown key"),
    (lambda: JointSettings.from_recipe({"joint": {"temprature": 0.1}}),
     "joint.temprature: unknown key (did you mean 'temperature'?)"),
    (lambda: RerankerSettings.from_recipe({"reranker": {"name_or_path": "x", "max_len": 9}}),
     "reranker.max_len: unknown key (did you mean 'max_length'?)"),
])
def test_an_unknown_key_is_refused_in_one_line_naming_it(build, line):
    with pytest.raises(BgekitError) as caught:
        build()
    assert str(caught.value) == line


def test_a_section_value_the_recipe_leaves_out_is_the_schemas_default(monkeypatch):
    from bgekit.train.settings import setting

    assert setting({"group_size": 3}, "data", "group_size") == 3
    assert setting(None, "data", "group_size") == section_schema("data")["properties"]["group_size"]["default"]
    assert setting({"revision": None}, "model", "revision") is None  # given as null: null, not the default
    changed = copy.deepcopy(outer_schema())
    changed["properties"]["data"]["properties"]["num_workers"]["default"] = 2
    monkeypatch.setattr(schema_module, "outer_schema", lambda: copy.deepcopy(changed))
    assert setting({}, "data", "num_workers") == 2
