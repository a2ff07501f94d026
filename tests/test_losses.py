"""Loss values on a fixed batch against the formulas written out with plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bgekit.errors import BgekitError

Q, G, TAU = 3, 3, 0.02
RNG = np.random.default_rng(7)
# Raw similarities in the range the heads produce (cosines; lexical scores a bit larger).
SCORES = {
    "dense": RNG.uniform(-0.2, 0.9, size=(Q, Q * G)),
    "sparse": RNG.uniform(0.0, 0.4, size=(Q, Q * G)),
    "colbert": RNG.uniform(-0.1, 0.9, size=(Q, Q * G)),
}
TEACHER = RNG.normal(size=(Q, G))
TARGETS = [i * G for i in range(Q)]


@pytest.fixture
def registry(bgekit_pm):
    return bgekit_pm.registry


def run(registry, name, scores=SCORES, targets=TARGETS, teacher=None, step=0, **params):
    loss = registry.get("loss", name).create(**params)
    out = loss({k: torch.tensor(v) for k, v in scores.items()}, torch.tensor(targets), G,
               teacher_scores=None if teacher is None else torch.tensor(teacher), step=step)
    return out


# -- references, one number at a time ----------------------------------------
def softmax(row):
    m = max(row)
    e = [math.exp(x - m) for x in row]
    return [x / sum(e) for x in e]


def log_softmax(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


def ce(matrix, targets):
    """Mean over rows of -log softmax(row)[target]."""
    return sum(-log_softmax(list(row))[t] for row, t in zip(matrix, targets)) / len(targets)


def soft_ce(student, teacher_probs):
    return sum(-sum(p * l for p, l in zip(t, log_softmax(list(s)))) for s, t in zip(student, teacher_probs)) / len(student)


def scaled(m):
    return [[x / TAU for x in row] for row in m]


def own_groups(m, targets):
    return [[row[t + j] for j in range(G)] for row, t in zip(m, targets)]


def m3_kd_reference(student, teacher_probs, targets):
    total = 0.0
    for j in range(G):
        per_query = []
        for i, row in enumerate(student):
            excluded = {targets[i] + k for k in range(j)}
            candidates = [x for c, x in enumerate(row) if c not in excluded]
            lse = math.log(sum(math.exp(x - max(candidates)) for x in candidates)) + max(candidates)
            per_query.append(teacher_probs[i][j] * (lse - row[targets[i] + j]))
        total += sum(per_query) / len(per_query)
    return total


def unified_reference(scores, self_distill=True, in_batch=True, ws=(1.0, 0.3, 1.0), k=0.1):
    d, s, c = (scaled(scores[h]) for h in ("dense", "sparse", "colbert"))
    e = [[ws[0] * a + ws[1] * b + ws[2] * x for a, b, x in zip(*rows)] for rows in zip(d, s, c)]
    if in_batch:
        pick, targets = (lambda m: m), TARGETS
    else:
        pick, targets = (lambda m: own_groups(m, TARGETS)), [0] * Q
    loss = (ce(pick(d), targets) + ce(pick(e), targets) + k * ce(pick(s), targets) + ce(pick(c), targets)) / 4
    if not self_distill:
        return loss
    teacher = [softmax(row) for row in pick(e)]
    distill = (soft_ce(pick(d), teacher) + k * soft_ce(pick(s), teacher) + soft_ce(pick(c), teacher)) / 3
    return (loss + distill) / 2


# -- tests --------------------------------------------------------------------
def test_infonce_matches_reference(registry):
    out = run(registry, "infonce")
    assert out.loss.item() == pytest.approx(ce(scaled(SCORES["dense"]), TARGETS), rel=1e-9)
    assert out.parts["dense"] == pytest.approx(out.loss.item())
    own = run(registry, "infonce", head="colbert", in_batch_negatives=False, temperature=0.05)
    expected = ce([[x / 0.05 for x in row] for row in own_groups(SCORES["colbert"], TARGETS)], [0] * Q)
    assert own.loss.item() == pytest.approx(expected, rel=1e-9)


def test_m3_unified_matches_reference_with_and_without_self_distillation(registry):
    out = run(registry, "m3-unified")
    assert out.loss.item() == pytest.approx(unified_reference(SCORES), rel=1e-9)
    assert set(out.parts) == {"dense", "sparse", "colbert", "ensemble", "self_distill"}
    assert out.parts["sparse"] == pytest.approx(ce(scaled(SCORES["sparse"]), TARGETS), rel=1e-9)

    before = run(registry, "m3-unified", self_distill_start_step=5, step=5)
    assert before.loss.item() == pytest.approx(unified_reference(SCORES, self_distill=False), rel=1e-9)
    assert "self_distill" not in before.parts
    after = run(registry, "m3-unified", self_distill_start_step=5, step=6)
    assert after.loss.item() == pytest.approx(unified_reference(SCORES), rel=1e-9)


def test_m3_unified_weights_and_own_group_mode(registry):
    out = run(registry, "m3-unified", dense_weight=0.5, sparse_weight=1.0, colbert_weight=2.0,
              sparse_loss_scale=0.5, in_batch_negatives=False)
    expected = unified_reference(SCORES, in_batch=False, ws=(0.5, 1.0, 2.0), k=0.5)
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)


def test_m3_unified_self_distillation_teacher_is_detached(registry):
    """The ensemble teaches; gradients must not flow back through its soft targets."""
    def grads(detach_teacher: bool | None):
        scores = {k: torch.tensor(v, requires_grad=True) for k, v in SCORES.items()}
        if detach_teacher is None:
            registry.get("loss", "m3-unified").create()(scores, torch.tensor(TARGETS), G).loss.backward()
        else:
            d, s, c = (scores[h] / TAU for h in ("dense", "sparse", "colbert"))
            e = d + 0.3 * s + c
            t = torch.tensor(TARGETS)
            ce_ = torch.nn.functional.cross_entropy
            loss = (ce_(d, t) + ce_(e, t) + 0.1 * ce_(s, t) + ce_(c, t)) / 4
            teacher = torch.softmax(e.detach() if detach_teacher else e, -1)
            sd = [-(teacher * torch.log_softmax(x, -1)).sum(-1).mean() for x in (d, s, c)]
            ((loss + (sd[0] + 0.1 * sd[1] + sd[2]) / 3) / 2).backward()
        return [scores[h].grad for h in ("dense", "sparse", "colbert")]

    ours, detached, attached = grads(None), grads(True), grads(False)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(ours, detached))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, attached))


def test_cross_device_dense_negatives_and_local_ensemble(registry):
    """Rank 1 of 2: dense scores cover both ranks' passages; sparse/colbert stay local."""
    other = RNG.uniform(-0.2, 0.9, size=(Q, Q * G))
    wide = np.concatenate([other, SCORES["dense"]], axis=1)
    offset_targets = [Q * G + t for t in TARGETS]
    out = run(registry, "m3-unified", scores={**SCORES, "dense": wide}, targets=offset_targets)
    local = unified_reference(SCORES)
    dense_local = ce(scaled(SCORES["dense"]), TARGETS)
    dense_wide = ce(scaled(wide), offset_targets)
    assert out.loss.item() == pytest.approx(local + (dense_wide - dense_local) / 8, rel=1e-9)
    infonce = run(registry, "infonce", scores={"dense": wide}, targets=offset_targets)
    assert infonce.loss.item() == pytest.approx(dense_wide, rel=1e-9)


