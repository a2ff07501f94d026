"""The shared training-task skeleton: a task supplies only its own pieces, the Trainer assumes no task's loss."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from bgekit.errors import BgekitError
from bgekit.train import task_skeleton
from bgekit.train.embedder_task import build_model, embedder_collator
from bgekit.train.sampling import GroupSampler
from bgekit.train.task_skeleton import TaskSetup, TrainingTask, run_training, save_model
from bgekit.train.trainer import Trainer

from test_trainer import cpu, model_dir, recipe, toy_rows, write_data  # noqa: F401 (fixture)

RUNNERS = ["embedder_task.py", "reranker_task.py", "joint_task.py", "task_skeleton.py"]


class PullPositivesUp(TrainingTask):
    """A task of its own: the embedder's model, but a loss no built-in task has (the positives' mean score, negated)."""

    name = "pull-up"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def check(self, run):
        self.calls.append("check")

    def prepare(self, run):
        self.calls.append("prepare")

    def build(self, run):
        self.calls.append("build")
        model = build_model(run.values["model"], run.registry)

        def batch_loss(wrapped, batch, step):
            scores = wrapped(batch.queries, batch.passages)["dense"]
            positives = scores[torch.arange(batch.num_queries), torch.arange(batch.num_queries) * batch.group_size]
            loss = -positives.mean()
            return loss, {"positive_score": float(positives.detach().mean())}

        return TaskSetup(model=model, sampler=GroupSampler(run.examples, 4, seed=run.config.seed),
                         collator=embedder_collator(model), batch_loss=batch_loss, restore_model=lambda d: None)

    def before_training(self, run, setup):
        self.calls.append("before_training")

    def model_dirs(self, run):
        return {"model_dir": run.output_dir / "model"}

    def save(self, run, setup, result):
        self.calls.append("save")
        save_model(setup.model, run.recipe, self.model_dirs(run)["model_dir"])

    def data_summary(self, run):
        return {"data_note": len(run.examples)}

    def outcome_summary(self, run):
        return {"outcome_note": "done"}

    def report(self, run, dirs):
        self.calls.append("report")


def test_a_new_task_only_says_what_is_its_own(tmp_path, model_dir):
    task = PullPositivesUp()
    summary = run_training(task, recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(8)), max_steps=3), cpu(),
                           show_progress=False)
    assert task.calls == ["check", "prepare", "build", "before_training", "save", "report"]
    assert list(summary)[:7] == ["task", "output_dir", "model_dir", "metrics_log", "examples", "skipped_rows",
                                 "data_note"]
    assert list(summary)[-3:] == ["device", "dtype", "outcome_note"]
    assert summary["task"] == "pull-up" and summary["steps"] == 3 and summary["examples"] == 8
    assert (Path(summary["model_dir"]) / "model.safetensors").is_file()
    lines = [json.loads(x) for x in Path(summary["metrics_log"]).read_text().splitlines()]
    train = [x for x in lines if x.get("event") == "train"]
    assert [x["step"] for x in train] == [1, 2, 3]
    assert all(x["loss"] == pytest.approx(-x["positive_score"], rel=1e-5) for x in train)
    assert train[-1]["positive_score"] > train[0]["positive_score"]  # the task's own loss was trained


def test_the_tasks_check_runs_before_the_data_is_read(tmp_path, model_dir):
    class Refusing(PullPositivesUp):
        def check(self, run):
            raise BgekitError("refused by the task")

    with pytest.raises(BgekitError, match="refused by the task"):
        run_training(Refusing(), recipe(tmp_path, model_dir, tmp_path / "missing.jsonl"), cpu())


def test_the_trainer_takes_its_loss_from_the_task():
    parameters = inspect.signature(Trainer).parameters
    assert parameters["batch_loss"].default is inspect.Parameter.empty
    assert "losses" not in parameters and not hasattr(Trainer, "embedder_batch_loss")


def test_a_task_setups_batch_loss_is_its_chunked_tasks_plain_loss_unless_given():
    from bgekit.train.gradcache import RerankerChunks

    chunks = RerankerChunks([])
    common = {"model": torch.nn.Linear(1, 1), "sampler": None, "collator": list, "restore_model": lambda d: None}
    assert TaskSetup(**common, chunked=chunks).batch_loss == chunks.plain_loss

    def own(wrapped, batch, step):
        raise AssertionError("not called")

    assert TaskSetup(**common, chunked=chunks, batch_loss=own).batch_loss is own
    with pytest.raises(TypeError, match="needs batch_loss, or chunked"):
        TaskSetup(**common)


def test_the_trainer_asks_the_device_backend_for_optimizer_and_loader_options(tmp_path, model_dir, monkeypatch):
    backend = cpu()
    asked = []

    class Options(type(backend)):
        @property
        def pin_memory(self):
            asked.append("pin_memory")
            return False

        def optimizer_options(self):
            asked.append("optimizer_options")
            return {"foreach": False}

    made = []

    class RecordingAdamW(torch.optim.AdamW):
        def __init__(self, params, **kwargs):
            made.append(kwargs)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    run_training(PullPositivesUp(), recipe(tmp_path, model_dir, write_data(tmp_path, toy_rows(8)), max_steps=1),
                 Options(), show_progress=False)
    assert "optimizer_options" in asked and "pin_memory" in asked
    assert made and made[0]["foreach"] is False


def test_checkpoints_carry_the_device_backends_random_state(tmp_path, model_dir):
    """The trainer hands its backend to the checkpoint functions: saved at each checkpoint, given back on resume."""
    restored = []

    class WithState(type(cpu())):
        def rng_state(self):
            return {"0": torch.tensor([7, 8, 9], dtype=torch.uint8)}

        def set_rng_state(self, state):
            restored.append(state)

    data = write_data(tmp_path, toy_rows(8))
    run_training(PullPositivesUp(), recipe(tmp_path, model_dir, data, max_steps=2, save_steps=1), WithState(),
                 show_progress=False)
    assert restored == []
    run_training(PullPositivesUp(), recipe(tmp_path, model_dir, data, max_steps=3, resume_from="latest"),
                 WithState(), show_progress=False)
    assert len(restored) == 1 and torch.equal(restored[0]["0"], torch.tensor([7, 8, 9], dtype=torch.uint8))


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="the duplicates tool is not installed")
def test_the_task_runners_share_no_copied_blocks():
    train = Path(task_skeleton.__file__).parent
    out = subprocess.run(["duplicates", "--repo", str(train), "--most", "200"], capture_output=True, text=True,
                         check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("D")]
    between = [row for row in rows if sum(name in row for name in RUNNERS) >= 2]
    assert not between, out
