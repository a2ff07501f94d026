"""Each reranker loss against an independent computation (plain Python math) on a fixed batch."""

from __future__ import annotations

import math

import pytest
import torch

from bgekit.errors import BgekitError
from bgekit.plugins import get_registry

# Two groups of four: the usual positive-first binary labels, and a graded group
# whose model ranking is wrong (the grade-2 passage ranked last).
LOGITS = [[2.0, 0.5, -1.0, 0.3], [0.1, 1.2, -0.4, 0.9]]
LABELS = [[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0]]
TEACHER = [[3.0, 1.0, -2.0, 0.0], [0.5, 2.0, 1.5, -1.0]]


def build(name: str, **params):
    return get_registry().get("loss", name).create(**params)


def run(name: str, teacher=None, **params) -> float:
    logits = torch.tensor(LOGITS, requires_grad=True)
    out = build(name, **params)(logits, torch.tensor(LABELS), teacher_scores=teacher, step=0)
    out.loss.backward()  # every loss must be differentiable
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    return float(out.loss.detach())


def log_softmax(row: list[float]) -> list[float]:
    top = max(row)
    norm = top + math.log(sum(math.exp(x - top) for x in row))
    return [x - norm for x in row]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_specs_are_reranker_losses_with_citations():
    registry = get_registry()
    for name in ("listwise-ce", "ranknet", "lambdarank", "bce", "rerank-kd"):
        spec = registry.get("loss", name)
        assert spec.task == "reranker" and spec.citation
        for param in spec.params_schema["properties"].values():
            assert "default" in param and param["description"]
    assert registry.get("loss", "infonce").task == "embedder"


def test_listwise_ce_matches_softmax_cross_entropy():
    expected = []
    for logits, labels in zip(LOGITS, LABELS):
        target = [y / sum(labels) for y in labels]
        expected.append(-sum(t * lp for t, lp in zip(target, log_softmax([x / 0.5 for x in logits]))))
    assert run("listwise-ce", temperature=0.5) == pytest.approx(sum(expected) / 2, rel=1e-6)
    # binary positive-first labels: exactly FlagEmbedding's cross_entropy(logits, 0)
    binary = build("listwise-ce")(torch.tensor(LOGITS), torch.tensor([[1.0, 0, 0, 0]] * 2)).loss
    reference = torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.zeros(2, dtype=torch.long))
    assert float(binary) == pytest.approx(float(reference), rel=1e-6)


def test_ranknet_matches_pairwise_logistic_mean():
    costs = []
    for logits, labels in zip(LOGITS, LABELS):
        for i in range(4):
            for j in range(4):
                if labels[i] > labels[j]:
                    costs.append(softplus(-2.0 * (logits[i] - logits[j])))
    assert len(costs) == 3 + 5  # (pos > 3 negatives) and (grade 2 > 3 others, grade 1 > 2 zeros)
    assert run("ranknet", sigma=2.0) == pytest.approx(sum(costs) / len(costs), rel=1e-6)


def ndcg(gains_by_rank: list[float], ideal: float) -> float:
    return sum(g / math.log2(1 + r) for r, g in enumerate(gains_by_rank, start=1)) / ideal


def test_lambdarank_weights_are_ndcg_change_of_swapping():
    from bgekit_rerank_losses.pairwise import delta_ndcg

    weights = delta_ndcg(torch.tensor(LOGITS), torch.tensor(LABELS))
    total = 0.0
    for q, (logits, labels) in enumerate(zip(LOGITS, LABELS)):
        ranking = sorted(range(4), key=lambda i: -logits[i])
        gains = [2 ** labels[i] - 1 for i in ranking]
        ideal = ndcg(sorted(gains, reverse=True), 1.0)
        base = ndcg(gains, ideal)
        per_query = 0.0
        for i in range(4):
            for j in range(4):
                swapped = list(ranking)
                a, b = swapped.index(i), swapped.index(j)
                swapped[a], swapped[b] = swapped[b], swapped[a]
                change = abs(ndcg([2 ** labels[k] - 1 for k in swapped], ideal) - base)
                assert float(weights[q, i, j]) == pytest.approx(change, abs=1e-6)
                if labels[i] > labels[j]:
                    per_query += change * softplus(-(logits[i] - logits[j]))
        total += per_query
    assert run("lambdarank") == pytest.approx(total / 2, rel=1e-6)


def test_lambdarank_group_without_relevant_passage_adds_nothing():
    out = build("lambdarank")(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    assert float(out.loss) == 0.0


def test_bce_matches_pointwise_formula_with_graded_targets():
    terms = []
    for logits, labels in zip(LOGITS, LABELS):
        for s, y in zip(logits, labels):
            t = min(y / 2.0, 1.0)
            p = 1 / (1 + math.exp(-s))
            terms.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    assert run("bce", max_label=2.0) == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_rerank_kd_is_temperature_scaled_kl_to_teacher_softmax():
    t = 2.0
    expected = 0.0
    for logits, teacher in zip(LOGITS, TEACHER):
        lt = log_softmax([x / t for x in teacher])
        ls = log_softmax([x / t for x in logits])
        expected += sum(math.exp(a) * (a - b) for a, b in zip(lt, ls))
    expected = expected / 2 * t * t
    assert run("rerank-kd", teacher=torch.tensor(TEACHER), temperature=t) == pytest.approx(expected, rel=1e-6)


def test_rerank_kd_without_teacher_scores_says_what_to_add():
    with pytest.raises(BgekitError, match="teacher scores"):
        build("rerank-kd")(torch.tensor(LOGITS), torch.tensor(LABELS))


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="one shape"):
        build("listwise-ce")(torch.tensor(LOGITS), torch.tensor(LABELS)[:, :3])