def test_kd_kl_div_and_m3_kd_loss_match_reference(registry):
    teacher_probs = [softmax(list(row / 2.0)) for row in TEACHER]
    out = run(registry, "kd", teacher=TEACHER, teacher_temperature=2.0)
    expected = soft_ce(own_groups(scaled(SCORES["dense"]), TARGETS), teacher_probs)
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)

    m3 = run(registry, "kd", teacher=TEACHER, method="m3_kd_loss", head="colbert")
    expected = m3_kd_reference(scaled(SCORES["colbert"]), [softmax(list(r)) for r in TEACHER], TARGETS)
    assert m3.loss.item() == pytest.approx(expected, rel=1e-9)


def test_m3_unified_with_teacher_scores_uses_flagembedding_kd_terms(registry):
    t = [softmax(list(row)) for row in TEACHER]
    d, s, c = (scaled(SCORES[h]) for h in ("dense", "sparse", "colbert"))
    e = [[a + 0.3 * b + x for a, b, x in zip(*rows)] for rows in zip(d, s, c)]
    kd = [m3_kd_reference(m, t, TARGETS) for m in (d, e, s, c)]
    expected = (kd[0] + kd[1] + 0.1 * kd[2] + kd[3]) / 4
    out = run(registry, "m3-unified", teacher=TEACHER, kd_loss_type="m3_kd_loss", self_distill=False)
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)

    kl = [soft_ce(own_groups(m, TARGETS), t) + ce(m, TARGETS) for m in (d, e, s, c)]
    out = run(registry, "m3-unified", teacher=TEACHER, kd_loss_type="kl_div", self_distill=False)
    assert out.loss.item() == pytest.approx((kl[0] + kl[1] + 0.1 * kl[2] + kl[3]) / 4, rel=1e-9)


def test_clear_errors_for_missing_heads_and_teacher_scores(registry):
    with pytest.raises(BgekitError, match="needs the model heads dense, sparse, colbert"):
        run(registry, "m3-unified", scores={"dense": SCORES["dense"]})
    with pytest.raises(BgekitError, match="pos_scores"):
        run(registry, "kd")
    with pytest.raises(BgekitError, match=r"expected \(3, 3\)"):
        run(registry, "kd", teacher=TEACHER[:, :2])


def test_loss_specs_have_citations_and_documented_defaults(registry):
    for name in ("infonce", "m3-unified", "kd"):
        spec = registry.get("loss", name)
        assert spec.citation and spec.summary
        for key, prop in spec.params_schema["properties"].items():
            assert "default" in prop and prop.get("description"), (name, key)
    assert "2402.03216" in registry.get("loss", "m3-unified").citation
    assert "1807.03748" in registry.get("loss", "infonce").citation
    assert "Hinton" in registry.get("loss", "kd").citation
    assert registry.get("loss", "infonce").defaults()["temperature"] == 0.02
