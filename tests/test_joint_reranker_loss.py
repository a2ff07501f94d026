"""``joint.reranker_loss``: a joint recipe chooses the reranker's loss among the registered reranker losses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.recipe import load_recipe
from bgekit.tasks import run_task
from bgekit.testing import tiny_cross_encoder
from bgekit.train.joint_chunks import JointChunks
from bgekit.train.joint_task import JointSettings, build_reranker_loss, joint_loss, rerank_part_name

from test_joint import LOGITS, FixedScores, fixed_batch, write_joint_recipe


def with_reranker_loss(path: Path, entry: dict | None) -> Path:
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    if entry is not None:
        values["joint"]["reranker_loss"] = entry
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(values, allow_unicode=True),
                    encoding="utf-8")
    return path


def train_lines(output_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if x.get("event") == "train"]


def test_the_chosen_loss_is_what_the_reranker_term_computes(bgekit_pm):
    settings = JointSettings(rerank_weight=0.5)
    term = build_reranker_loss({"name": "ranknet", "sigma": 2.0}, bgekit_pm.registry)
    loss = JointChunks(joint_loss(settings, term.fn, [], rerank_part=rerank_part_name(term.name))).plain_loss
    total, parts = loss(FixedScores(), fixed_batch(), 0)
    labels = fixed_batch().rerank.labels
    ranknet = float(bgekit_pm.registry.get("loss", "ranknet").create(sigma=2.0)(LOGITS, labels).loss)
    listwise = float(bgekit_pm.registry.get("loss", "listwise-ce").create()(LOGITS, labels).loss)
    assert set(parts) == {"rerank_ranknet", "distill_kl"}
    assert parts["rerank_ranknet"] == pytest.approx(ranknet, rel=1e-6)
    assert float(total.detach()) == pytest.approx(0.5 * ranknet + parts["distill_kl"], rel=1e-6)
    assert abs(ranknet - listwise) > 1e-3


def test_a_distilling_reranker_loss_gets_the_datas_teacher_scores(bgekit_pm):
    """``joint.reranker_loss: rerank-kd`` learns from pos_scores/neg_scores: the joint loss hands them over."""
    term = build_reranker_loss({"name": "rerank-kd"}, bgekit_pm.registry)
    batch = fixed_batch()
    batch.rerank.teacher_scores = torch.tensor([[3.0, 0.0, 1.0, -1.0], [0.5, 2.0, 0.0, 0.0], [1.0, 1.0, -2.0, 0.0]])
    loss = JointChunks(joint_loss(JointSettings(distill_weight=0.0), term.fn, [],
                                  rerank_part=rerank_part_name(term.name))).plain_loss
    total, parts = loss(FixedScores(), batch, 0)
    expected = bgekit_pm.registry.get("loss", "rerank-kd").create()(
        LOGITS, batch.rerank.labels, teacher_scores=batch.rerank.teacher_scores).loss
    assert float(total.detach()) == pytest.approx(float(expected), rel=1e-6)


def test_a_joint_run_trains_with_another_reranker_loss(tmp_path, tiny_model_dir, bgekit_pm):
    """Same data, models and seed: the distillation term of step 1 is the same, the reranker's loss is not."""
    reranker_dir = tiny_cross_encoder(tmp_path / "reranker", seed=3)
    backend = select_backend(bgekit_pm.registry, "cpu")
    runs = {}
    for name, entry in (("default", None), ("ranknet", {"name": "ranknet"}), ("bce", {"name": "bce"})):
        folder = tmp_path / name
        folder.mkdir()
        path = with_reranker_loss(write_joint_recipe(folder, tiny_model_dir, reranker_dir, refresh_every=0,
                                                     negative_max_preference=1.0), entry)
        summary = run_task(load_recipe(path), backend)
        assert summary["steps"] == 5 and Path(summary["reranker_dir"]).is_dir()
        runs[name] = train_lines(folder / "run")
    default, ranknet, bce = runs["default"], runs["ranknet"], runs["bce"]
    assert "rerank_ce" in default[0] and "rerank_ranknet" in ranknet[0] and "rerank_bce" in bce[0]
    assert ranknet[0]["distill_kl"] == pytest.approx(default[0]["distill_kl"], rel=1e-5)
    assert bce[0]["distill_kl"] == pytest.approx(default[0]["distill_kl"], rel=1e-5)
    assert abs(ranknet[0]["rerank_ranknet"] - default[0]["rerank_ce"]) > 1e-3
    assert abs(bce[0]["rerank_bce"] - default[0]["rerank_ce"]) > 1e-3
    assert [x["loss"] for x in ranknet] != pytest.approx([x["loss"] for x in default], rel=1e-4)
    assert all(torch.isfinite(torch.tensor(x["loss"])) for x in ranknet + bce)


