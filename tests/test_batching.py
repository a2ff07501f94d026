"""Length-grouped batches: every example once per epoch, less padding, reproducible, resumable, sharded."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from bgekit.train.batching import LengthGroupedBatcher, SamplerState


def lengths(n: int = 1000, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(5, 500, size=n).tolist()


def padded_cost(batches: list[list[int]], lens: list[int]) -> int:
    """Tokens a padded batch costs: its longest text times its size."""
    return sum(max(lens[i] for i in b) * len(b) for b in batches)


def test_each_example_at_most_once_and_only_the_short_last_batch_dropped():
    lens = lengths(1003)
    batches = LengthGroupedBatcher(lens, 10, seed=1).epoch_batches(0)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat)) == 1000
    assert all(len(b) == 10 for b in batches)


def test_length_grouping_cuts_padding():
    lens = lengths()
    grouped = LengthGroupedBatcher(lens, 16, seed=1).epoch_batches(0)
    plain = LengthGroupedBatcher(lens, 16, seed=1, length_grouping=False).epoch_batches(0)
    assert padded_cost(grouped, lens) < 0.75 * padded_cost(plain, lens)


def test_batch_order_is_shuffled_not_sorted():
    lens = lengths()
    batches = LengthGroupedBatcher(lens, 16, seed=1).epoch_batches(0)
    longest = [max(lens[i] for i in b) for b in batches]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_same_seed_and_epoch_same_batches_other_epoch_other_batches():
    lens = lengths()
    a = LengthGroupedBatcher(lens, 8, seed=3)
    b = LengthGroupedBatcher(lens, 8, seed=3)
    assert a.epoch_batches(2) == b.epoch_batches(2)
    assert a.epoch_batches(0) != a.epoch_batches(1)
    assert a.epoch_batches(0) != LengthGroupedBatcher(lens, 8, seed=4).epoch_batches(0)


def test_no_shuffle_keeps_file_order():
    batches = LengthGroupedBatcher(list(range(10)), 3, shuffle=False, length_grouping=False).epoch_batches(0)
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_resuming_from_a_state_continues_the_same_stream_across_epochs():
    batcher = LengthGroupedBatcher(lengths(50), 8, seed=9)  # 6 batches per epoch
    straight = list(itertools.islice(batcher.stream(SamplerState()), 20))

    state = SamplerState()
    first = list(itertools.islice(batcher.stream(state), 8))  # into the second epoch
    saved = replace(state)
    assert (saved.epoch, saved.position) == (1, 2)
    rest = list(itertools.islice(batcher.stream(saved), 12))
    assert first + rest == straight


def test_ranks_get_disjoint_shards_of_equal_size():
    lens = lengths(205)
    shards = [LengthGroupedBatcher(lens, 10, seed=2, rank=r, world_size=3).epoch_batches(0) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen))
    whole = LengthGroupedBatcher(lens, 10, seed=2).epoch_batches(0)
    assert sorted(map(tuple, (b for s in shards for b in s))) == sorted(map(tuple, whole[:18]))
