"""The ``wandb`` callback: offline runs on disk with every metric, and no secret anywhere in them."""

from __future__ import annotations

from dataclasses import dataclass, field
import time
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from bgekit_callbacks.wandb import MASK, WandbLogger, mask_secrets  # noqa: E402

SECRET = "sk-test-0123456789abcdef"


@dataclass
class FakeRun:
    output_dir: Path
    recipe: dict = field(default_factory=dict)
    is_main_process: bool = True
    task: str = "embedder"


def test_mask_secrets_by_key_and_by_environment_value(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", SECRET)
    values = {"model": {"name_or_path": "BAAI/bge-m3"}, "train": {"learning_rate": 2e-5},
              "augment": {"api_key": "literal-in-recipe", "endpoint": f"https://x/?key={SECRET}"},
              "headers": [SECRET, "plain"]}
    masked = mask_secrets(values)
    assert masked["augment"]["api_key"] == MASK and masked["augment"]["endpoint"] == MASK
    assert masked["headers"] == [MASK, "plain"]
    assert masked["model"] == values["model"] and masked["train"] == values["train"]
    assert values["augment"]["api_key"] == "literal-in-recipe"  # a copy: the run's recipe is untouched


def test_offline_run_logs_metrics_and_never_the_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")  # leave pytest's output capture alone
    monkeypatch.setenv("OPENAI_API_KEY", SECRET + "-openai")
    run = FakeRun(tmp_path / "out", recipe={"model": {"name_or_path": "tiny"},
                                            "augment": {"api_key": SECRET + "-openai"}})
    run.output_dir.mkdir()
    logger = WandbLogger(project="bgekit-test", tags=["ci"])
    logger.bgekit_on_run_start(run=run)
    for step in (1, 2, 3):
        logger.bgekit_on_step_end(run=run, step=step, metrics={"loss": 1.0 / step, "lr": 1e-5, "step": step})
    logger.bgekit_on_evaluate_end(run=run, step=3, metrics={"ndcg@10": 0.5})
    logger.bgekit_on_run_end(run=run, status="ok")

    runs = list((run.output_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list(run.output_dir.rglob("*"))[:20]
    log_file = next(runs[0].glob("*.wandb"))
    deadline = time.monotonic() + 20  # wandb's service process may still be flushing the run file
    while not (b"train/loss" in log_file.read_bytes() and b"eval/ndcg@10" in log_file.read_bytes()):
        assert time.monotonic() < deadline, log_file.read_bytes()[:200]
        time.sleep(0.2)
    assert log_file.read_bytes().count(b"train/loss") >= 3  # every step, not only the last
    for path in run.output_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path


def test_other_ranks_log_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = FakeRun(tmp_path, is_main_process=False)
    logger = WandbLogger()
    logger.bgekit_on_run_start(run=run)
    logger.bgekit_on_step_end(run=run, step=1, metrics={"loss": 1.0})
    logger.bgekit_on_run_end(run=run, status="ok")
    assert not (tmp_path / "wandb").exists()


def test_the_callback_is_registered_for_recipes():
    from bgekit.plugins import get_registry

    spec = get_registry().get("callback", "wandb")
    assert "api_key" not in spec.params_schema["properties"]  # keys come from the environment only
