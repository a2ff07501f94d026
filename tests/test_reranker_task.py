"""The reranker task end to end: ``bgekit run`` (a real subprocess), distillation, resume, wrong losses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.recipe import RecipeError, load_recipe
from bgekit.testing import tiny_cross_encoder
from bgekit.train import reranker_task

# Reranker pairs (the `pairs` format): adjacent lines of a query form one group.
GROUPS = [
    ("Which river is the longest in China?", "The Yangtze is the longest river in China.",
     ["Beijing is the capital of China.", "Machine learning studies data.", "红楼梦的作者是曹雪芹。"]),
    ("What is the capital of China?", "Beijing is the capital of China.",
     ["The Yangtze is the longest river in China.", "红楼梦的作者是曹雪芹。", "Machine learning studies data."]),
    ("红楼梦的作者是谁？", "红楼梦是中国古典四大名著之一，作者是曹雪芹。",
     ["长江是中国最长的河流。", "北京是中华人民共和国的首都。", "Machine learning studies data."]),
    ("长江有多长？", "长江是中国最长的河流，全长约六千三百公里。",
     ["北京是中华人民共和国的首都。", "红楼梦的作者是曹雪芹。", "Beijing is the capital of China."]),
]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory) -> Path:
    return tiny_cross_encoder(tmp_path_factory.mktemp("reranker"), seed=3)


def write_pairs(path: Path, teacher: bool = False) -> Path:
    lines = []
    for query, pos, negs in GROUPS:
        for i, passage in enumerate([pos, *negs]):
            row = {"query": query, "passage": passage, "label": int(i == 0)}
            if teacher:
                row["score"] = 4.0 - 2.0 * i  # a teacher that is sure of the positive and orders the rest
            lines.append(json.dumps(row, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_recipe(tmp_path: Path, reranker: Path, data: Path, **sections) -> Path:
    recipe = {
        "task": "reranker",
        "output_dir": str(tmp_path / "run"),
        "seed": 1,
        "model": {"name_or_path": str(reranker), "query_max_length": 16, "passage_max_length": 32},
        "data": {"train": str(data), "format": "pairs", "group_size": 4},
        "loss": {"name": "listwise-ce"},
        "train": {"max_steps": 20, "batch_size": 4, "learning_rate": 5e-3, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant", "logging_steps": 1, "dtype": "fp32"},
        "callbacks": [{"name": "jsonl-logger"}],
        **sections,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(recipe, allow_unicode=True))
    return path


def positives_ranked_first(model_dir: Path) -> float:
    from bgekit.models.cross_encoder import CrossEncoder

    model = CrossEncoder.from_pretrained(model_dir, max_length=48, query_max_length=16)
    hits = [np.argmax(model.score([(q, p) for p in [pos, *negs]])) == 0 for q, pos, negs in GROUPS]
    return float(np.mean(hits))


def test_bgekit_run_trains_a_reranker_that_ranks_positives_first(tmp_path, reranker, run_bgekit):
    recipe = write_recipe(tmp_path, reranker, write_pairs(tmp_path / "pairs.jsonl"))
    done = run_bgekit("run", str(recipe), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["task"] == "reranker" and summary["steps"] == 20 and summary["examples"] == 4
    model_dir = Path(summary["model_dir"])
    for name in ("model.safetensors", "config.json", "tokenizer.json", "resolved_recipe.yaml"):
        assert (model_dir / name).is_file(), name
    assert f"bgekit rerank --model {model_dir}" in done.stderr

    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["listwise_ce"] for x in logged if x.get("event") == "train"]
    assert len(losses) == 20 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    # the trained model puts most positives first, more than the random base model does
    before, after = positives_ranked_first(reranker), positives_ranked_first(model_dir)
    assert after >= 0.75 and after > before, (before, after)


def write_graded_pairs(path: Path) -> Path:
    """Per query: the answer graded 2, a partly relevant passage graded 1 (its first 'negative'), the rest 0."""
    lines = [json.dumps({"query": query, "passage": passage, "label": {0: 2, 1: 1}.get(i, 0)}, ensure_ascii=False)
             for query, pos, negs in GROUPS for i, passage in enumerate([pos, *negs])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_graded_pairs_reach_the_loss_as_graded_labels(tmp_path, reranker, bgekit_pm, monkeypatch):
    from bgekit.data.readers import read_examples
    from bgekit.models.cross_encoder import CrossEncoder
    from bgekit.train.sampling import GroupSampler

    data = write_graded_pairs(tmp_path / "graded.jsonl")
    examples = list(read_examples(data, fmt="pairs"))
    assert [e.pos_labels for e in examples] == [[2.0, 1.0]] * 4 and all(len(e.neg) == 2 for e in examples)
    collate = reranker_task.RerankCollator(CrossEncoder.from_pretrained(reranker, max_length=48, query_max_length=16))
    sampler = GroupSampler(examples, group_size=3, seed=0, graded=True)
    batch = collate([sampler.sample(i, epoch) for epoch in range(3) for i in range(4)])
    assert set(batch.labels[:, 0].tolist()) == {1.0, 2.0}  # either positive may lead its group ...
    assert all(row[1:].max() < row[0] for row in batch.labels)  # ... above every other passage's label
    assert (batch.labels[:, 1:] == 1.0).any()  # and the grade-1 passage also serves below the grade-2 one

    # the task itself samples graded groups: record the labels its batches carry to the loss
    seen = []
    collate_batch = reranker_task.RerankCollator.__call__

    def recording(self, groups):
        batch = collate_batch(self, groups)
        seen.append(batch.labels.clone())
        return batch

    monkeypatch.setattr(reranker_task.RerankCollator, "__call__", recording)
    # collating on the training thread (num_workers 0), where the recording collator's list is
    recipe = load_recipe(write_recipe(tmp_path, reranker, data, loss={"name": "lambdarank"}))
    recipe.values["data"]["num_workers"] = 0
    reranker_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)
    labels = torch.cat(seen)
    assert set(labels.unique().tolist()) == {0.0, 1.0, 2.0}
    assert all(row[1:].max() < row[0] for row in labels)


def test_distillation_uses_teacher_scores_from_the_data(tmp_path, reranker, bgekit_pm):
    data = write_pairs(tmp_path / "scored.jsonl", teacher=True)
    losses = [{"name": "rerank-kd", "temperature": 2.0}, {"name": "listwise-ce", "weight": 0.5}]
    recipe = load_recipe(write_recipe(tmp_path, reranker, data, loss=losses),
                         ["train.max_steps=2", "train.save_steps=1"])
    summary = reranker_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [x for x in logged if x.get("event") == "train"]
    assert {"rerank-kd/rerank_kd", "listwise-ce/listwise_ce"} <= set(train[0])
    assert train[0]["rerank-kd/rerank_kd"] > 0

    # resume from the last checkpoint and go on to step 3
    resumed = load_recipe(write_recipe(tmp_path, reranker, data, loss=losses),
                          ["train.max_steps=3", "train.resume_from=latest"])
    summary = reranker_task.run(resumed, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)
    assert summary["steps"] == 3
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]


def test_distillation_without_teacher_scores_says_what_to_add(tmp_path, reranker, bgekit_pm):
    recipe = load_recipe(write_recipe(tmp_path, reranker, write_pairs(tmp_path / "pairs.jsonl"),
                                      loss={"name": "rerank-kd"}), ["train.max_steps=1"])
    with pytest.raises(BgekitError, match="needs teacher scores"):
        reranker_task.run(recipe, select_backend(bgekit_pm.registry, "cpu"), show_progress=False)


def test_an_embedder_loss_is_refused_for_a_reranker(tmp_path, reranker, bgekit_pm):
    path = write_recipe(tmp_path, reranker, tmp_path / "pairs.jsonl", loss={"name": "infonce"})
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert "loss 'infonce' trains an embedder, but this recipe's task is reranker" in str(info.value)
    assert "listwise-ce" in str(info.value)
