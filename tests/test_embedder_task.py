"""The embedder task end to end: through ``bgekit run`` (a real subprocess) and in-process."""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import pytest
import yaml

import bgekit
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.train import embedder_task
from bgekit.train.callbacks import build_callbacks

ROWS = [
    {"query": "Which river is the longest in China?", "pos": ["The Yangtze is the longest river in China."],
     "neg": ["Beijing is the capital of China.", "Machine learning studies data."]},
    {"query": "What is the capital of China?", "pos": ["Beijing is the capital of China."],
     "neg": ["The Yangtze is the longest river in China."]},
    {"query": "红楼梦的作者是谁？", "pos": ["红楼梦是中国古典四大名著之一，作者是曹雪芹。"], "neg": []},
    {"query": "长江有多长？", "pos": ["长江是中国最长的河流，全长约六千三百公里。"],
     "neg": ["北京是中华人民共和国的首都。"], "pos_scores": [0.9], "neg_scores": [0.1]},
] * 3


def write_jsonl(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bgekit_run_trains_an_m3_model_and_says_how_to_encode(tmp_path, tiny_model_dir, run_bgekit):
    data = write_jsonl(tmp_path / "train.jsonl", ROWS, ('{"query": "no positive"}', "not json"))
    recipe = {
        "task": "embedder",
        "output_dir": str(tmp_path / "run"),
        "seed": 1,
        "model": {"name_or_path": str(tiny_model_dir),
                  "heads": [{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}],
                  "query_max_length": 16, "passage_max_length": 32},
        "data": {"train": str(data), "group_size": 3},
        "loss": {"name": "m3-unified"},
        "train": {"max_steps": 3, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1,
                  "save_steps": 2},
        "callbacks": [{"name": "jsonl-logger"}],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(recipe, allow_unicode=True))
    done = run_bgekit("run", str(path), "train.max_steps=4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["steps"] == 4  # the command-line override won
    assert summary["examples"] == len(ROWS) and summary["skipped_rows"] == 2
    assert "train.jsonl:13" in done.stderr and "train.jsonl:14" in done.stderr  # bad rows with file:line
    model_dir = Path(summary["model_dir"])
    assert f"bgekit encode --model {model_dir}" in done.stderr
    for name in ("model.safetensors", "tokenizer.json", "sparse_linear.pt", "colbert_linear.pt",
                 "resolved_recipe.yaml"):
        assert (model_dir / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in logged if x["event"] == "train"]
    assert [x["step"] for x in train] == [1, 2, 3, 4]
    assert {"dense", "sparse", "colbert", "ensemble"} <= set(train[0])  # the unified loss's parts

    from bgekit.models import Embedder

    model = Embedder.from_pretrained(str(model_dir))
    assert sorted(model.heads) == ["colbert", "dense", "sparse"]


def fake_recipe(tmp_path: Path, data: Path) -> types.SimpleNamespace:
    values = {"task": "embedder", "output_dir": str(tmp_path / "out"), "seed": 1,
              "model": {"name_or_path": "unused"}, "data": {"train": str(data)},
              "train": {"dtype": "fp32"}, "callbacks": []}
    return types.SimpleNamespace(values=values, path=tmp_path / "r.yaml", save=lambda out: None)


def test_no_valid_row_is_a_clear_error_naming_the_rows(tmp_path, bgekit_pm):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"query": "q"}, {"pos": ["p"]}])
    backend = select_backend(bgekit_pm.registry, "cpu")
    with pytest.raises(BgekitError, match=r"(?s)no valid training example.*bad\.jsonl:1"):
        embedder_task.run(fake_recipe(tmp_path, data), backend)


def test_missing_training_file_is_a_clear_error(tmp_path, bgekit_pm):
    backend = select_backend(bgekit_pm.registry, "cpu")
    with pytest.raises(BgekitError, match="nowhere.jsonl"):
        embedder_task.run(fake_recipe(tmp_path, tmp_path / "nowhere.jsonl"), backend)


def test_an_unsupported_dtype_fails_before_loading_anything(tmp_path, bgekit_pm):
    recipe = fake_recipe(tmp_path, write_jsonl(tmp_path / "t.jsonl", ROWS))
    recipe.values["train"]["dtype"] = "fp16"  # the CPU backend offers fp32 and bf16
    with pytest.raises(BgekitError, match="fp16 is not supported"):
        embedder_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"))


