"""Batch tensors: instructions, max lengths, passage layout, teacher scores."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from bgekit.train.collate import Collator
from bgekit.train.sampling import TrainGroup


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text)["input_ids"]


def rows(features) -> list[list[int]]:
    """Each row's ids without padding."""
    return [ids_[mask.bool()].tolist() for ids_, mask in zip(features["input_ids"], features["attention_mask"])]


def test_instructions_and_prompt_override(tokenizer):
    collate = Collator(tokenizer, query_max_length=64, passage_max_length=64,
                       query_instruction="What is ", passage_instruction="Chapter ")
    batch = collate([TrainGroup("the capital", ["Beijing", "the river"]),
                     TrainGroup("the river", ["Yangtze", "the capital"], prompt="Which river: ")])
    assert rows(batch.queries) == [ids(tokenizer, "What is the capital"),
                                   ids(tokenizer, "Which river: the river")]  # the example's own prompt wins
    # passages group after group, positive first: query i's positive is row i * group_size
    assert rows(batch.passages) == [ids(tokenizer, "Chapter " + t)
                                    for t in ("Beijing", "the river", "Yangtze", "the capital")]
    assert batch.group_size == 2 and batch.num_queries == 2 and batch.num_passages == 4
    assert set(batch.queries) == {"input_ids", "attention_mask"}


def test_max_lengths_and_padding_to_the_longest(tokenizer):
    long = "Beijing is the capital of the People's Republic of China. " * 10
    collate = Collator(tokenizer, query_max_length=8, passage_max_length=12)
    batch = collate([TrainGroup(long, [long, "river"])])
    assert batch.queries["input_ids"].shape == (1, 8)
    assert batch.passages["input_ids"].shape == (2, 12)
    assert batch.passages["attention_mask"][1].sum() < 12  # the short one is padded, and masked
    assert batch.num_tokens() == int(batch.queries["attention_mask"].sum() + batch.passages["attention_mask"].sum())


def test_teacher_scores_only_when_every_group_has_them(tokenizer):
    collate = Collator(tokenizer, query_max_length=8, passage_max_length=8)
    scored = [TrainGroup("a", ["b", "c"], teacher_scores=[0.9, 0.1]), TrainGroup("d", ["e", "f"], [0.8, 0.3])]
    batch = collate(scored)
    assert torch.equal(batch.teacher_scores, torch.tensor([[0.9, 0.1], [0.8, 0.3]]))
    assert collate([scored[0], TrainGroup("d", ["e", "f"])]).teacher_scores is None
