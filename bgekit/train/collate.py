"""Tokenise a list of training groups into the tensors ``Embedder.forward`` takes.

Queries get ``query_instruction`` in front (an example's own ``prompt`` wins),
passages ``passage_instruction``; each side is cut to its max length and
padded to the longest text of the batch. Passages are laid out group after
group, the positive first in each, so query ``i``'s positive is passage
``i * group_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from bgekit.train.sampling import TrainGroup


def pin_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors copied to page-locked memory (a batch's ``pin_memory()``, called by the DataLoader on GPU)."""
    return {k: v.pin_memory() for k, v in tensors.items()}


def pin_optional(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return tensor.pin_memory() if tensor is not None else None


def common_group_size(groups: Sequence[TrainGroup]) -> int:
    """The one number of passages every group of a batch has (a batch is a (Q, G) block)."""
    if not groups:
        raise ValueError("cannot collate an empty batch")
    group_size = len(groups[0].passages)
    if any(len(g.passages) != group_size for g in groups):
        raise ValueError("all groups of a batch must have the same number of passages")
    return group_size


def query_texts(groups: Sequence[TrainGroup], instruction: str) -> list[str]:
    """Each group's query with ``instruction`` in front (the example's own ``prompt`` wins)."""
    return [(g.prompt if g.prompt is not None else instruction) + g.query for g in groups]


@dataclass
class TrainBatch:
    """Tokenised queries and passages, teacher scores (Q, G) when every group has them."""

    queries: dict[str, torch.Tensor]
    passages: dict[str, torch.Tensor]
    teacher_scores: torch.Tensor | None
    group_size: int

    @property
    def num_queries(self) -> int:
        return int(self.queries["input_ids"].shape[0])

    @property
    def num_passages(self) -> int:
        return int(self.passages["input_ids"].shape[0])

    def num_tokens(self) -> int:
        """Real (unpadded) tokens in the batch, queries and passages."""
        return int(self.queries["attention_mask"].sum()) + int(self.passages["attention_mask"].sum())

    def to(self, device: Any) -> "TrainBatch":
        move = lambda d: {k: v.to(device, non_blocking=True) for k, v in d.items()}  # noqa: E731
        teacher = self.teacher_scores.to(device) if self.teacher_scores is not None else None
        return TrainBatch(move(self.queries), move(self.passages), teacher, self.group_size)

    def pin_memory(self) -> "TrainBatch":
        """This batch in page-locked memory, so its copy to the GPU (``to``, non-blocking) overlaps compute."""
        return TrainBatch(pin_tensors(self.queries), pin_tensors(self.passages), pin_optional(self.teacher_scores),
                          self.group_size)


class Collator:
    """Builds a :class:`TrainBatch` from groups with the model's tokenizer and the recipe's lengths."""

    def __init__(self, tokenizer: Any, *, query_max_length: int, passage_max_length: int,
                 query_instruction: str = "", passage_instruction: str = "") -> None:
        self.tokenizer = tokenizer
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length
        self.query_instruction = query_instruction or ""
        self.passage_instruction = passage_instruction or ""

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        features = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                                  return_tensors="pt")
        return {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}

    def __call__(self, groups: Sequence[TrainGroup]) -> TrainBatch:
        group_size = common_group_size(groups)
        queries = query_texts(groups, self.query_instruction)
        passages = [self.passage_instruction + p for g in groups for p in g.passages]
        teacher = None
        if all(g.teacher_scores is not None for g in groups):
            teacher = torch.tensor([g.teacher_scores for g in groups], dtype=torch.float32)
        return TrainBatch(queries=self.tokenize(queries, self.query_max_length),
                          passages=self.tokenize(passages, self.passage_max_length),
                          teacher_scores=teacher, group_size=group_size)
