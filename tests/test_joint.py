"""Joint retriever-reranker training (RocketQAv2): the loss against a hand computation, a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from bgekit.data.example import Example
from bgekit.devices import select_backend
from bgekit.errors import BgekitError
from bgekit.recipe import RESOLVED_RECIPE_NAME, load_recipe
from bgekit.tasks import run_task
from bgekit.testing import tiny_cross_encoder
from bgekit.train.candidates import denoise_negatives
from bgekit.train.joint_chunks import JointChunks
from bgekit.train.joint_task import (
    JointModel,
    JointSettings,
    joint_loss,
    per_model_clip_groups,
)
from bgekit.train.trainer import all_parameters, clip_gradients

Q, G = 3, 4
RETRIEVER = torch.tensor([[0.9, 0.2, 0.1, -0.3, 0.5, 0.0, 0.1, 0.2, 0.3, 0.0, 0.1, 0.2],
                          [0.1, 0.0, 0.2, 0.1, 0.7, 0.6, -0.2, 0.3, 0.0, 0.1, 0.2, 0.3],
                          [0.0, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.4, 0.2, 0.8, 0.1, -0.5]])  # (Q, Q*G) cosines
LOGITS = torch.tensor([[2.0, -1.0, 0.5, -2.0], [1.0, 1.5, -0.5, 0.0], [0.3, 2.2, -1.0, 0.4]])


class FixedScores(torch.nn.Module):
    """Stands in for the JointModel: fixed retriever scores and reranker logits, as leaf tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.scores = torch.nn.Parameter(RETRIEVER.clone())
        self.logits = torch.nn.Parameter(LOGITS.clone())

    def forward(self, batch):
        return {"dense": self.scores}, self.logits


def fixed_batch():
    labels = torch.zeros(Q, G)
    labels[:, 0] = 1.0
    return SimpleNamespace(group_size=G, num_queries=Q, rerank=SimpleNamespace(labels=labels, teacher_scores=None),
                           retrieval=SimpleNamespace(teacher_scores=None))


def by_hand(tau: float, tau_r: float, rerank_weight: float, distill_weight: float) -> tuple[float, float, float]:
    """CE and KL with NumPy, in float64, straight from the definitions."""
    ret = RETRIEVER.double().numpy()
    logits = LOGITS.double().numpy()
    kl, ce = 0.0, 0.0
    for i in range(Q):
        own = ret[i, i * G:(i + 1) * G] / tau
        student = np.exp(own - own.max()) / np.exp(own - own.max()).sum()
        scaled = logits[i] / tau_r
        teacher = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
        kl += float(np.sum(teacher * (np.log(teacher) - np.log(student))))
        ce += -float(logits[i, 0] - np.log(np.exp(logits[i]).sum()))
    kl, ce = kl / Q, ce / Q
    return rerank_weight * ce + distill_weight * kl, ce, kl


def rerank_ce(bgekit_pm):
    return bgekit_pm.registry.get("loss", "listwise-ce").create()


@pytest.mark.parametrize("tau,tau_r,rw,dw", [(0.02, 1.0, 1.0, 1.0), (0.1, 2.0, 0.5, 3.0)])
def test_joint_loss_equals_kl_plus_ce_by_hand(bgekit_pm, tau, tau_r, rw, dw):
    settings = JointSettings(temperature=tau, reranker_temperature=tau_r, rerank_weight=rw, distill_weight=dw)
    loss = JointChunks(joint_loss(settings, rerank_ce(bgekit_pm), [])).plain_loss
    total, parts = loss(FixedScores(), fixed_batch(), 0)
    expected, ce, kl = by_hand(tau, tau_r, rw, dw)
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    assert parts["rerank_ce"] == pytest.approx(ce, rel=1e-5)
    assert parts["distill_kl"] == pytest.approx(kl, rel=1e-5)


@pytest.mark.parametrize("to_reranker", [True, False])
def test_distillation_reaches_the_reranker_only_when_asked(bgekit_pm, to_reranker):
    """The reranker's gradient is the CE's alone when distill_to_reranker is false."""
    model = FixedScores()
    settings = JointSettings(distill_to_reranker=to_reranker)
    total, _ = JointChunks(joint_loss(settings, rerank_ce(bgekit_pm), [])).plain_loss(model, fixed_batch(), 0)
    total.backward()
    ce_only = LOGITS.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(ce_only, torch.zeros(Q, dtype=torch.long)).backward()
    assert model.scores.grad.abs().sum() > 0  # the retriever always learns from the KL
    same = torch.allclose(model.logits.grad, ce_only.grad, atol=1e-6)
    assert same != to_reranker


