"""Head math against plain-Python references: pooling, lexical matching, late interaction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bgekit.models.head import TokenBatch
from bgekit_heads.colbert import ColbertHead, TokenVectors, late_interaction_scores
from bgekit_heads.dense import DenseHead, pool
from bgekit_heads.sparse import LexicalWeights, SparseHead, lexical_scores


def batch(ids, mask, lexical=None) -> TokenBatch:
    ids, mask = torch.tensor(ids), torch.tensor(mask)
    return TokenBatch(ids, mask, mask.bool() if lexical is None else torch.tensor(lexical))


# -- dense -------------------------------------------------------------------
def test_pooling_cls_mean_last_token_right_and_left_padding():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    right = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert torch.equal(pool(hidden, right, "cls"), hidden[:, 0])
    expected_mean = torch.stack([hidden[0].mean(0), hidden[1, :2].mean(0)])
    assert torch.allclose(pool(hidden, right, "mean"), expected_mean)
    assert torch.equal(pool(hidden, right, "last-token"), torch.stack([hidden[0, 3], hidden[1, 1]]))
    left = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    assert torch.equal(pool(hidden, left, "last-token"), hidden[:, -1])


def test_dense_head_normalises_and_scores_dot_products():
    head = DenseHead(3)
    hidden = torch.randn(2, 4, 3)
    rep = head.represent(hidden, batch([[0] * 4] * 2, [[1] * 4] * 2))
    assert torch.allclose(rep.norm(dim=-1), torch.ones(2))
    assert torch.allclose(head.score(rep, rep), rep @ rep.T)
    raw = DenseHead(3, normalize=False).represent(hidden, batch([[0] * 4] * 2, [[1] * 4] * 2))
    assert torch.equal(raw, hidden[:, 0])
    with pytest.raises(ValueError, match="pooling"):
        DenseHead(3, pooling="max")


# -- sparse ------------------------------------------------------------------
def lexical_dicts(ids: np.ndarray, weights: np.ndarray) -> list[dict[int, float]]:
    """Brute force: each text's token id -> max weight, zero weights left out."""
    out = []
    for row_ids, row_w in zip(ids.tolist(), weights.tolist()):
        d: dict[int, float] = {}
        for i, w in zip(row_ids, row_w):
            if w > 0:
                d[i] = max(d.get(i, 0.0), w)
        out.append(d)
    return out


def dict_score(a: dict, b: dict) -> float:
    return sum(w * b[t] for t, w in a.items() if t in b)


def test_lexical_scores_equal_brute_force_dict_computation():
    rng = np.random.default_rng(0)
    q_ids = rng.integers(0, 12, size=(3, 7))  # small id range: many repeats and overlaps
    p_ids = rng.integers(0, 12, size=(5, 9))
    q_w = rng.random((3, 7)) * (rng.random((3, 7)) > 0.2)
    p_w = rng.random((5, 9)) * (rng.random((5, 9)) > 0.2)
    got = lexical_scores(LexicalWeights(torch.tensor(q_ids), torch.tensor(q_w)),
                         LexicalWeights(torch.tensor(p_ids), torch.tensor(p_w)))
    q_d, p_d = lexical_dicts(q_ids, q_w), lexical_dicts(p_ids, p_w)
    expected = np.array([[dict_score(a, b) for b in p_d] for a in q_d])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_lexical_scores_never_allocate_the_vocabulary():
    """Ids near 2**40 would need terabytes if any tensor were vocabulary-wide."""
    big = 2**40
    q = LexicalWeights(torch.tensor([[big, big + 5, 3]]), torch.tensor([[0.5, 2.0, 1.0]]))
    p = LexicalWeights(torch.tensor([[big + 5, big + 5, 7], [3, big, 1]]), torch.tensor([[1.0, 3.0, 9.0],
                                                                                        [2.0, 4.0, 8.0]]))
    assert lexical_scores(q, p).tolist() == [[2.0 * 3.0, 0.5 * 4.0 + 1.0 * 2.0]]


