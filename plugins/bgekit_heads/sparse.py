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

Search works on the exported ``{token id: weight}`` dicts: the corpus becomes
one sparse (passages x tokens) matrix, and a block of queries is scored
against all of it with one sparse product, exactly; passages that share no
token with the query are not retrieved (as an inverted index would not
return them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from bgekit.api import SEARCH_BLOCK_CELLS as BLOCK_CELLS, Head, TokenBatch, gather_padded, pad_and_cat, top_k

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


def lexical_matrix(weights: Sequence[dict[str, float]], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """Rows of {token: weight} as a CSR matrix; new tokens are added to ``vocabulary``."""
    indptr, cols, data = [0], [], []
    for row in weights:
        for token, weight in row.items():
            cols.append(vocabulary.setdefault(token, len(vocabulary)))
            data.append(weight)
        indptr.append(len(cols))
    return sp.csr_matrix((np.array(data, np.float32), np.array(cols, np.int64), np.array(indptr, np.int64)),
                         shape=(len(weights), max(len(vocabulary), 1)))


@dataclass
class LexicalIndex:
    """A corpus's lexical weights as a (passages x tokens) matrix, plus its transpose for search."""

    vocabulary: dict[str, int]
    passages: sp.csr_matrix
    transposed: sp.csr_matrix = field(init=False)

    def __post_init__(self) -> None:
        self.transposed = self.passages.T.tocsr()

    def __len__(self) -> int:
        return self.passages.shape[0]

    def queries(self, weights: Sequence[dict[str, float]]) -> sp.csr_matrix:
        """Query weights over the corpus's tokens (tokens no passage has cannot score)."""
        known = [{t: w for t, w in row.items() if t in self.vocabulary} for row in weights]
        matrix = lexical_matrix(known, dict(self.vocabulary))
        matrix.resize((matrix.shape[0], self.passages.shape[1]))
        return matrix


class SparseHead(Head):
    """``relu(Linear(h, 1))`` per token; weights stored in ``sparse_linear.pt``."""

    weights_file = "sparse_linear.pt"
    gatherable = True
    retrieves = True
    hybrid_weight = 0.3

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

    # -- search: exact lexical matching over exported {token: weight} dicts --------
    def index(self, passages: Sequence[dict[str, float]], config: Any = None) -> LexicalIndex:
        vocabulary: dict[str, int] = {}
        return LexicalIndex(vocabulary, lexical_matrix(passages, vocabulary))

    def search(self, queries: Sequence[dict[str, float]], index: LexicalIndex,
               k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = index.queries(queries)
        block = max(1, BLOCK_CELLS // max(len(index), 1))  # rows of the (queries x corpus) product held at once
        out_idx, out_scores = [], []
        for start in range(0, matrix.shape[0], block):
            scores = (matrix[start:start + block] @ index.transposed).toarray()
            scores[scores <= 0] = -np.inf  # no shared token: not retrieved
            idx, top = top_k(scores, k)
            out_idx.append(idx)
            out_scores.append(top)
        if not out_idx:
            return np.zeros((0, min(k, len(index))), np.int64), np.zeros((0, min(k, len(index))), np.float32)
        return np.concatenate(out_idx), np.concatenate(out_scores)

    def score_candidates(self, queries: Sequence[dict[str, float]], index: LexicalIndex,
                         candidates: np.ndarray) -> np.ndarray:
        """Sums over shared tokens of weight products, for each query and its candidates."""
        matrix = index.queries(queries)
        rows = np.repeat(np.arange(candidates.shape[0]), candidates.shape[1])
        products = matrix[rows].multiply(index.passages[np.maximum(candidates, 0).ravel()]).sum(axis=1)
        return np.asarray(products, dtype=np.float32).reshape(candidates.shape)