class NumberReranker:
    """Scores a passage by the number at its end (a logit), whatever the query."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def score(self, pairs, batch_size):
        return np.array([float(p.split()[-1]) + self.shift for _, p in pairs])


def test_denoising_drops_negatives_the_reranker_prefers_to_the_positive():
    examples = [Example(query="q", pos=["p 4"], neg=["n 9", "n 0", "n 5", "n 1"], neg_scores=[9.0, 0.0, 5.0, 1.0])]
    # preference sigmoid(neg - pos): n 9 -> 0.993, n 5 -> 0.731, n 1 -> 0.047, n 0 -> 0.018
    kept, stats = denoise_negatives(examples, NumberReranker(), max_preference=0.5, keep_at_least=2)
    assert kept[0].neg == ["n 0", "n 1"] and kept[0].neg_scores == [0.0, 1.0]
    assert stats.scored == 4 and stats.dropped == 2 and stats.kept_anyway == 0
    kept, stats = denoise_negatives(examples, NumberReranker(), max_preference=0.9, keep_at_least=2)
    assert kept[0].neg == ["n 0", "n 5", "n 1"] and stats.dropped == 1
    kept, stats = denoise_negatives(examples, NumberReranker(), max_preference=0.5, keep_at_least=3)
    assert kept[0].neg == ["n 0", "n 5", "n 1"] and stats.kept_anyway == 1  # the least preferred fill the group
    kept, stats = denoise_negatives(examples, None, max_preference=1.0, keep_at_least=2)  # no reranker needed
    assert kept == examples and stats.scored == 0 and stats.dropped == 0


def test_denoising_only_looks_at_logit_differences():
    """A listwise reranker's logits are shift-invariant, so the denoised lists must be too."""
    examples = [Example(query="q", pos=["p 3", "p 6"], neg=["n 2", "n 5", "n 7", "n 9"]),
                Example(query="r", pos=["p 0"], neg=["n 1", "n -3"])]
    plain, _ = denoise_negatives(examples, NumberReranker(), max_preference=0.5, keep_at_least=1)
    shifted, _ = denoise_negatives(examples, NumberReranker(shift=-40.0), max_preference=0.5, keep_at_least=1)
    assert [e.neg for e in plain] == [e.neg for e in shifted] == [["n 2", "n 5"], ["n -3"]]  # vs the best positive


# -- a tiny joint run through the task runner ---------------------------------------------------------------

ROWS = [
    {"query": "Which river is the longest in China?", "pos": ["The Yangtze is the longest river in China."],
     "neg": ["Beijing is the capital of China.", "Machine learning studies data.", "红楼梦的作者是曹雪芹。"]},
    {"query": "What is the capital of China?", "pos": ["Beijing is the capital of China."],
     "neg": ["The Yangtze is the longest river in China.", "红楼梦的作者是曹雪芹。", "Machine learning studies data."]},
    {"query": "红楼梦的作者是谁？", "pos": ["红楼梦是中国古典四大名著之一，作者是曹雪芹。"],
     "neg": ["长江是中国最长的河流。", "北京是中华人民共和国的首都。", "Machine learning studies data."]},
    {"query": "长江有多长？", "pos": ["长江是中国最长的河流，全长约六千三百公里。"],
     "neg": ["北京是中华人民共和国的首都。", "红楼梦的作者是曹雪芹。", "Beijing is the capital of China."]},
]


def write_joint_recipe(tmp_path: Path, retriever: Path, reranker: Path, **joint) -> Path:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    recipe = {
        "task": "joint", "output_dir": str(tmp_path / "run"), "seed": 1,
        "model": {"name_or_path": str(retriever), "query_max_length": 16, "passage_max_length": 32},
        "reranker": {"name_or_path": str(reranker), "max_length": 48, "query_max_length": 16,
                     "learning_rate": 1e-3},
        "data": {"train": str(data), "group_size": 3},
        "joint": {"negative_max_preference": 0.99, "refresh_every": 2, **joint},
        "miner": {"name": "dense", "range": [0, 5]},
        "loss": {"name": "infonce"},
        "train": {"max_steps": 5, "batch_size": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant", "logging_steps": 1, "dtype": "fp32"},
    }
    path = tmp_path / "joint.yaml"
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(recipe, allow_unicode=True))
    return path