def test_an_empty_loss_list_built_in_code_is_a_one_line_error(tmp_path, bgekit_pm):
    recipe = fake_recipe(tmp_path, write_jsonl(tmp_path / "t.jsonl", ROWS))
    recipe.values["loss"] = []  # the schema refuses it in a file (minItems 1); a recipe built in code can have it
    with pytest.raises(BgekitError) as caught:
        embedder_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"))
    assert str(caught.value) == "loss: the list is empty; name at least one loss"


def test_jsonl_logger_is_always_on_and_callbacks_are_built_from_the_registry(bgekit_pm):
    built = build_callbacks([], bgekit_pm.registry)
    assert [name for name, _ in built] == ["jsonl-logger"]
    custom = build_callbacks([{"name": "jsonl-logger", "filename": "log.jsonl"}], bgekit_pm.registry)
    assert len(custom) == 1 and custom[0][1].filename == "log.jsonl"
    with pytest.raises(BgekitError, match="did you mean 'jsonl-logger'"):
        build_callbacks([{"name": "jsonl-loger"}], bgekit_pm.registry)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_tensorboard_without_the_package_says_what_to_install(bgekit_pm):
    with pytest.raises(BgekitError, match=r"pip install 'bgekit\[tensorboard\]'"):
        build_callbacks([{"name": "tensorboard"}], bgekit_pm.registry)


def test_callbacks_see_the_run_lifecycle(tmp_path, tiny_model_dir, bgekit_pm):
    events = []

    class Recorder:
        @bgekit.hookimpl
        def bgekit_on_run_start(self, run):
            events.append(("start", run.is_main_process))

        @bgekit.hookimpl
        def bgekit_on_checkpoint(self, run, step, path):
            events.append(("checkpoint", step, Path(path).name))

        @bgekit.hookimpl
        def bgekit_on_run_end(self, run, status):
            events.append(("end", status))

    recipe = fake_recipe(tmp_path, write_jsonl(tmp_path / "t.jsonl", ROWS))
    recipe.values["model"] = {"name_or_path": str(tiny_model_dir), "query_max_length": 16, "passage_max_length": 16}
    recipe.values["data"]["group_size"] = 2
    recipe.values["train"].update(max_steps=2, batch_size=4, logging_steps=1)
    from bgekit.testing import registered_plugin

    with registered_plugin(Recorder(), name="recorder", pm=bgekit_pm):
        embedder_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)
    assert events == [("start", True), ("checkpoint", 2, "checkpoint-2"), ("end", "ok")]
    # the recipe's callbacks were registered for the run only
    assert not [n for n in bgekit_pm.infos if n.startswith("callback:")]
    assert all(not (name or "").startswith("callback:") for name, _ in bgekit_pm.list_name_plugin())


def test_callbacks_get_secret_references_not_their_values(tmp_path, tiny_model_dir, bgekit_pm, monkeypatch):
    """A tracker that uploads ``run.recipe`` must never receive a value read from ``${env:NAME}``."""
    import json

    from bgekit.recipe import load_recipe
    from bgekit.testing import registered_plugin

    secret = "sk-test-4f9a8b7c6d5e"
    monkeypatch.setenv("BGEKIT_TEST_SECRET", secret)
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "t.jsonl", ROWS)
    (tmp_path / "r.yaml").write_text(
        "task: embedder\noutput_dir: out\n"
        f"model: {{name_or_path: {tiny_model_dir}, query_max_length: 16, passage_max_length: 16,\n"
        "        query_instruction: '${env:BGEKIT_TEST_SECRET}'}\n"
        "data: {train: t.jsonl, group_size: 2}\n"
        "train: {dtype: fp32, max_steps: 1, batch_size: 4}\n", encoding="utf-8")
    recipe = load_recipe(tmp_path / "r.yaml", registry=bgekit_pm.registry)
    assert recipe.values["model"]["query_instruction"] == secret  # the run itself uses the value
    seen = []

    class Tracker:
        @bgekit.hookimpl
        def bgekit_on_run_start(self, run):
            seen.append(json.dumps(run.recipe))

    with registered_plugin(Tracker(), name="tracker", pm=bgekit_pm):
        embedder_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)
    assert seen and secret not in seen[0] and "${env:BGEKIT_TEST_SECRET}" in seen[0]
