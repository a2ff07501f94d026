"""`bgekit data validate` and `convert` on a file with broken lines among good ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.data import conversion as convert_module

MIXED = Path(__file__).parent / "data" / "broken" / "mixed.jsonl"

#: line -> (field, words the reason must contain); hand-checked against the fixture
BROKEN = {
    2: ("query", "empty query"),
    3: ("pos", "missing"),
    5: (None, "not valid JSON"),
    6: ("pos", "list of strings"),
    8: ("pos_scores", "1 scores for 2 passages"),
    9: ("neg", "identical to a positive"),
    11: ("pos_scores", "out of range"),
}
GOOD = [1, 4, 10, 12]


def _run(*args: str):
    return CliRunner().invoke(main, ["data", *args])


def test_validate_names_each_broken_line_and_reason():
    result = _run("validate", str(MIXED), "--score-range", "0:1", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert (report["format"], report["encoding"]) == ("jsonl", "utf-8")
    assert (report["total"], report["valid"], report["invalid"]) == (11, 4, 7)
    found = {e["line"]: e for e in report["errors"]}
    assert sorted(found) == sorted(BROKEN)
    for line, (field, words) in BROKEN.items():
        assert found[line]["field"] == field
        assert words in found[line]["reason"], found[line]
    warnings = {w["kind"]: w for w in report["warnings"]}
    assert warnings["no_negatives"]["lines"] == [12]


def test_validate_text_report_and_exit_codes(tmp_path):
    result = _run("validate", str(MIXED))
    assert result.exit_code == 1
    assert "11 total, 5 valid, 6 invalid" in result.output  # no --score-range: 1.7 is a fine logit
    assert f"{MIXED}:2  $.query  empty query" in result.output
    good = tmp_path / "good.jsonl"
    good.write_text("".join(line + "\n" for i, line in enumerate(MIXED.read_text(encoding="utf-8").splitlines(), 1)
                            if i in GOOD), encoding="utf-8")
    ok = _run("validate", str(good))
    assert ok.exit_code == 0, ok.output
    assert "4 total, 4 valid, 0 invalid" in ok.output


def test_convert_keeps_every_good_row_and_rejects_exactly_the_bad(tmp_path):
    out = tmp_path / "train.jsonl"
    result = _run("convert", str(MIXED), str(out))
    assert result.exit_code == 0, result.output
    source = MIXED.read_text(encoding="utf-8").splitlines()
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected_good = [json.loads(source[i - 1]) for i in sorted(GOOD + [11])]  # 11 is valid without a score range
    assert [r["query"] for r in written] == [r["query"] for r in expected_good]
    for got, row in zip(written, expected_good):
        assert got["pos"] == row["pos"] and got["neg"] == row.get("neg", [])
    rejected = [json.loads(line) for line in (tmp_path / "train.jsonl.rejected.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in rejected) == sorted(set(BROKEN) - {11})
    assert all(r["reason"] and r["path"] == str(MIXED) for r in rejected)
    assert next(r for r in rejected if r["line"] == 5)["raw"].startswith('{"query": "bad json"')


def test_strict_stops_at_first_bad_row_and_writes_nothing(tmp_path):
    out = tmp_path / "train.jsonl"
    result = _run("convert", str(MIXED), str(out), "--strict")
    assert result.exit_code == 1
    assert ":2" in result.output and "empty query" in result.output
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_interrupted_convert_leaves_the_old_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "train.jsonl"
    out.write_text("previous complete file\n", encoding="utf-8")
    real_open = convert_module.open_data

    def interrupted(*args, **kwargs):
        data = real_open(*args, **kwargs)
        rows = data.rows

        def rows_then_interrupt(**params):
            for i, row in enumerate(rows(**params)):
                if i == 3:
                    raise KeyboardInterrupt
                yield row

        data.rows = rows_then_interrupt
        return data

    monkeypatch.setattr(convert_module, "open_data", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_module.convert(MIXED, out)
    assert out.read_text(encoding="utf-8") == "previous complete file\n"
    assert sorted(os.listdir(tmp_path)) == ["train.jsonl"]  # no temp file left behind


def test_convert_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"query": "q", "pos": ["p"]}\n', encoding="utf-8")
    result = _run("convert", str(src), str(src))
    assert result.exit_code == 1 and "overwrite the input" in result.output


def test_unknown_format_suggests_a_name():
    result = _run("validate", str(MIXED), "--format", "jsonlines")
    assert result.exit_code == 1 and "did you mean 'jsonl'" in result.output


def test_tokenizer_length_warning(tmp_path):
    from bgekit.testing import tiny_encoder

    model = tiny_encoder(tmp_path / "tiny")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"query": "q", "pos": ["长江是中国最长的河流。" * 20], "neg": ["短。"]},
                               ensure_ascii=False) + "\n" + json.dumps({"query": "q2", "pos": ["短。"], "neg": ["n"]})
                    + "\n", encoding="utf-8")
    result = _run("validate", str(data), "--tokenizer", str(model), "--max-length", "16", "--json")
    assert result.exit_code == 0, result.output
    warnings = {w["kind"]: w for w in json.loads(result.output)["warnings"]}
    assert warnings["too_long"]["lines"] == [1]


def test_validate_in_a_real_subprocess():
    proc = subprocess.run([sys.executable, "-m", "bgekit.cli", "data", "validate", str(MIXED), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["invalid"] == 6