def test_a_joint_run_trains_and_saves_both_models(tmp_path, tiny_model_dir, bgekit_pm):
    from bgekit.models import Embedder
    from bgekit.models.cross_encoder import CrossEncoder

    reranker_dir = tiny_cross_encoder(tmp_path / "reranker", seed=3)
    recipe = load_recipe(write_joint_recipe(tmp_path, tiny_model_dir, reranker_dir, contrastive_weight=0.5))
    summary = run_task(recipe, select_backend(bgekit_pm.registry, "cpu"))
    assert summary["task"] == "joint" and summary["steps"] == 5 and summary["candidate_refreshes"] == 2

    retriever = Embedder.from_pretrained(summary["retriever_dir"])
    base_retriever = Embedder.from_pretrained(str(tiny_model_dir))
    reranker = CrossEncoder.from_pretrained(summary["reranker_dir"])
    base_reranker = CrossEncoder.from_pretrained(reranker_dir)
    for trained, base in ((retriever, base_retriever), (reranker, base_reranker)):
        moved = [k for k, v in base.state_dict().items() if not torch.equal(v, trained.state_dict()[k])]
        assert len(moved) > 5, f"{type(trained).__name__}: almost no weight changed"
    for folder in (summary["retriever_dir"], summary["reranker_dir"]):
        assert (Path(folder) / RESOLVED_RECIPE_NAME).is_file()


def test_mine_at_start_adds_the_starting_retrievers_candidates(tmp_path, tiny_model_dir, bgekit_pm):
    """Each ROWS example has 3 negatives; mining the pool (8 passages) before step 1 adds the rest."""
    reranker_dir = tiny_cross_encoder(tmp_path / "reranker", seed=3)
    recipe = load_recipe(write_joint_recipe(tmp_path, tiny_model_dir, reranker_dir, refresh_every=0,
                                            mine_at_start=True, negative_max_preference=1.0))
    summary = run_task(recipe, select_backend(bgekit_pm.registry, "cpu"))
    assert summary["denoised_negatives_dropped"] == 0 and "candidate_refreshes" not in summary
    assert summary["candidates_per_query"] > 3
    written = [json.loads(line) for line in (tmp_path / "run" / "candidates" / "step-0.jsonl").open()]
    assert [r["query"] for r in written] == [r["query"] for r in ROWS]
    assert sum(len(r["neg"]) for r in written) / len(written) == summary["candidates_per_query"]

    recipe = load_recipe(write_joint_recipe(tmp_path, tiny_model_dir, reranker_dir, refresh_every=0,
                                            negative_max_preference=1.0))
    assert run_task(recipe, select_backend(bgekit_pm.registry, "cpu"))["candidates_per_query"] == 3


def test_a_joint_recipe_without_a_reranker_is_refused(tmp_path, tiny_model_dir, bgekit_pm):
    path = write_joint_recipe(tmp_path, tiny_model_dir, tmp_path / "missing")
    values = yaml.safe_load(path.read_text())
    del values["reranker"]
    path.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump(values, allow_unicode=True))
    with pytest.raises(BgekitError, match="reranker.name_or_path"):
        run_task(load_recipe(path), select_backend(bgekit_pm.registry, "cpu"))


@pytest.mark.parametrize("per_model", [True, False])
def test_the_retrievers_large_gradients_do_not_shrink_the_rerankers(per_model):
    """Clipped per model, the reranker keeps its (small) gradient; under one shared norm it would shrink 20x."""
    model = JointModel(torch.nn.Linear(1, 2, bias=False), torch.nn.Linear(1, 2, bias=False))
    model.retriever.weight.grad = torch.tensor([[6.0], [8.0]])  # norm 10
    model.reranker.weight.grad = torch.tensor([[0.3], [0.4]])  # norm 0.5
    clip_gradients((per_model_clip_groups if per_model else all_parameters)(model), max_norm=1.0)
    shared = (10.0 ** 2 + 0.5 ** 2) ** 0.5
    assert float(model.retriever.weight.grad.norm()) == pytest.approx(1.0 if per_model else 10.0 / shared, rel=1e-5)
    assert float(model.reranker.weight.grad.norm()) == pytest.approx(0.5 if per_model else 0.5 / shared, rel=1e-5)
