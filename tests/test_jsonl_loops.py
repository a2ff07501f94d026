"""Strict JSON-lines readers go through bgekit.data.jsonlines and name the bad line as file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgekit.data.jsonlines import JsonProblem, iter_json_lines
from bgekit.errors import BgekitError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_iter_json_lines_skips_blank_lines_and_never_raises(tmp_path):
    path = write(tmp_path / "x.jsonl", '{"a": 1}\n\n[1, 2\n' + "[" * 100_000 + "\n")
    rows = list(iter_json_lines(path))
    assert [(line, text) for line, _, text in rows][:2] == [(1, '{"a": 1}'), (3, "[1, 2")]
    assert rows[0][1] == {"a": 1}
    assert all(isinstance(value, JsonProblem) for _, value, _ in rows[1:]) and rows[2][0] == 4


def test_passages_and_query_files(tmp_path):
    from bgekit.data.pairs import file_queries, read_passages

    bad = write(tmp_path / "p.jsonl", '{"id": "a", "text": "one"}\n{"id": "b", "text": \n')
    with pytest.raises(BgekitError, match=r"p.jsonl:2: not valid JSON \(.*\); fix or remove the line"):
        read_passages(bad)
    passages = read_passages(write(tmp_path / "ok.jsonl", '{"id": "a", "text": "one two"}\n'))
    queries = write(tmp_path / "q.txt", 'a\tfirst\n{"passage_id": "a", "query": "second"}\n')
    assert [q.text for q in file_queries(queries, passages)] == ["first", "second"]
    with pytest.raises(BgekitError, match=r"q.jsonl:1: not valid JSON"):
        list(file_queries(write(tmp_path / "q.jsonl", '{"passage_id": \n'), passages))


def test_rerank_pairs(tmp_path):
    from bgekit.rerank import read_pairs

    with pytest.raises(BgekitError, match=r"r.jsonl:1: this looks like a TREC run"):
        read_pairs(write(tmp_path / "r.jsonl", "q1 Q0 d1 1 2.5 run\n"))
    with pytest.raises(BgekitError, match=r"r.jsonl:2: not valid JSON"):
        read_pairs(write(tmp_path / "r.jsonl", '{"query": "q", "passage": "p"}\n{"query": \n'))
    assert read_pairs(write(tmp_path / "r.jsonl", '\n{"query": "q", "passage": "p"}\n')) == [
        {"query": "q", "passage": "p"}]


def test_bench_texts(tmp_path):
    from bgekit.commands.bench import _read_texts

    assert _read_texts(str(write(tmp_path / "t.txt", "one\n\n two\n"))) == ["one", " two"]
    assert _read_texts(str(write(tmp_path / "t.jsonl", '{"text": "a"}\n\n{"text": 2}\n'))) == ["a", "2"]
    for text in ('{"text": "a"}\n["b"]\n', '{"text": "a"}\n{"txt": "b"}\n', '{"text": "a"}\nnope\n'):
        with pytest.raises(BgekitError, match=r"t.jsonl:2: expected a JSON object with a 'text'"):
            _read_texts(str(write(tmp_path / "t.jsonl", text)))


def test_teacher_progress_file(tmp_path):
    from bgekit.teacher import _load_progress

    path = tmp_path / "progress.jsonl"
    header = json.dumps({"fingerprint": "f"}) + "\n"
    write(path, header + json.dumps({"row": 0, "pos": [1.0], "neg": [0.5]}) + '\n{"row": 1, "po')
    assert _load_progress(path, "f") == {0: {"pos": [1.0], "neg": [0.5]}}
    assert path.read_text(encoding="utf-8").endswith("[0.5]}\n")  # the torn line is cut off
    with pytest.raises(BgekitError, match="belongs to another input"):
        _load_progress(path, "g")
    write(path, header + "{oops}\n")
    with pytest.raises(BgekitError, match=r"progress.jsonl:2: not valid JSON .*; delete the file"):
        _load_progress(path, "f")
    write(path, header + '{"row": 3}\n')
    with pytest.raises(BgekitError, match=r"progress.jsonl:2: expected a record with row, pos and neg"):
        _load_progress(path, "f")
