"""The interface every head plugin implements.

A head turns the encoder's last hidden states into one kind of
representation (a vector, lexical weights, token vectors), scores queries
against passages with it, and exports it for ``bgekit encode``. The
:class:`~bgekit.models.embedder.Embedder` only talks to heads through this
class, so a third-party head slots in by registering a ``HeadSpec``.

Training in chunks (GradCache, :mod:`bgekit.train.gradcache`) and sharing
passages across data-parallel ranks need three more things from a head:
:meth:`Head.concat` (chunks back into one batch), :meth:`Head.tensors` /
:meth:`Head.with_tensors` (the differentiable tensors inside a
representation) and :meth:`Head.gather` (every rank's batch). The defaults
fit a representation that is one plain tensor; heads with richer
representations (sparse, colbert) override them.

Search (evaluation, mining, hybrids; :mod:`bgekit.evaluate.search`) works on
what ``encode`` returns for the head (``collate``'s output: numpy arrays,
lists of dicts), never on tensors: :meth:`Head.index` prepares the passages
once, :meth:`Head.search` finds a query's top k over all of them (first
stage, when :attr:`Head.retrieves`), :meth:`Head.score_candidates` scores
given passages (re-ranking, hybrids, mined negatives' scores). A head that
implements only ``score_candidates`` is searched exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
import torch

from bgekit.models.padding import pad_and_cat

if TYPE_CHECKING:
    from bgekit.mine.vector_index import IndexConfig


@dataclass
class TokenBatch:
    """What a head may look at besides the hidden states.

    ``lexical_mask`` is True at real, non-special tokens (attention mask
    minus every id in ``tokenizer.all_special_ids``), so heads never need the
    tokenizer itself.
    """

    input_ids: torch.Tensor  # (B, L) long
    attention_mask: torch.Tensor  # (B, L) 0/1
    lexical_mask: torch.Tensor  # (B, L) bool


def part_of(full: torch.Tensor, start: int, like: torch.Tensor) -> torch.Tensor:
    """The rows ``start:start + len(like)`` of ``full``, cut at the end of every dim to ``like``'s shape:
    the inverse of :func:`pad_and_cat` for one of its parts."""
    index = (slice(start, start + like.shape[0]),) + tuple(slice(0, n) for n in like.shape[1:])
    return full[index]


class Head(torch.nn.Module):
    """Base class for heads; subclasses fill in ``represent``, ``score`` and ``export``.

    ``weights_file`` names the FlagEmbedding-layout file that holds this
    head's parameters beside the encoder (``sparse_linear.pt``), or ``None``
    for heads without parameters. ``module_for_weights`` is the module whose
    ``state_dict`` goes into that file.
    """

    weights_file: ClassVar[str | None] = None
    #: Whether :meth:`gather` works for this head's representation, so passages can be
    #: shared across data-parallel ranks as extra negatives (cross-device negatives).
    #: A head that says False scores this rank's passages only.
    gatherable: ClassVar[bool] = False
    #: Whether :meth:`search` can find candidates over a whole corpus (first stage). A head
    #: that says False (ColBERT: too slow over every passage) only re-scores the candidates
    #: the model's retrieving heads find.
    retrieves: ClassVar[bool] = True
    #: This head's weight in a hybrid unless the user gives one (BGE-M3's ensemble:
    #: dense 1, sparse 0.3, colbert 1); 0 leaves it out of hybrids by default.
    hybrid_weight: ClassVar[float] = 1.0

    @property
    def module_for_weights(self) -> torch.nn.Module | None:
        return None

    def represent(self, hidden: torch.Tensor, batch: TokenBatch) -> Any:
        """The representation of a tokenized batch from its last hidden states."""
        raise NotImplementedError

    def score(self, queries: Any, passages: Any) -> torch.Tensor:
        """(Q, P) raw similarities of every query against every passage."""
        raise NotImplementedError

    def export(self, rep: Any) -> list[Any]:
        """One plain (numpy / dict) output per item of the batch, for ``encode``."""
        raise NotImplementedError

    def collate(self, items: list[Any]) -> Any:
        """All items of an ``encode`` call, in input order, as the caller gets them."""
        return items

    # -- chunking and sharing (GradCache, cross-device negatives) -----------
    def tensors(self, rep: Any) -> list[torch.Tensor]:
        """The floating-point tensors of ``rep`` that gradients flow through, in a fixed order."""
        if isinstance(rep, torch.Tensor):
            return [rep]
        raise NotImplementedError(f"head {type(self).__name__} does not list its representation's tensors; "
                                  "override Head.tensors/with_tensors/concat to train it in chunks")

    def with_tensors(self, rep: Any, tensors: Sequence[torch.Tensor]) -> Any:
        """``rep`` with its :meth:`tensors` replaced by ``tensors`` (same order and shapes)."""
        if isinstance(rep, torch.Tensor):
            return tensors[0]
        raise NotImplementedError(f"head {type(self).__name__} cannot rebuild its representation; "
                                  "override Head.with_tensors")

    def concat(self, reps: Sequence[Any]) -> Any:
        """One representation of the chunks ``reps`` of a batch, in order.

        Every tensor is concatenated along dim 0 and padded at the end of
        its other dims to the longest chunk (:func:`pad_and_cat`), so a
        chunk's part of a concatenated tensor is :func:`part_of` it.
        """
        if all(isinstance(r, torch.Tensor) for r in reps):
            return pad_and_cat(list(reps))
        raise NotImplementedError(f"head {type(self).__name__} cannot concatenate chunks of its "
                                  "representation; override Head.concat")

    def gather(self, rep: Any) -> Any:
        """Every data-parallel rank's ``rep`` concatenated in rank order, gradients flowing back to each rank.

        Only called when :attr:`gatherable` is True; the default gathers a plain tensor.
        """
        from bgekit.models.distributed import gather_padded

        if isinstance(rep, torch.Tensor):
            return gather_padded(rep)
        raise NotImplementedError(f"head {type(self).__name__} cannot gather its representation across "
                                  "ranks; override Head.gather or set gatherable = False")

    # -- search (numpy, on what ``encode`` returns) --------------------------
    def index(self, passages: Any, config: "IndexConfig | None" = None) -> Any:
        """``passages`` (``collate``'s output for a corpus) made ready for many :meth:`search` and
        :meth:`score_candidates` calls; the default keeps them as they are.

        ``config`` is the miner's vector-index choice (FAISS Flat/IVF/HNSW, GPU); ``None``
        asks for exact search on the CPU (evaluation). Heads without vectors ignore it.
        """
        return passages

    def search(self, queries: Any, index: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores), each (Q, k), of the k best passages per query, in any order; ``-1`` marks
        an empty slot (a passage that must not be retrieved, e.g. sharing no token with the query).

        The default scores every passage with :meth:`score_candidates`, a block of queries at a
        time; it needs the default :meth:`index` (``len(index)`` passages) and sliceable queries.
        A head that keeps the default inner-product :meth:`score_candidates` is searched with an
        exact FAISS inner-product index instead (no (queries, passages, D) array in between).
        """
        from bgekit.evaluate.search import exhaustive_search, inner_product_search

        if type(self).score_candidates is Head.score_candidates and _vectors(queries, index):
            return inner_product_search(queries, index, k)
        return exhaustive_search(self, queries, index, len(index), k)

    def score_candidates(self, queries: Any, index: Any, candidates: np.ndarray) -> np.ndarray:
        """(Q, C) float32 scores of query i with passages ``candidates[i]`` (``-1`` pads a row; the
        score there is ignored), on the same scale as :meth:`score`.

        The default fits a head whose ``encode`` output is one vector per text ((N, D) arrays,
        kept by the default :meth:`index`) and whose score is their inner product; any other
        head implements it.
        """
        if _vectors(queries, index):
            gathered = index[np.maximum(candidates, 0)]  # (Q, C, D)
            return np.einsum("qd,qcd->qc", queries.astype(np.float32), gathered.astype(np.float32))
        raise NotImplementedError(f"head {type(self).__name__} cannot be searched; implement "
                                  "Head.score_candidates (and Head.search for a faster first stage)")


def _vectors(queries: Any, index: Any) -> bool:
    """Whether queries and passages are one vector per text: (Q, D) and (N, D) arrays."""
    return isinstance(queries, np.ndarray) and isinstance(index, np.ndarray) and queries.ndim == index.ndim == 2