def test_an_unknown_reranker_loss_is_one_line_at_validation(tmp_path, tiny_model_dir, bgekit_pm):
    path = with_reranker_loss(write_joint_recipe(tmp_path, tiny_model_dir, tmp_path / "reranker"),
                              {"name": "ranknett"})
    with pytest.raises(BgekitError) as caught:
        load_recipe(path)
    header, *problems = str(caught.value).splitlines()
    assert header.endswith("1 problem") and len(problems) == 1
    assert "$.joint.reranker_loss.name" in problems[0]
    assert "unknown loss 'ranknett' (did you mean 'ranknet'?)" in problems[0]


@pytest.mark.parametrize("slot,entry,message", [
    (("joint", "reranker_loss"), {"name": "infonce"},
     "$.joint.reranker_loss.name  loss 'infonce' trains an embedder, but in a joint recipe 'joint.reranker_loss' "
     "is the reranker's loss; reranker losses: "),
    (("loss",), {"name": "listwise-ce"},
     "$.loss.name  loss 'listwise-ce' trains a reranker, but in a joint recipe 'loss' is the retriever's own "
     "loss; embedder losses: "),
])
def test_a_loss_of_the_wrong_kind_in_a_joint_recipe_is_refused_at_validation(
        tmp_path, tiny_model_dir, bgekit_pm, slot, entry, message):
    path = write_joint_recipe(tmp_path, tiny_model_dir, tmp_path / "reranker")
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    values[slot[0]] = {**values.get(slot[0], {}), slot[1]: entry} if len(slot) == 2 else entry
    path.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
    with pytest.raises(BgekitError) as caught:
        load_recipe(path)
    header, *problems = str(caught.value).splitlines()
    assert header.endswith("1 problem") and len(problems) == 1
    assert problems[0].strip().startswith(f"{path}:") and message in problems[0]
    kind = "listwise-ce" if slot[0] == "joint" else "infonce"
    assert kind in problems[0]


@pytest.mark.parametrize("entry,in_code,message", [
    # validation refuses an embedder loss here (above); one set in code after it meets the runner's own check
    ({"name": "infonce"}, True, "joint.reranker_loss: loss 'infonce' trains an embedder, but in a joint recipe "
                                "'joint.reranker_loss' is the reranker's loss; reranker losses: "),
    ({"name": "bce", "weight": 2.0}, False, "joint.reranker_loss.weight: the reranker loss is weighted by "
                                            "joint.rerank_weight; remove weight"),
])
def test_a_reranker_loss_the_joint_task_cannot_use_is_refused_before_the_data_is_read(
        tmp_path, tiny_model_dir, bgekit_pm, entry, in_code, message):
    path = write_joint_recipe(tmp_path, tiny_model_dir, tmp_path / "reranker")
    recipe = load_recipe(path if in_code else with_reranker_loss(path, entry))
    if in_code:
        recipe.values["joint"]["reranker_loss"] = entry
    (tmp_path / "train.jsonl").unlink()  # reading the data would fail with another message
    with pytest.raises(BgekitError) as caught:
        run_task(recipe, select_backend(bgekit_pm.registry, "cpu"))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
