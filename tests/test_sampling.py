"""Training groups: positive first, enough negatives, never a positive as a negative, reproducible."""

from __future__ import annotations

from collections import Counter

import pytest

from bgekit.data.example import Example
from bgekit.errors import BgekitError
from bgekit.train.sampling import GroupSampler


def make_examples() -> list[Example]:
    return [
        Example(query="q0", pos=["p0a", "p0b"], neg=[f"n0-{i}" for i in range(10)]),
        Example(query="q1", pos=["p1"], neg=["n1-a", "n1-b"]),  # too few for group 6
        Example(query="q2", pos=["p2"], neg=[]),  # none: borrowed from other examples
        Example(query="q3", pos=["p3"], neg=["p3 ", "n3"]),  # a "negative" equal to the positive
    ]


def test_group_has_positive_first_and_group_size_passages():
    sampler = GroupSampler(make_examples(), group_size=6, seed=1)
    for index, example in enumerate(sampler.examples):
        group = sampler.sample(index, epoch=0)
        assert len(group.passages) == 6
        assert group.passages[0] in example.pos
        assert group.query == example.query


def test_negatives_are_distinct_when_there_are_enough():
    group = GroupSampler(make_examples(), group_size=6, seed=1).sample(0)
    negatives = group.passages[1:]
    assert len(set(negatives)) == 5
    assert set(negatives) <= {f"n0-{i}" for i in range(10)}


def test_too_few_negatives_are_resampled_with_replacement():
    group = GroupSampler(make_examples(), group_size=6, seed=1).sample(1)
    counts = Counter(group.passages[1:])
    assert set(counts) == {"n1-a", "n1-b"}  # only its own negatives, each used more than once
    assert sum(counts.values()) == 5 and min(counts.values()) >= 2


def test_query_without_negatives_borrows_passages_of_other_examples():
    examples = make_examples()
    others = {p for i, e in enumerate(examples) if i != 2 for p in e.pos + e.neg}
    for epoch in range(5):
        group = GroupSampler(examples, group_size=4, seed=3).sample(2, epoch)
        assert all(p in others for p in group.passages[1:])
        assert "p2" not in group.passages[1:]


def test_a_negative_equal_to_a_positive_is_never_used():
    sampler = GroupSampler(make_examples(), group_size=5, seed=0)
    for epoch in range(10):
        group = sampler.sample(3, epoch)
        assert all(p.strip() != "p3" for p in group.passages[1:])
        assert group.passages[1:] == ["n3"] * 4


def test_borrowed_negative_never_equals_a_positive():
    # Every other example's passages equal this query's positive but one.
    examples = [Example(query="q", pos=["same"], neg=[])] + [
        Example(query=f"o{i}", pos=["same"], neg=["different"]) for i in range(3)
    ]
    for epoch in range(5):
        group = GroupSampler(examples, group_size=3, seed=epoch).sample(0, epoch)
        assert group.passages[1:] == ["different", "different"]


def test_no_usable_negative_anywhere_is_a_clear_error():
    examples = [Example(query="q", pos=["same"]), Example(query="r", pos=["same"])]
    with pytest.raises(BgekitError, match="negative"):
        GroupSampler(examples, group_size=2).sample(0)


def test_teacher_scores_follow_the_chosen_passages():
    pos = ["pa", "pb", "pc"]
    neg = [f"n{i}" for i in range(6)]
    score = {p: float(i) for i, p in enumerate(pos + neg)}
    example = Example(query="q", pos=pos, neg=neg, pos_scores=[score[p] for p in pos],
                      neg_scores=[score[n] for n in neg])
    sampler = GroupSampler([example], group_size=4, seed=5)
    for epoch in range(8):
        group = sampler.sample(0, epoch)
        assert group.teacher_scores == [score[p] for p in group.passages]


def test_borrowed_negatives_have_no_teacher_scores():
    examples = [Example(query="q", pos=["p"], pos_scores=[1.0]),
                Example(query="r", pos=["x"], neg=["y"], pos_scores=[1.0], neg_scores=[0.0])]
    assert GroupSampler(examples, group_size=2).sample(0).teacher_scores is None


def test_sampling_is_a_function_of_seed_epoch_and_index():
    examples = make_examples()
    a = GroupSampler(examples, group_size=4, seed=7)
    b = GroupSampler(examples, group_size=4, seed=7)
    # asked for in a different order: the same groups
    forward = [a.sample(i, 2) for i in range(4)]
    backward = [b.sample(i, 2) for i in reversed(range(4))][::-1]
    assert forward == backward
    epochs = {tuple(a.sample(0, e).passages) for e in range(6)}
    assert len(epochs) > 1  # a new epoch draws anew
    assert len({tuple(GroupSampler(examples, 4, seed=s).sample(0).passages) for s in range(6)}) > 1  # and a new seed


def test_prompt_travels_with_the_group():
    example = Example(query="q", pos=["p"], neg=["n"], prompt="Represent this: ")
    assert GroupSampler([example], group_size=2).sample(0).prompt == "Represent this: "


def graded_example() -> Example:
    return Example(query="q", pos=["p3", "p2", "p1"], neg=["n-a", "n-b"], pos_labels=[3.0, 2.0, 1.0],
                   pos_scores=[0.9, 0.6, 0.3], neg_scores=[0.1, 0.0])


def test_graded_groups_let_lower_graded_positives_fill_negative_slots_with_their_labels():
    example = graded_example()
    grade = dict(zip(example.pos, example.pos_labels)) | {"n-a": 0.0, "n-b": 0.0}
    score = dict(zip(example.pos, example.pos_scores)) | dict(zip(example.neg, example.neg_scores))
    seen_positive_as_negative = False
    for epoch in range(30):
        group = GroupSampler([example], group_size=3, seed=0, graded=True).sample(0, epoch)
        top = group.labels[0]
        assert group.labels == [grade[p] for p in group.passages]  # each passage carries its own label
        assert group.teacher_scores == [score[p] for p in group.passages]
        assert all(label < top for label in group.labels[1:])  # never a passage graded as high as the first
        seen_positive_as_negative |= any(label > 0 for label in group.labels[1:])
    assert seen_positive_as_negative


def test_without_graded_sampling_groups_stay_binary():
    """The embedder's sampler never puts a positive in a negative slot, graded or not."""
    for epoch in range(10):
        group = GroupSampler([graded_example()], group_size=3, seed=0).sample(0, epoch)
        assert group.labels is None and set(group.passages[1:]) <= {"n-a", "n-b"}
