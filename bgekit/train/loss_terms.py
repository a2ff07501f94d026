"""A recipe's losses as weighted terms, and their sum: shared by the tasks, the trainer and GradCache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from bgekit.errors import BgekitError


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


def loss_entries(value: Any) -> list[dict[str, Any]]:
    """A loss slot's value (one component, or a list of them) as a list of entries."""
    return [value] if isinstance(value, dict) else list(value)


def build_losses(entries: Sequence[dict[str, Any]], registry: Any, where: str = "loss") -> list[LossTerm]:
    """Each entry (``name``, ``weight``, parameters) made by the registry, as a weighted term."""
    if not entries:
        raise BgekitError(f"{where}: the list is empty; name at least one loss")
    terms = []
    for i, entry in enumerate(entries):
        params = {k: v for k, v in entry.items() if k not in ("name", "weight")}
        spec = registry.get("loss", entry["name"])
        try:
            fn = spec.create(**params)
        except (TypeError, ValueError) as exc:
            place = where if len(entries) == 1 else f"{where}[{i}]"
            raise BgekitError(f"{place} '{entry['name']}': {exc}") from exc
        terms.append(LossTerm(name=entry["name"], fn=fn, weight=float(entry.get("weight", 1.0))))
    return terms
