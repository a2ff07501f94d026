"""Result tables: distinct labels for same-named folders, numbers never cut, plain text off a terminal."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from bgekit.cli import main
from bgekit.evaluate.display import distinct_labels, plain_table, show_table


def test_distinct_labels_take_the_shortest_distinguishing_suffix():
    assert distinct_labels(["runs/a/model", "runs/b/model"]) == ["a/model", "b/model"]
    assert distinct_labels(["x/base", "y/tuned"]) == ["base", "tuned"]
    assert distinct_labels(["/data/one/run/model", "/data/two/run/model/"]) == ["one/run/model", "two/run/model"]
    assert distinct_labels(["model", "runs/model"]) == ["model", "runs/model"]
    assert distinct_labels(["runs/m", "runs/m"]) == ["m", "m"]  # the same folder twice


def _wide_table() -> Table:
    table = Table(title="a title")
    table.add_column("metric")
    table.add_column("/very/long/path/to/some/folder/named/model\n(300 queries)", justify="right")
    table.add_row("ndcg@10", "0.2631")
    table.add_row("recall@100", "[green]+0.3193[/]")
    return table


def test_a_table_wider_than_the_terminal_is_printed_plain_and_whole():
    out = io.StringIO()
    show_table(_wide_table(), Console(file=out, force_terminal=True, width=30))
    text = out.getvalue()
    assert "…" not in text and "0.2631" in text and "+0.3193" in text
    assert "/very/long/path/to/some/folder/named/model (300 queries)" in text
    assert "\x1b[" not in text and "┃" not in text


def test_plain_table_aligns_columns_without_markup():
    lines = plain_table(_wide_table()).splitlines()
    assert lines[0] == "a title"
    assert lines[2].startswith("ndcg@10") and lines[2].endswith("0.2631")
    assert lines[3].endswith("+0.3193") and len(lines[2]) == len(lines[3])  # right-justified numbers


@pytest.fixture
def beir(tmp_path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = ["北京是中国的首都", "长江是最长的河流", "机器学习是人工智能的分支", "Beijing is the capital of China"]
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": t}, ensure_ascii=False) + "\n"
                                               for i, t in enumerate(docs)), encoding="utf-8")
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": t[:4]}, ensure_ascii=False)
                                                + "\n" for i, t in enumerate(docs)), encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(4)), encoding="utf-8")
    return beir


def test_compare_labels_two_folders_named_model_apart_and_prints_plain_numbers(tiny_model_dir, beir, tmp_path):
    for side in ("a", "b"):
        shutil.copytree(tiny_model_dir, tmp_path / side / "model")
    result = CliRunner().invoke(main, ["compare", "--baseline", str(tmp_path / "a" / "model"),
                                       "--candidate", str(tmp_path / "b" / "model"), "--eval-data", str(beir),
                                       "--samples", "50", "--device", "cpu", "--top-k", "4"])
    assert result.exit_code == 0, result.output
    assert "baseline: a/model" in result.stdout and "candidate: b/model" in result.stdout
    assert "…" not in result.stdout and "\x1b[" not in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("ndcg@10"))
    assert len(re.findall(r"\d\.\d{4}", row)) == 2  # both values whole


def test_eval_pipeline_labels_and_reports_both_phases(tiny_model_dir, beir, tmp_path, monkeypatch):
    from bgekit.testing import tiny_cross_encoder

    monkeypatch.setenv("BGEKIT_PROGRESS_SECONDS", "0")
    shutil.copytree(tiny_model_dir, tmp_path / "retriever" / "model")
    tiny_cross_encoder(tmp_path / "reranker" / "model")
    result = CliRunner().invoke(main, ["eval", "pipeline", "--retriever", str(tmp_path / "retriever" / "model"),
                                       "--reranker", str(tmp_path / "reranker" / "model"), "--eval-data", str(beir),
                                       "--retrieve-top", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "retriever/model + reranker/model" in result.stdout and "model + model" not in result.stdout
    assert re.search(r"^encoding: 8/8 done in ", result.stderr, re.M)  # 4 documents + 4 queries
    assert re.search(r"^reranking: 12/12 done in ", result.stderr, re.M)  # 4 queries x top 3
