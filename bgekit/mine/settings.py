"""The mining parameters every miner shares, as a recipe writes them.

Each miner plugin merges :data:`COMMON_PARAMS` into its own parameter schema,
so ``miner: {name: dense, range: [10, 210], num_negatives: 15}`` validates
for any miner; :meth:`MiningSettings.split` separates the shared values from
the miner's own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from bgekit.errors import BgekitError

COMMON_PARAMS: dict[str, dict[str, Any]] = {
    "range": {
        "type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2,
        "default": [10, 210],
        "description": "rank window [start, end) the negatives come from (0-based, end excluded): skips the "
                       "top ranks, which hold the positives and likely false negatives",
    },
    "num_negatives": {"type": "integer", "minimum": 0, "default": 15,
                      "description": "negatives written per query"},
    "sampling": {"enum": ["top", "random"], "default": "random",
                 "description": "inside the window, take the best-ranked survivors (top) or a random "
                                "sample of them (random)"},
    "max_score": {"type": ["number", "null"], "default": None,
                  "description": "drop candidates scoring above this (likely false negatives)"},
    "absolute_margin": {"type": ["number", "null"], "default": None,
                        "description": "drop candidates scoring above positive_score - margin"},
    "relative_margin": {"type": ["number", "null"], "default": None, "minimum": 0, "maximum": 1,
                        "description": "drop candidates scoring above positive_score * (1 - margin)"},
    "seed": {"type": "integer", "default": 42, "description": "seed for sampling and filling; same seed, same output"},
    "query_batch_size": {"type": "integer", "minimum": 1, "default": 1024,
                         "description": "queries searched at once"},
    "with_scores": {"type": "boolean", "default": False,
                    "description": "also write the miner's score of each negative as neg_scores"},
    "corpus": {"type": ["string", "null"], "default": None,
               "description": "candidate pool file (JSONL with 'text', or one passage a line); null: the union "
                              "of the training data's passages"},
    "refresh_every": {"type": "integer", "minimum": 0, "default": 0,
                      "description": "embedder training: re-mine negatives with the current model every N "
                                     "optimiser steps, used from the next epoch (0: never; ANCE-style)"},
}

#: Keys of a recipe's ``miner`` section that say how a run uses the miner, not how it ranks.
RUN_KEYS = ("name", "corpus", "refresh_every")


@dataclass(frozen=True)
class MiningSettings:
    """How candidates become negatives, independent of how they were ranked.

    The positive score the margins compare with is the lowest score among the
    query's positives (the strictest threshold when there are several).
    """

    range: tuple[int, int] = (10, 210)
    num_negatives: int = 15
    sampling: str = "random"
    max_score: float | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = None
    seed: int = 42
    query_batch_size: int = 1024
    with_scores: bool = False

    def __post_init__(self) -> None:
        start, end = self.range
        if not 0 <= start < end:
            raise BgekitError(f"miner.range [{start}, {end}]: expected 0 <= start < end, e.g. [10, 210]")
        if self.sampling not in ("top", "random"):
            raise BgekitError(f"miner.sampling '{self.sampling}': choose top or random")
        if self.num_negatives < 0:
            raise BgekitError(f"miner.num_negatives must be >= 0, not {self.num_negatives}")
        if self.relative_margin is not None and not 0 <= self.relative_margin <= 1:
            raise BgekitError(f"miner.relative_margin must be within [0, 1], not {self.relative_margin}")

    @property
    def filters_by_score(self) -> bool:
        return any(v is not None for v in (self.max_score, self.absolute_margin, self.relative_margin))

    @property
    def needs_positive_scores(self) -> bool:
        return self.absolute_margin is not None or self.relative_margin is not None

    @classmethod
    def split(cls, params: Mapping[str, Any]) -> tuple["MiningSettings", dict[str, Any]]:
        """(shared settings, the miner's own parameters) from a recipe's ``miner`` values."""
        names = {f.name for f in fields(cls)}
        shared = {k: v for k, v in params.items() if k in names}
        if "range" in shared:
            shared["range"] = parse_range(shared["range"])
        own = {k: v for k, v in params.items() if k not in names and k not in RUN_KEYS}
        return cls(**shared), own


def parse_range(value: Any) -> tuple[int, int]:
    """``[10, 210]``, ``(10, 210)`` or ``"10-210"`` -> ``(10, 210)``."""
    if isinstance(value, str):
        start, sep, end = value.partition("-")
        if not sep or not start.strip().isdigit() or not end.strip().isdigit():
            raise BgekitError(f"range '{value}': expected START-END such as 10-210")
        return int(start), int(end)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise BgekitError(f"range {value!r}: expected [start, end] such as [10, 210]")


def params_schema(own: Mapping[str, Any]) -> dict[str, Any]:
    """A miner's parameter schema: its own parameters plus the shared ones."""
    return {"properties": {**COMMON_PARAMS, **own}}
