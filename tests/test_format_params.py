"""A recipe passes parameters to its data format: ``data.format: {name: ..., PARAM: ...}``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bgekit.data.example import Example
from bgekit.data.readers import format_choice, read_examples
from bgekit.errors import BgekitError
from bgekit.recipe import RecipeError, load_recipe
from bgekit.registry import FormatSpec
from bgekit.testing import registered_specs


class SplitReader:
    """query<SEP>positive<SEP>negative rows, split on a recipe-chosen separator."""

    def __init__(self, separator: str = "\t", lowercase: bool = False, encoding: str = "auto") -> None:
        self.separator, self.lowercase, self.encoding = separator, lowercase, encoding

    def read(self, path):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                query, pos, neg = line.rstrip("\n").split(self.separator)
                if self.lowercase:
                    query = query.lower()
                yield Example(query=query, pos=[pos], neg=[neg], line=number)


SPLIT = FormatSpec(
    name="split-rows", summary="separated query, positive, negative", factory=SplitReader,
    params_schema={"properties": {
        "separator": {"type": "string", "minLength": 1, "default": "\t", "description": "the column separator"},
        "lowercase": {"type": "boolean", "default": False, "description": "lowercase the queries"},
    }},
)

RECIPE = """
task: embedder
output_dir: runs/x
model: {{name_or_path: m}}
data:
  train: {train}
  format:
    name: split-rows
    {param}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def split_format(bgekit_pm):
    with registered_specs(SPLIT, name="split-format", pm=bgekit_pm):
        yield bgekit_pm


def test_recipe_parameters_reach_the_reader(split_format, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = write(tmp_path / "train.txt", "What Is BGE?;an embedder;a fish\n")
    recipe = load_recipe(write(tmp_path / "r.yaml", RECIPE.format(train=train, param='separator: ";"')))
    data = recipe.values["data"]
    assert data["format"] == {"name": "split-rows", "separator": ";", "lowercase": False}
    assert recipe.provenance["data.format.lowercase"] == "schema default (data_format 'split-rows')"
    # the call the training task makes, with data.format as the recipe has it
    [example] = read_examples(data["train"], split_format.registry, data.get("format"), encoding=data["encoding"])
    assert (example.query, example.pos, example.neg) == ("What Is BGE?", ["an embedder"], ["a fish"])

    from bgekit.train.task_skeleton import load_training_examples

    lowered = load_recipe(tmp_path / "r.yaml", ["data.format.lowercase=true"]).values["data"]
    examples, errors = load_training_examples(lowered, split_format.registry, report=None)
    assert not errors and [e.query for e in examples] == ["what is bge?"]
    # mining and teacher scoring read the recipe's data the same way (mine task, pipeline, score task)
    from bgekit.mine.run import read_training_examples

    assert [e.query for e in read_training_examples(data["train"], lowered["format"])] == ["what is bge?"]


def test_a_bad_format_parameter_is_a_located_recipe_error(split_format, tmp_path):
    path = write(tmp_path / "r.yaml", RECIPE.format(train="t.txt", param="separatr: x"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert caught.value.problems == [
        f"{path}:8  $.data.format.separatr  unknown key 'separatr' (did you mean 'separator'?)"]
    path = write(tmp_path / "r.yaml", RECIPE.format(train="t.txt", param='separator: ""'))
    with pytest.raises(RecipeError, match=r"r.yaml:8  \$.data.format.separator  "):
        load_recipe(path)


def test_a_format_name_still_works_and_auto_takes_no_parameters(split_format, tmp_path):
    path = write(tmp_path / "r.yaml", "task: embedder\noutput_dir: runs/x\nmodel: {name_or_path: m}\n"
                                      "data: {format: split-rows}\n")
    assert load_recipe(path).values["data"]["format"] == "split-rows"
    assert format_choice("jsonl") == ("jsonl", {})
    assert format_choice({"name": "csv", "delimiter": ";"}) == ("csv", {"delimiter": ";"})
    with pytest.raises(BgekitError, match="need a format name, not auto"):
        format_choice({"delimiter": ";"})
