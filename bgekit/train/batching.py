"""Which examples go together in a batch, epoch after epoch, resumably.

Length grouping (as Hugging Face's ``LengthGroupedSampler``): the shuffled
examples are cut into mega-batches of ``MEGA_BATCHES`` batches, each
mega-batch is sorted by length and cut into batches, and the batches are
shuffled. Batches then hold texts of similar length, so little of each padded
tensor is padding, while the order stays random.

Under data parallelism every rank computes the same batch list (same seed,
same epoch) and takes every ``world_size``-th batch starting at its rank,
like ``DistributedSampler``; all ranks get the same number of batches.

The position in the data is ``(epoch, position)``: the batch lists are a pure
function of ``(seed, epoch)``, so a resumed run rebuilds the epoch's list and
skips the ``position`` batches it already trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

#: Batches per mega-batch that is sorted by length (as in ``transformers``).
MEGA_BATCHES = 50


@dataclass
class SamplerState:
    """Where the data stream is: micro-batches already served in ``epoch``."""

    epoch: int = 0
    position: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class LengthGroupedBatcher:
    """Per-epoch lists of example indices, one list per micro-batch for this rank."""

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int = 42, shuffle: bool = True,
                 length_grouping: bool = True, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.length_grouping = length_grouping
        self.rank = rank
        self.world_size = world_size

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All of this rank's batches for ``epoch``; the same on every call."""
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.length_grouping:
            mega = self.batch_size * MEGA_BATCHES
            order = np.concatenate([
                chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                for chunk in (order[i:i + mega] for i in range(0, n, mega))
            ]) if n else order
        batches = [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches.pop()  # a short last batch has fewer in-batch negatives and an odd shape
        if self.length_grouping and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        per_rank = len(batches) // self.world_size
        if per_rank == 0:
            return [batches[0]] if batches else []
        return batches[self.rank:per_rank * self.world_size:self.world_size]

    def batches_per_epoch(self) -> int:
        return len(self.epoch_batches(0))

    def stream(self, state: SamplerState) -> Iterator[list[int]]:
        """Batches from ``state`` on, for ever; ``state`` is advanced as they are served."""
        while True:
            batches = self.epoch_batches(state.epoch)
            if not batches:
                raise ValueError("no training batches: the dataset is empty")
            while state.position < len(batches):
                batch = batches[state.position]
                state.position += 1
                yield batch
            state.epoch += 1
            state.position = 0
