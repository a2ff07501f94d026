"""A recipe's losses as weighted terms, and their sum: shared by the trainer and GradCache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


@dataclass
class LossTerm:
    """One loss of the recipe's ``loss`` list and its weight in the sum."""

    name: str
    fn: Callable[..., Any]
    weight: float = 1.0


def weighted_loss_sum(losses: Sequence[LossTerm], call: Callable[[Callable[..., Any]], Any]
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of ``weight * call(loss).loss`` over the terms, and their parts (prefixed by loss name when several)."""
    total = None
    parts: dict[str, float] = {}
    for term in losses:
        out = call(term.fn)
        weighted = term.weight * out.loss
        total = weighted if total is None else total + weighted
        prefix = "" if len(losses) == 1 else f"{term.name}/"
        parts.update({f"{prefix}{k}": float(v) for k, v in (out.parts or {}).items()})
    return total, parts
