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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch

from bgekit.models.padding import pad_and_cat


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
