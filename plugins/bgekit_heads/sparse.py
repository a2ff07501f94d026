"""Sparse (lexical) head: one non-negative weight per token, as in BGE-M3.

A text's lexical representation maps each token id it contains to the
largest ``relu(Linear(h, 1))`` weight among that id's occurrences; special
tokens and padding get no weight. Two texts score the sum, over the token
ids they share, of the products of their weights.

Scoring never materialises a (batch x vocabulary) or (batch x length x
vocabulary) tensor: the query batch's distinct token ids become a small
local vocabulary of size U, every text's weights are max-reduced into a
(batch, U) bag, and the scores are one (Q, U) @ (U, P) product. Passage
tokens that no query contains cannot contribute and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from bgekit.models.distributed import gather_padded
from bgekit.models.head import Head, TokenBatch
from bgekit.models.padding import pad_and_cat

#: The token id padding gets when batches are joined: no real token has it, and its weight is 0.
NO_TOKEN = -1


@dataclass
class LexicalWeights:
    """Per-token weights of a batch; zero at special tokens and padding."""

    input_ids: torch.Tensor  # (B, L) long
    weights: torch.Tensor  # (B, L) float, >= 0


def bag_of_ids(weights: torch.Tensor, slots: torch.Tensor, size: int) -> torch.Tensor:
    """(B, L) weights into (B, size) bags, keeping the max over repeated slots."""
    bags = weights.new_zeros(weights.size(0), size)
    return bags.scatter_reduce(1, slots, weights, reduce="amax", include_self=True)


def lexical_scores(queries: LexicalWeights, passages: LexicalWeights) -> torch.Tensor:
    """(Q, P) sums over shared token ids of query weight x passage weight.

    Memory is O((Q + P) * U) with U the number of distinct query token ids.
    """
    vocab, q_slots = torch.unique(queries.input_ids, return_inverse=True)
    q_bags = bag_of_ids(queries.weights, q_slots, vocab.numel())
    p_slots = torch.searchsorted(vocab, passages.input_ids).clamp_max(vocab.numel() - 1)
    shared = vocab[p_slots] == passages.input_ids
    p_bags = bag_of_ids(passages.weights * shared.to(passages.weights.dtype), p_slots, vocab.numel())
    return q_bags @ p_bags.transpose(0, 1)


class SparseHead(Head):
    """``relu(Linear(h, 1))`` per token; weights stored in ``sparse_linear.pt``."""

    weights_file = "sparse_linear.pt"
    gatherable = True

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)

    @property
    def module_for_weights(self) -> torch.nn.Module:
        return self.linear

    def represent(self, hidden: torch.Tensor, batch: TokenBatch) -> LexicalWeights:
        weights = torch.relu(self.linear(hidden)).squeeze(-1)
        weights = weights * batch.lexical_mask.to(weights.dtype)
        return LexicalWeights(input_ids=batch.input_ids, weights=weights)

    def score(self, queries: LexicalWeights, passages: LexicalWeights) -> torch.Tensor:
        return lexical_scores(queries, passages)

    def tensors(self, rep: LexicalWeights) -> list[torch.Tensor]:
        return [rep.weights]

    def with_tensors(self, rep: LexicalWeights, tensors: Sequence[torch.Tensor]) -> LexicalWeights:
        return LexicalWeights(input_ids=rep.input_ids, weights=tensors[0])

    def concat(self, reps: Sequence[LexicalWeights]) -> LexicalWeights:
        """Ids and weights of the chunks, padded to the longest with weight 0 at id ``NO_TOKEN``."""
        return LexicalWeights(input_ids=pad_and_cat([r.input_ids for r in reps], NO_TOKEN),
                              weights=pad_and_cat([r.weights for r in reps], 0.0))

    def gather(self, rep: LexicalWeights) -> LexicalWeights:
        """Every rank's (ids, weights), in this compact per-token form, padded to the longest rank."""
        return LexicalWeights(input_ids=gather_padded(rep.input_ids, NO_TOKEN),
                              weights=gather_padded(rep.weights, 0.0))

    def export(self, rep: LexicalWeights) -> list[dict[str, float]]:
        """Per text: token id (as a string) -> max weight, only weights > 0."""
        ids = rep.input_ids.cpu().numpy()
        weights = rep.weights.detach().float().cpu().numpy()
        out: list[dict[str, float]] = []
        for row_ids, row_weights in zip(ids, weights):
            keep = row_weights > 0
            lexical: dict[str, float] = {}
            for token_id, weight in zip(row_ids[keep].tolist(), row_weights[keep].tolist()):
                key = str(token_id)
                if weight > lexical.get(key, 0.0):
                    lexical[key] = weight
            out.append(lexical)
        return out
