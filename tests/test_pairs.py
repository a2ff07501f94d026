"""Training pairs from passages: ICT queries, BM25 negatives outside the neighbours, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import bgekit
from bgekit.cli import main
from bgekit.data.lexical import Bm25Index, MixedTokenizer
from bgekit.data.sentences import split_sentences
from bgekit.testing import registered_plugin

TOPICS = [
    ("rivers", ["长江是中国最长的河流。长江发源于青藏高原。长江流入东海。",
                "黄河是中国第二长的河流。黄河流经黄土高原。黄河的泥沙很多。",
                "The Yangtze river flows east. The Yangtze river is very long. Rivers carry water to the sea."]),
    ("cities", ["北京是中国的首都。北京有故宫和长城。北京的冬天很冷。",
                "上海是一个大城市。上海位于长江入海口。上海的港口很繁忙。",
                "Beijing is the capital city. Beijing has many old palaces. The city is cold in winter."]),
    ("animals", ["大熊猫生活在四川。大熊猫主要吃竹子。大熊猫是中国的国宝。",
                 "The panda eats bamboo. Pandas live in the mountains of Sichuan. A panda sleeps a lot."]),
]


@pytest.fixture
def passages(tmp_path) -> Path:
    path = tmp_path / "passages.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for doc, texts in TOPICS:
            for pos, text in enumerate(texts):
                fh.write(json.dumps({"id": f"{doc}#{pos}", "doc_id": doc, "position": pos, "text": text,
                                     "chapter": f"{doc} chapter"}, ensure_ascii=False) + "\n")
    return path


def _pairs(passages: Path, out: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["data", "pairs", str(passages), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _by_id(passages: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, passages.read_text(encoding="utf-8").splitlines())}


def test_ict_query_is_a_sentence_removed_from_its_positive(passages, tmp_path):
    rows = _pairs(passages, tmp_path / "t.jsonl", "--queries-per-passage", "2", "--negatives", "0")
    source = _by_id(passages)
    assert len(rows) == 2 * len(source)
    for row in rows:
        original = source[row["passage_id"]]["text"]
        sentences = split_sentences(original)
        assert row["query"] in sentences
        assert row["query"] not in row["pos"][0]
        assert split_sentences(row["pos"][0]) == [s for s in sentences if s != row["query"]]
        assert row["neg"] == []


def test_negatives_come_from_bm25_and_never_from_neighbours(passages, tmp_path):
    rows = _pairs(passages, tmp_path / "t.jsonl", "--negatives", "2", "--exclude-window", "1", "--pool", "5")
    source = _by_id(passages)
    texts = {r["text"]: r for r in source.values()}
    index = Bm25Index([r["text"] for r in source.values()])
    ordered = list(source.values())
    with_negatives = 0
    for row in rows:
        own = source[row["passage_id"]]
        hits = {ordered[i]["text"] for i in index.search([row["query"]], len(ordered))[0]}
        for neg in row["neg"]:
            other = texts[neg]
            assert other["id"] != own["id"]
            assert not (other["doc_id"] == own["doc_id"] and abs(other["position"] - own["position"]) <= 1)
            assert neg in hits  # shares terms with the query: a BM25 hit, not a random passage
        with_negatives += bool(row["neg"])
    assert with_negatives >= len(rows) // 2


def test_same_seed_same_output_other_seed_may_differ(passages, tmp_path):
    args = ("--queries-per-passage", "2", "--negatives", "2", "--pool", "6")
    a = _pairs(passages, tmp_path / "a.jsonl", *args, "--seed", "7")
    b = _pairs(passages, tmp_path / "b.jsonl", *args, "--seed", "7")
    assert a == b
    others = [_pairs(passages, tmp_path / f"c{s}.jsonl", *args, "--seed", str(s)) for s in (1, 2, 3)]
    assert any(o != a for o in others)


def test_title_and_file_methods(passages, tmp_path):
    rows = _pairs(passages, tmp_path / "t.jsonl", "--method", "title", "--negatives", "0")
    assert {(r["query"], r["pos"][0]) for r in rows} == {
        (f"{doc} chapter", text) for doc, texts in TOPICS for text in texts}
    queries = tmp_path / "queries.tsv"
    queries.write_text("animals#0\t熊猫吃什么？\ncities#2\tcapital of China\n", encoding="utf-8")
    rows = _pairs(passages, tmp_path / "f.jsonl", "--method", f"file:{queries}", "--negatives", "1")
    assert [(r["query"], r["passage_id"]) for r in rows] == [("熊猫吃什么？", "animals#0"), ("capital of China", "cities#2")]
    assert rows[0]["pos"] == [TOPICS[2][1][0]]
    bad = tmp_path / "bad.tsv"
    bad.write_text("nope#9\tquery\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["data", "pairs", str(passages), "--out", str(tmp_path / "x.jsonl"),
                                       "--method", f"file:{bad}"])
    assert result.exit_code == 1 and "bad.tsv:1" in result.output and "nope#9" in result.output


def test_generate_needs_a_plugin_and_uses_it(passages, tmp_path):
    result = CliRunner().invoke(main, ["data", "pairs", str(passages), "--out", str(tmp_path / "x.jsonl"),
                                       "--method", "generate"])
    assert result.exit_code == 1 and "bgekit_generate_queries" in result.output

    class Writer:
        @bgekit.hookimpl
        def bgekit_generate_queries(self, passages, n):
            return [[f"q{i} about {p[:4]}" for i in range(n)] for p in passages]

    with registered_plugin(Writer()):
        rows = _pairs(passages, tmp_path / "g.jsonl", "--method", "generate", "--queries-per-passage", "2",
                      "--negatives", "0")
    assert len(rows) == 2 * sum(len(t) for _, t in TOPICS)
    assert rows[0]["query"] == f"q0 about {TOPICS[0][1][0][:4]}"


def test_mixed_tokenizer_segments_chinese_and_stems_english():
    tokens = MixedTokenizer()("北京是中国的首都 The rivers were running")
    assert {"北京", "中国", "首都"} <= set(tokens)
    assert {"river", "run"} <= set(tokens) and "the" not in tokens


def test_missing_dependency_names_the_extra(monkeypatch):
    import builtins

    from bgekit.data import lexical
    from bgekit.errors import BgekitError

    real_import = builtins.__import__

    def no_stemmer(name, *args, **kwargs):
        if name == "Stemmer":
            raise ImportError("No module named 'Stemmer'", name="Stemmer")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_stemmer)
    with pytest.raises(BgekitError, match=r"pip install 'bgekit\[pairs\]'"):
        lexical.MixedTokenizer()
