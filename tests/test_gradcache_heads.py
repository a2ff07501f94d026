"""What GradCache needs from heads: chunks concatenate back into the batch's representation (padded to
the longest chunk), and ColBERT's blocked scoring equals the one-block scores, gradients included."""

from __future__ import annotations

import pytest
import torch

from bgekit.models.head import Head, TokenBatch, pad_and_cat

import bgekit_heads.colbert as colbert
from bgekit_heads.colbert import ColbertHead
from bgekit_heads.sparse import SparseHead


def token_batch(ids: torch.Tensor, lengths: list[int]) -> TokenBatch:
    mask = (torch.arange(ids.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long()
    lexical = mask.bool() & (ids > 3)
    return TokenBatch(input_ids=ids * mask + (1 - mask), attention_mask=mask, lexical_mask=lexical)


def chunked(head: Head, hidden: torch.Tensor, batch: TokenBatch, cut: int):
    """The head's representation of rows [:cut] and [cut:], each trimmed to its own longest text."""
    reps = []
    for rows in (slice(0, cut), slice(cut, None)):
        width = int(batch.attention_mask[rows].sum(1).max())
        part = TokenBatch(*(t[rows, :width] for t in (batch.input_ids, batch.attention_mask, batch.lexical_mask)))
        reps.append(head.represent(hidden[rows, :width], part))
    return head.concat(reps)


@pytest.mark.parametrize("head_class", [SparseHead, ColbertHead])
def test_concatenated_chunks_score_like_the_whole_batch(head_class):
    torch.manual_seed(0)
    head = head_class(16)
    lengths = [9, 3, 4, 12, 5, 2]
    ids = torch.randint(4, 40, (6, 12))
    hidden = torch.randn(6, 12, 16)
    batch = token_batch(ids, lengths)
    whole = head.represent(hidden, batch)
    joined = chunked(head, hidden, batch, cut=3)  # the second chunk is longer than the first
    torch.testing.assert_close(head.score(joined, joined), head.score(whole, whole))
    (tensor,) = head.tensors(joined)
    assert tensor.shape[0] == 6
    rebuilt = head.with_tensors(joined, [tensor * 2])
    assert torch.equal(head.tensors(rebuilt)[0], tensor * 2)


def test_plain_tensor_representations_have_working_defaults():
    head = Head()
    a, b = torch.ones(2, 3), torch.zeros(1, 5)
    joined = head.concat([a, b])
    assert joined.shape == (3, 5) and torch.equal(joined[:2, :3], a) and float(joined[:2, 3:].abs().sum()) == 0
    assert head.tensors(joined) == [joined] and head.with_tensors(joined, [b]) is b
    assert torch.equal(pad_and_cat([torch.tensor([[True]]), torch.tensor([[False, True]])], False),
                       torch.tensor([[True, False], [False, True]]))


def test_colbert_scores_in_recomputed_blocks_equal_one_block(monkeypatch):
    torch.manual_seed(1)
    q = colbert.TokenVectors(torch.randn(3, 5, 8, requires_grad=True), torch.rand(3, 5) > 0.3)
    p = colbert.TokenVectors(torch.randn(7, 6, 8, requires_grad=True), torch.rand(7, 6) > 0.3)
    p.mask[4] = False  # a passage without tokens scores 0
    whole = colbert.late_interaction_scores(q, p)
    grads = torch.autograd.grad((whole * torch.arange(7.0)).sum(), [q.vectors, p.vectors])
    monkeypatch.setattr(colbert, "SIMILARITY_BLOCK", 3 * 5 * 6 * 2)  # blocks of 2 passages
    blocked = colbert.late_interaction_scores(q, p)
    blocked_grads = torch.autograd.grad((blocked * torch.arange(7.0)).sum(), [q.vectors, p.vectors])
    torch.testing.assert_close(blocked, whole)
    for got, want in zip(blocked_grads, grads):
        torch.testing.assert_close(got, want)
