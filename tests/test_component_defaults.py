"""The core names no plugin component: defaults come from the task and callback specs.

A recipe that leaves out ``loss`` (or ``miner``, or ``joint.reranker_loss``)
gets what its task's :attr:`~bgekit.registry.TaskSpec.component_defaults`
declare, and callbacks with :attr:`~bgekit.registry.CallbackSpec.always_on`
run without being listed. The tests change the specs and check the run
follows them, so a literal creeping back into the core fails here.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch.nn.functional as F
import yaml

import bgekit
from bgekit.api import CallbackSpec, LossOutput, LossSpec, TaskSpec
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.mine import mine_task
from bgekit.recipe import load_recipe
from bgekit.registry import Registry, task_default
from bgekit.tasks import run_task
from bgekit.testing import fresh_plugin_manager, registered_specs
from bgekit.train.callbacks import build_callbacks
from bgekit.train.task_skeleton import TrainingRun

ROWS = [
    {"query": "Which river is the longest in China?", "pos": ["The Yangtze is the longest river in China."],
     "neg": ["Beijing is the capital of China.", "Machine learning studies data."]},
    {"query": "红楼梦的作者是谁？", "pos": ["红楼梦是中国古典四大名著之一，作者是曹雪芹。"],
     "neg": ["北京是中华人民共和国的首都。"]},
] * 4
CORE = Path(bgekit.__file__).parent


class ProbeLoss:
    """An embedder loss that counts its calls (cross-entropy over the dense head's scores)."""

    def __init__(self, calls: list[int]) -> None:
        self.calls = calls

    def __call__(self, scores, targets, group_size, teacher_scores=None, step=0):
        self.calls.append(step)
        loss = F.cross_entropy(scores["dense"] / 0.05, targets)
        return LossOutput(loss=loss, parts={"probe": float(loss.detach())})


def probe_loss_spec(calls: list[int]) -> LossSpec:
    return LossSpec(name="probe-loss", summary="counts its calls", factory=lambda: ProbeLoss(calls))


def write_recipe(tmp_path: Path, model_dir: Path, task: str, **extra) -> Path:
    """A tiny training recipe for ``task`` with no ``loss`` and no ``callbacks``."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    values = {"task": task, "output_dir": str(tmp_path / "run"), "seed": 1,
              "model": {"name_or_path": str(model_dir), "query_max_length": 16, "passage_max_length": 16},
              "data": {"train": str(data), "group_size": 2},
              "train": {"dtype": "fp32", "max_steps": 2, "batch_size": 4, "logging_steps": 1}, **extra}
    path = tmp_path / "recipe.yaml"
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(values, allow_unicode=True),
                    encoding="utf-8")
    return path


def train(path: Path, pm) -> dict:
    return run_task(load_recipe(path, registry=pm.registry), select_backend(pm.registry, "cpu"))


# -- the built-in tasks declare what the core used to name ------------------------------------------------------
def test_the_builtin_tasks_declare_the_defaults(bgekit_pm):
    registry = bgekit_pm.registry
    assert task_default(registry, "embedder", "loss") == {"name": "infonce"}
    assert task_default(registry, "reranker", "loss") == {"name": "listwise-ce"}
    assert task_default(registry, "joint", "loss") == {"name": "infonce"}
    assert task_default(registry, "joint", "joint.reranker_loss") == {"name": "listwise-ce"}
    assert task_default(registry, "joint", "miner") == {"name": "dense"}
    assert task_default(registry, "mine", "miner") == {"name": "dense"}
    # a copy: a runner that edits it does not change the next run's default
    task_default(registry, "embedder", "loss")["temperature"] = 1.0
    assert task_default(registry, "embedder", "loss") == {"name": "infonce"}
    assert [s.name for s in registry.all("callback") if s.always_on] == ["jsonl-logger"]


def test_a_task_without_a_default_asks_the_recipe_for_one():
    registry = Registry()
    registry.add(TaskSpec(name="bare", runner="x:run"), "test")
    with pytest.raises(BgekitError) as caught:
        task_default(registry, "bare", "loss")
    assert str(caught.value) == ("loss: task 'bare' has no default for it; name one in the recipe, "
                                 "e.g. loss: {name: ...}")


def test_a_run_reads_the_recipe_first_then_its_task_default(bgekit_pm):
    def run_of(values: dict) -> TrainingRun:
        return TrainingRun(recipe=None, values=values, backend=None, plugin_manager=bgekit_pm,
                           registry=bgekit_pm.registry, config=None, dtype="fp32", output_dir=Path("."),
                           data={}, task="joint")

    assert run_of({"joint": {}}).component("joint.reranker_loss") == {"name": "listwise-ce"}
    assert run_of({}).component("miner") == {"name": "dense"}
    chosen = {"name": "ranknet", "sigma": 2.0}
    assert run_of({"joint": {"reranker_loss": chosen}}).component("joint.reranker_loss") == chosen


# -- a task's default is the one trained ---------------------------------------------------------------------
def test_a_plugin_task_trains_the_loss_it_declares(tmp_path, tiny_model_dir, bgekit_pm):
    calls: list[int] = []
    task = TaskSpec(name="my-embedder", summary="the embedder with its own default loss",
                    runner="bgekit.train.embedder_task:run", trains=True,
                    component_defaults={"loss": {"name": "probe-loss"}})
    with registered_specs(task, probe_loss_spec(calls), name="my-task", pm=bgekit_pm):
        path = write_recipe(tmp_path, tiny_model_dir, "my-embedder")
        assert "loss" not in load_recipe(path, registry=bgekit_pm.registry).values
        summary = train(path, bgekit_pm)
    assert summary["steps"] == 2 and calls == [0, 1]


def test_replacing_the_builtin_embedder_task_replaces_its_default_loss(tmp_path, tiny_model_dir, monkeypatch):
    """With the built-in tasks disabled and ``embedder`` declared again with another default loss, a
    ``task: embedder`` recipe without ``loss`` trains that loss: nothing else names InfoNCE."""
    monkeypatch.setenv("BGEKIT_DISABLE_PLUGINS", "tasks")
    calls: list[int] = []
    embedder = TaskSpec(name="embedder", runner="bgekit.train.embedder_task:run", trains=True,
                        component_defaults={"loss": {"name": "probe-loss"}})
    with fresh_plugin_manager() as pm, registered_specs(embedder, probe_loss_spec(calls), name="tasks-2", pm=pm):
        assert pm.registry.provider("task", "embedder") == "tasks-2"
        train(write_recipe(tmp_path, tiny_model_dir, "embedder"), pm)
    assert calls == [0, 1]


def test_the_mine_step_and_task_take_the_mine_task_default(monkeypatch):
    """The pipeline's mine step runs inside a training recipe: it takes the ``mine`` task's miner."""
    from bgekit import pipeline

    monkeypatch.setenv("BGEKIT_DISABLE_PLUGINS", "tasks")
    mine = TaskSpec(name="mine", runner="bgekit.mine.mine_task:run", component_defaults={"miner": {"name": "bm25"}})
    embedder = TaskSpec(name="embedder", runner="bgekit.train.embedder_task:run", trains=True)
    recipe = type("R", (), {"values": {"task": "embedder", "output_dir": "out", "model": {"name_or_path": "m"},
                                       "data": {"train": "t.jsonl"}}, "provenance": {}})()
    with fresh_plugin_manager() as pm, registered_specs(mine, embedder, name="tasks-2", pm=pm):
        assert mine_task.recipe_miner(recipe.values, pm.registry) == {"name": "bm25"}
        assert pipeline._mine_step(recipe, None, "t.jsonl", Path("out")).settings["miner"] == {"name": "bm25"}
        given = {"name": "random", "refresh_every": 5}
        assert mine_task.recipe_miner({"miner": given}, pm.registry) == given


# -- always-on callbacks -------------------------------------------------------------------------------------
class Probe:
    def __init__(self, events: list) -> None:
        self.events = events

    @bgekit.hookimpl
    def bgekit_on_step_end(self, run, step, metrics):
        self.events.append(("step", step))

    @bgekit.hookimpl
    def bgekit_on_run_end(self, run, status):
        self.events.append(("end", status))


def test_an_always_on_callback_runs_without_being_listed(tmp_path, tiny_model_dir, bgekit_pm):
    events: list = []
    spec = CallbackSpec(name="probe", factory=lambda: Probe(events), always_on=True)
    with registered_specs(spec, name="probe-plugin", pm=bgekit_pm):
        path = write_recipe(tmp_path, tiny_model_dir, "embedder")
        assert load_recipe(path, registry=bgekit_pm.registry).values["callbacks"] == []
        train(path, bgekit_pm)
    assert events == [("step", 1), ("step", 2), ("end", "ok")]
    # the JSONL log is always on too: a recipe without callbacks still leaves metrics.jsonl
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x.get("event") == "train"] == [1, 2]


def test_always_on_comes_from_the_spec_and_a_listed_one_is_built_once(bgekit_pm):
    built = build_callbacks([{"name": "jsonl-logger", "filename": "log.jsonl"}], bgekit_pm.registry)
    assert len(built) == 1 and built[0][1].filename == "log.jsonl"
    registry = Registry()
    registry.add(CallbackSpec(name="jsonl-logger", factory=dict), "quiet")
    registry.add(CallbackSpec(name="z-log", factory=dict, always_on=True), "loud")
    registry.add(CallbackSpec(name="a-log", factory=dict, always_on=True), "loud")
    assert [name for name, _ in build_callbacks([], registry)] == ["a-log", "z-log"]
    assert [name for name, _ in build_callbacks([{"name": "z-log"}], registry)] == ["z-log", "a-log"]


# -- no component names in the core ---------------------------------------------------------------------------
#: built-in components the core used to name; schema data (``recipe_schema.py``, ``*_section.py``) and the
#: plugin templates (code written for authors) may mention them, and docstrings and comments are not code
NAMES = {"infonce", "listwise-ce", "jsonl-logger", "m3-unified"}
SCHEMA_DATA = ("plugin_templates.py", "recipe_schema.py")


def core_files() -> list[Path]:
    return [p for p in sorted(CORE.rglob("*.py")) if p.name not in SCHEMA_DATA and not p.name.endswith("_section.py")]


def component_names(source: str) -> list[str]:
    """``line: name`` for each string literal in ``source`` that is a forbidden name, and each ``{"name": "dense"}``
    (docstrings are whole-text literals, so they never equal a name)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and node.value in NAMES:
            found.append(f"{node.lineno}: {node.value}")
        if isinstance(node, ast.Dict) and [getattr(k, "value", None) for k in node.keys] == ["name"] \
                and getattr(node.values[0], "value", None) == "dense":
            found.append(f"{node.lineno}: {{name: dense}}")
    return found


def test_the_core_names_no_builtin_component():
    files = core_files()
    assert len(files) > 50 and CORE / "train" / "embedder_task.py" in files
    found = [f"{p.relative_to(CORE.parent)}:{hit}" for p in files for hit in component_names(p.read_text("utf-8"))]
    assert found == []


def test_the_name_scan_finds_both_shapes_and_skips_docstrings():
    source = '"""Trains infonce."""\nLOSS = {"name": "listwise-ce"}\nHEADS = [{"name": "dense"}]\n' \
             'OPEN = {"name": "dense", "pooling": "cls"}  # infonce\n'
    assert component_names(source) == ["2: listwise-ce", "3: {name: dense}"]


def test_a_reranker_loss_as_joints_retriever_loss_lists_the_installed_embedder_losses(bgekit_pm):
    from bgekit.recipe import check_loss_tasks

    with registered_specs(probe_loss_spec([]), name="probe-loss", pm=bgekit_pm):
        with pytest.raises(BgekitError) as caught:
            check_loss_tasks([{"name": "ranknet"}], "joint", "loss", bgekit_pm.registry)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("loss 'ranknet' trains a reranker")
    assert "infonce" in message and "probe-loss" in message and "listwise-ce" not in message
