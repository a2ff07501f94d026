"""The BM25 tokenizer keeps every script, and both BM25 users share one index wrapper."""

from __future__ import annotations

import pytest

pytest.importorskip("bm25s")

from bgekit.data.lexical import Bm25Index, MixedTokenizer  # noqa: E402


@pytest.mark.parametrize("text, expected", [
    ("Реки текут к морю", {"рек", "текут", "мор"}),             # Russian: kept, lower-cased, stemmed
    ("서울은 한국의 수도입니다", {"서울은", "한국의", "수도입니다"}),   # Korean: word runs kept
    ("القاهرة عاصمة مصر", {"قاهر", "عاصم", "مصر"}),              # Arabic: kept and stemmed
    ("東京はにほんのしゅとです", {"東京", "はにほんのしゅとです"}),      # Japanese: kanji through jieba, kana kept
    ("Ἀθῆναι πόλις", {"ἀθῆναι", "πολισ"}),                       # Greek: kept and stemmed
])
def test_every_script_keeps_its_words(text, expected):
    tokens = MixedTokenizer()(text)
    assert tokens, f"{text!r} lost every token"
    assert expected <= set(tokens), tokens


def test_russian_korean_arabic_and_kana_are_never_empty():
    tokenize = MixedTokenizer()
    for text in ("Москва", "한국어", "مرحبا", "ひらがな", "カタカナ"):
        assert len(tokenize(text)) == 1, text


def test_chinese_is_segmented_and_english_stemmed_without_stop_words():
    tokens = MixedTokenizer()("北京是中国的首都 The rivers were running")
    assert {"北京", "中国", "首都"} <= set(tokens)
    assert {"river", "run"} <= set(tokens) and "the" not in tokens


def test_bm25_finds_russian_and_korean_passages():
    passages = ["Москва — столица России", "Сеул — столица Кореи", "서울은 한국의 수도입니다", "Paris is in France"]
    index = Bm25Index(passages)
    assert index.search(["столица России"], 1) == [[0]]
    assert index.search(["한국의 수도"], 1) == [[2]]
    assert index.search(["nothing shared"], 3) == [[]]  # no shared term: nothing retrieved


def test_the_miner_and_data_pairs_use_the_same_wrapper():
    from bgekit_miners.bm25 import Bm25Retriever

    from bgekit.mine.settings import MiningSettings

    retriever = Bm25Retriever(MiningSettings())
    assert isinstance(retriever.bm25, Bm25Index)
