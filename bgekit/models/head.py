"""The interface every head plugin implements.

A head turns the encoder's last hidden states into one kind of
representation (a vector, lexical weights, token vectors), scores queries
against passages with it, and exports it for ``bgekit encode``. The
:class:`~bgekit.models.embedder.Embedder` only talks to heads through this
class, so a third-party head slots in by registering a ``HeadSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch


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


class Head(torch.nn.Module):
    """Base class for heads; subclasses fill in the three methods below.

    ``weights_file`` names the FlagEmbedding-layout file that holds this
    head's parameters beside the encoder (``sparse_linear.pt``), or ``None``
    for heads without parameters. ``module_for_weights`` is the module whose
    ``state_dict`` goes into that file.
    """

    weights_file: ClassVar[str | None] = None
    #: Whether the representation has a fixed shape per item, so passages
    #: can be gathered across data-parallel ranks for extra negatives.
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
