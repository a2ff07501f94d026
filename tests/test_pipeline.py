"""Recipe pipelines: ``steps: [mine, train]`` does each step once, and a crash resumes at the failed step."""

from __future__ import annotations

import json

import pytest
import yaml

import bgekit
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.mine.settings import MiningSettings, params_schema
from bgekit.recipe import load_recipe
from bgekit.registry import MinerSpec
from bgekit.tasks import run_task
from bgekit.testing import registered_plugin

PASSAGES = [f"passage number {i} about topic {i % 5}" for i in range(24)]
ROWS = [{"query": f"question {i}", "pos": [PASSAGES[i]], "neg": [PASSAGES[(i + 1) % 24]]} for i in range(8)]


class CountingMiner:
    """A miner plugin (uniform random ranking) that counts how often a run builds it."""

    def __init__(self) -> None:
        self.calls = 0

    @bgekit.hookimpl
    def bgekit_miners(self):
        def create(context=None, **params):
            from bgekit_miners.uniform import RandomRetriever

            self.calls += 1
            settings, _own = MiningSettings.split(params)
            return RandomRetriever(settings, context)

        yield MinerSpec(name="counting", summary="random, counted", factory=create, params_schema=params_schema({}))


class CrashAtStep:
    def __init__(self, step: int) -> None:
        self.step = step

    @bgekit.hookimpl
    def bgekit_on_step_end(self, run, step, metrics):
        if step == self.step:
            raise RuntimeError(f"killed at step {step}")


@pytest.fixture
def pipeline(tmp_path, tiny_model_dir, bgekit_pm):
    miner = CountingMiner()
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    recipe = {
        "task": "embedder", "output_dir": str(tmp_path / "run"), "seed": 1, "steps": ["mine", "train"],
        "model": {"name_or_path": str(tiny_model_dir), "query_max_length": 16, "passage_max_length": 16},
        "data": {"train": str(tmp_path / "train.jsonl"), "group_size": 2},
        "miner": {"name": "counting", "range": [0, 10], "num_negatives": 2},
        "train": {"max_steps": 3, "batch_size": 4, "logging_steps": 1, "save_steps": 1, "dtype": "fp32",
                  "resume_from": "latest"},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    backend = select_backend(bgekit_pm.registry, "cpu")
    with registered_plugin(miner, name="counting-miner", pm=bgekit_pm):
        yield lambda *overrides: run_task(load_recipe(path, overrides), backend), miner, tmp_path / "run", bgekit_pm


def test_run_twice_does_the_work_once(pipeline, capsys):
    run, miner, out, _pm = pipeline
    first = run()
    assert miner.calls == 1 and not first["steps"]["mine"]["skipped"] and not first["steps"]["train"]["skipped"]
    mined = [json.loads(x) for x in (out / "mined.jsonl").read_text().splitlines()]
    assert all(len(r["neg"]) == 2 for r in mined)
    resolved = yaml.safe_load((out / "model" / "resolved_recipe.yaml").read_text())
    assert resolved["data"]["train"] == str(out / "mined.jsonl")  # train read what mine wrote
    model_mtime = (out / "model" / "model.safetensors").stat().st_mtime_ns
    assert json.loads((out / "mine.done.json").read_text())["step"] == "mine"

    capsys.readouterr()
    second = run()
    assert miner.calls == 1 and second["steps"]["mine"]["skipped"] and second["steps"]["train"]["skipped"]
    assert "skipping mine: up to date" in capsys.readouterr().err
    assert (out / "model" / "model.safetensors").stat().st_mtime_ns == model_mtime

    third = run("miner.num_negatives=3")  # a changed setting re-runs that step and everything after it
    assert miner.calls == 2 and not third["steps"]["train"]["skipped"]
    assert all(len(json.loads(x)["neg"]) == 3 for x in (out / "mined.jsonl").read_text().splitlines())


def test_killed_during_train_resumes_at_train_without_mining_again(pipeline, capsys):
    run, miner, out, pm = pipeline
    with registered_plugin(CrashAtStep(2), name="crash", pm=pm), pytest.raises(RuntimeError, match="killed at step 2"):
        run()
    assert miner.calls == 1 and (out / "mine.done.json").is_file() and not (out / "train.done.json").exists()
    assert not (out / "model").exists()

    capsys.readouterr()
    result = run()
    assert miner.calls == 1, "mined again after the crash"
    assert "skipping mine: up to date" in capsys.readouterr().err
    assert not result["steps"]["train"]["skipped"] and result["steps"]["train"]["steps"] == 3
    assert (out / "model" / "model.safetensors").is_file() and (out / "train.done.json").is_file()


def test_a_step_out_of_order_or_missing_its_section_is_a_clear_error(pipeline):
    run, _miner, _out, _pm = pipeline
    with pytest.raises(BgekitError, match="in the order augment, mine, score, train, evaluate"):
        run("steps=[train, mine]")
    with pytest.raises(BgekitError, match="needs score.reranker"):
        run("steps=[mine, score]")
    with pytest.raises(BgekitError, match="needs evaluate.corpus"):
        run("steps=[evaluate]")