def test_lexical_score_gradients_match_a_vocabulary_wide_reference():
    torch.manual_seed(0)
    vocab = 10
    q_ids, p_ids = torch.randint(0, vocab, (2, 6)), torch.randint(0, vocab, (4, 8))
    q_w, p_w = torch.rand(2, 6, requires_grad=True), torch.rand(4, 8, requires_grad=True)
    lexical_scores(LexicalWeights(q_ids, q_w), LexicalWeights(p_ids, p_w)).sum().backward()
    ours = (q_w.grad.clone(), p_w.grad.clone())
    q_w.grad, p_w.grad = None, None

    def dense_bags(ids, w):  # the (B, L, V) formulation FlagEmbedding trains with
        full = torch.zeros(ids.size(0), ids.size(1), vocab).scatter(-1, ids.unsqueeze(-1), w.unsqueeze(-1))
        return full.max(dim=1).values

    (dense_bags(q_ids, q_w) @ dense_bags(p_ids, p_w).T).sum().backward()
    assert torch.allclose(ours[0], q_w.grad) and torch.allclose(ours[1], p_w.grad)


def test_sparse_head_drops_special_tokens_and_exports_max_over_repeats():
    head = SparseHead(4)
    with torch.no_grad():
        head.linear.weight.fill_(1.0)
        head.linear.bias.zero_()
    hidden = torch.tensor([[[1.0] * 4, [0.5] * 4, [0.25] * 4, [-1.0] * 4, [2.0] * 4, [9.0] * 4]])
    # ids: CLS=0, 7, 7 (repeat), 8 (relu -> 0), SEP=2, PAD=1
    b = batch([[0, 7, 7, 8, 2, 1]], [[1, 1, 1, 1, 1, 0]], lexical=[[False, True, True, True, False, False]])
    rep = head.represent(hidden, b)
    assert rep.weights.tolist() == [[0.0, 2.0, 1.0, 0.0, 0.0, 0.0]]
    assert head.export(rep) == [{"7": 2.0}]


# -- colbert -----------------------------------------------------------------
def test_late_interaction_equals_loop_reference_with_padding_on_both_sides():
    rng = np.random.default_rng(1)
    qv, pv = rng.normal(size=(2, 4, 3)), rng.normal(size=(3, 5, 3))
    q_len, p_len = [4, 2], [5, 1, 3]
    q_mask = np.arange(4)[None] < np.array(q_len)[:, None]
    p_mask = np.arange(5)[None] < np.array(p_len)[:, None]
    got = late_interaction_scores(TokenVectors(torch.tensor(qv), torch.tensor(q_mask)),
                                  TokenVectors(torch.tensor(pv), torch.tensor(p_mask))).numpy()
    for i in range(2):
        for j in range(3):
            best = [max(float(qv[i, a] @ pv[j, b]) for b in range(p_len[j])) for a in range(q_len[i])]
            assert got[i, j] == pytest.approx(sum(best) / len(best), abs=1e-12)


def test_colbert_head_drops_cls_masks_and_normalises():
    head = ColbertHead(4, colbert_dim=3)
    hidden = torch.randn(2, 5, 4)
    rep = head.represent(hidden, batch([[0] * 5] * 2, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    assert rep.vectors.shape == (2, 4, 3)
    assert rep.mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert torch.allclose(rep.vectors[0].norm(dim=-1), torch.ones(4))
    assert torch.count_nonzero(rep.vectors[1, 2:]) == 0
    expected = torch.nn.functional.normalize(head.linear(hidden[0, 1:]), dim=-1)
    assert torch.allclose(rep.vectors[0], expected)
    assert [v.shape for v in head.export(rep)] == [(4, 3), (2, 3)]
    assert ColbertHead(4).linear.out_features == 4  # -1: the hidden size, as BGE-M3


def test_builtin_heads_registered_with_documented_params(bgekit_pm):
    registry = bgekit_pm.registry
    assert {"dense", "sparse", "colbert"} <= set(registry.names("head"))
    for name in ("dense", "sparse", "colbert"):
        for key, prop in registry.get("head", name).params_schema.get("properties", {}).items():
            assert "default" in prop and prop.get("description"), (name, key)
