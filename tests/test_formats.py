"""Every built-in format converts, with --from auto, to a hand-written canonical JSONL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.data.encoding import detect_encoding, detect_encoding_of_bytes
from bgekit.data.jsonstream import JsonSyntaxError, iter_json_array

FORMATS = Path(__file__).parent / "data" / "formats"

#: fixture directory -> the format detection must pick, and the encoding it must find
CASES = {
    "jsonl": ("jsonl", "utf-8"),
    "json": ("json", "utf-8"),
    "csv": ("csv", "utf-8"),
    "tsv": ("tsv", "utf-8"),
    "dureader": ("dureader", "utf-8"),
    "dureader_lines": ("dureader", "utf-8"),
    "msmarco_rows": ("msmarco", "utf-8"),
    "msmarco_triples": ("msmarco", "utf-8"),
    "msmarco_dir": ("msmarco", "per file"),
    "trec_xml": ("trec-xml", "utf-8"),
    "pairs_jsonl": ("pairs", "utf-8"),
    "pairs_tsv": ("pairs", "utf-8"),
    "beir": ("beir", "per file"),
    "gb18030": ("jsonl", "gb18030"),
    "utf8_bom": ("jsonl", "utf-8-sig"),
    "utf16": ("csv", "utf-16"),
}


def _input(case: str) -> Path:
    return next(p for p in (FORMATS / case).iterdir() if p.name.startswith("input"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_fixture_is_covered():
    assert sorted(p.name for p in FORMATS.iterdir() if p.is_dir()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_convert_auto_matches_expectation(case, tmp_path):
    fmt, encoding = CASES[case]
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["data", "convert", str(_input(case)), str(out), "--from", "auto"])
    assert result.exit_code == 0, result.output
    assert f"({fmt}, {encoding})" in result.output
    assert "0 rejected" in result.output
    assert _jsonl(out) == _jsonl(FORMATS / case / "expected.jsonl")
    assert not (tmp_path / "out.jsonl.rejected.jsonl").exists()


def test_chinese_round_trips_byte_for_byte(tmp_path):
    """GB18030 in, UTF-8 out: the characters are the same, not escaped."""
    out = tmp_path / "out.jsonl"
    CliRunner().invoke(main, ["data", "convert", str(_input("gb18030")), str(out)])
    source = _input("gb18030").read_bytes().decode("gb18030")
    written = out.read_text(encoding="utf-8")
    assert "\\u" not in written
    for row in (json.loads(line) for line in source.splitlines()):
        assert row["query"] in written and row["pos"][0] in written


def test_forced_encoding_is_used(tmp_path):
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["data", "convert", str(_input("gb18030")), str(out), "--encoding", "gbk"])
    assert result.exit_code == 0, result.output
    assert _jsonl(out) == _jsonl(FORMATS / "gb18030" / "expected.jsonl")
    wrong = CliRunner().invoke(main, ["data", "convert", str(_input("gb18030")), str(out), "--encoding", "utf-8",
                                      "--from", "jsonl"])
    assert wrong.exit_code == 1
    assert "cannot decode as utf-8" in wrong.output and ":1:" in wrong.output


@pytest.mark.parametrize("codec,expected", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("gbk", "gb18030"),
    ("gb2312", "gb18030"), ("utf-16", "utf-16"), ("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be"),
])
def test_encoding_detection(codec, expected, tmp_path):
    text = '{"query": "长江有多长？", "pos": ["长江全长约六千三百公里。"]}\n'
    path = tmp_path / "f.jsonl"
    path.write_bytes(text.encode(codec))
    assert detect_encoding(path) == expected
    assert path.read_bytes().decode(expected).lstrip("\ufeff") == text


def test_detection_tolerates_a_character_cut_at_the_sample_edge():
    raw = "长江".encode("utf-8")
    assert detect_encoding_of_bytes(raw[:-1], complete=False) == "utf-8"
    assert detect_encoding_of_bytes("长江".encode("gb18030")[:-1], complete=True) is None


def test_undecodable_file_asks_for_an_encoding(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\x80\x80\x80\xff\xff\x00\xff\x81")
    result = CliRunner().invoke(main, ["data", "validate", str(path)])
    assert result.exit_code == 1
    assert "--encoding" in result.output


def test_json_array_streams_across_chunk_edges(monkeypatch):
    import bgekit.data.jsonstream as js

    monkeypatch.setattr(js, "CHUNK_CHARS", 5)
    text = '[\n {"query": "长江", "n": 12345678},\n {"query": "b"}\n]'
    items = list(iter_json_array(io.StringIO(text), "x.json"))
    assert items == [(2, {"query": "长江", "n": 12345678}), (3, {"query": "b"})]
    broken = list(iter_json_array(io.StringIO('[{"query": "a"},\n{"query": }]'), "x.json"))
    assert broken[0] == (1, {"query": "a"})
    assert isinstance(broken[1][1], JsonSyntaxError) and broken[1][1].line == 2


def test_reappearing_query_in_grouped_rows_is_reported(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a\tp1\t1\nb\tp2\t1\na\tp3\t0\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["data", "validate", str(path), "--json"])
    report = json.loads(result.output)
    assert report["format"] == "pairs" and report["valid"] == 2 and report["invalid"] == 1
    assert report["errors"][0]["line"] == 3 and "already grouped at line 1" in report["errors"][0]["reason"]


def test_trec_xml_declared_gb18030(tmp_path):
    path = tmp_path / "topics.xml"
    xml = ('<?xml version="1.0" encoding="GB18030"?>\n<topics><topic><query>问题</query>'
           '<positive>答案。</positive></topic></topics>\n')
    path.write_bytes(xml.encode("gb18030"))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["data", "convert", str(path), str(out)])
    assert result.exit_code == 0, result.output
    assert _jsonl(out) == [{"query": "问题", "pos": ["答案。"], "neg": []}]


@pytest.mark.parametrize("labels, words", [
    ([2, 1, 1], "3 labels for 2 passages"),
    ([2, 0], "must be finite and > 0"),
    (["high", 1], "list of numbers"),
])
def test_graded_labels_of_positives_are_checked(labels, words):
    from bgekit.data.example import RowError, example_from_mapping

    row = {"query": "q", "pos": ["a", "b"], "neg": ["c"], "pos_labels": labels}
    error = example_from_mapping(row, "train.jsonl", 7)
    assert isinstance(error, RowError) and error.field == "pos_labels" and words in error.reason
    good = example_from_mapping({**row, "pos_labels": [3, 1]}, "train.jsonl", 7)
    assert good.pos_labels == [3.0, 1.0] and good.to_json()["pos_labels"] == [3.0, 1.0]
