"""Turn each training example into one training group: a query, its positive, its negatives.

A group is ``group_size`` passages, the positive first, as the loss expects
(``targets = arange(Q) * group_size``). The choice follows FlagEmbedding's
training dataset:

- one positive drawn from ``pos``;
- ``group_size - 1`` negatives drawn from ``neg`` without replacement, or
  with replacement (the list repeated) when there are too few;
- a query with no negatives at all gets random passages from other examples
  (their positives and negatives), since in-batch negatives alone would leave
  its group short;
- a negative equal to one of the query's positives is never used;
- teacher scores (``pos_scores``/``neg_scores``) follow the chosen passages;
- with ``graded=True`` (reranker training) and graded positives
  (``pos_labels``), the positives graded below the chosen one may fill
  negative slots too, and the group carries every passage's label, so a
  graded loss (listwise-ce, lambdarank, ...) learns that 3 beats 1 beats 0.

Every draw comes from a generator seeded by ``(seed, epoch, example index)``,
so a group depends on nothing else: the same seed gives the same data on any
machine and after a resume, whatever order the groups are asked for in.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from bgekit.data.example import Example
from bgekit.errors import BgekitError

#: How many times a random passage from another example is redrawn when it
#: equals one of the query's positives before that slot gives up on randomness.
MAX_REDRAWS = 20


@dataclass(frozen=True)
class TrainGroup:
    """One query with its passages (positive first) and their teacher scores."""

    query: str
    passages: list[str]
    teacher_scores: list[float] | None = None
    prompt: str | None = None
    #: relevance of each passage (the positive's grade first, 0 for negatives); None: binary (1, 0, 0, ...)
    labels: list[float] | None = None


class GroupSampler:
    """Draws a :class:`TrainGroup` for any example, reproducibly."""

    def __init__(self, examples: Sequence[Example], group_size: int, seed: int = 42, *, graded: bool = False) -> None:
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, not {group_size}")
        if not examples:
            raise ValueError("no examples to sample from")
        self.examples = examples
        self.group_size = group_size
        self.seed = seed
        self.graded = graded

    def __len__(self) -> int:
        return len(self.examples)

    def rng(self, index: int, epoch: int) -> random.Random:
        # A string seed is hashed with SHA-512 by ``random``: stable across processes.
        return random.Random(f"{self.seed}/{epoch}/{index}")

    def sample(self, index: int, epoch: int = 0) -> TrainGroup:
        example = self.examples[index]
        rng = self.rng(index, epoch)
        pos_i = rng.randrange(len(example.pos))
        positive = example.pos[pos_i]
        positives = {p.strip() for p in example.pos}
        wanted = self.group_size - 1
        graded = self.graded and example.pos_labels is not None

        # (passage, label, teacher score) of every passage that may fill a negative slot
        pool = [(n, 0.0, example.neg_scores[i] if example.neg_scores is not None else None)
                for i, n in enumerate(example.neg) if n.strip() not in positives]
        if graded:
            top = example.pos_labels[pos_i]
            pool += [(p, label, example.pos_scores[j] if example.pos_scores is not None else None)
                     for j, (p, label) in enumerate(zip(example.pos, example.pos_labels)) if label < top]
        chosen: list[tuple[str, float, float | None]] = []
        scored = example.neg_scores is not None
        if wanted and pool:
            if len(pool) < wanted:  # too few: repeat the list, as FlagEmbedding does
                pool = pool * math.ceil(wanted / len(pool))
            chosen = rng.sample(pool, wanted)
        elif wanted:
            chosen = [(p, 0.0, None) for p in self._random_passages(index, positives, wanted, rng)]
            scored = False  # a teacher never scored these passages for this query

        teacher: list[float] | None = None
        if example.pos_scores is not None and (scored or wanted == 0):
            teacher = [example.pos_scores[pos_i], *(score for _, _, score in chosen)]
        labels = [example.pos_labels[pos_i], *(label for _, label, _ in chosen)] if graded else None
        return TrainGroup(query=example.query, passages=[positive, *(p for p, _, _ in chosen)],
                          teacher_scores=teacher, prompt=example.prompt, labels=labels)

    def _random_passages(self, index: int, positives: set[str], count: int, rng: random.Random) -> list[str]:
        """Passages of other examples, none equal to one of this query's positives."""
        out: list[str] = []
        n = len(self.examples)
        for _ in range(count):
            passage = None
            for _ in range(MAX_REDRAWS):
                other = rng.randrange(n)
                if other == index and n > 1:
                    continue
                pool = self.examples[other].pos + self.examples[other].neg
                draw = pool[rng.randrange(len(pool))]
                if draw.strip() not in positives:
                    passage = draw
                    break
            if passage is None:
                raise BgekitError(
                    f"training example {index + 1}: found no passage in the data that differs from its positives to use "
                    "as a negative; add 'neg' passages or more examples"
                )
            out.append(passage)
        return out
