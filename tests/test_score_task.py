"""``task: score`` writes what ``bgekit score`` writes, from a recipe."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.testing import tiny_cross_encoder

ROWS = [{"query": f"长江有多长？{i}", "pos": [f"长江全长约六千三百公里。{i}"], "neg": [f"北京是首都。{i}", "红楼梦"]}
        for i in range(3)]


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    return tiny_cross_encoder(tmp_path_factory.mktemp("tiny-reranker"))


def test_task_score_equals_bgekit_score(tmp_path, reranker_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS),
                                          encoding="utf-8")
    (tmp_path / "score.yaml").write_text(
        f"task: score\noutput_dir: runs/s\nmodel: {{name_or_path: {reranker_dir}}}\n"
        f"data: {{train: train.jsonl}}\nscore: {{reranker: {reranker_dir}, max_length: 64, batch_size: 4}}\n",
        encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "score.yaml", "device.name=cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["rows"] == 3 and summary["pairs_scored"] == 9
    direct = CliRunner().invoke(main, ["score", "--reranker", str(reranker_dir), "--input", "train.jsonl",
                                       "--output", "direct.jsonl", "--max-length", "64", "--batch-size", "4",
                                       "--device", "cpu"])
    assert direct.exit_code == 0, direct.output
    from_task = [json.loads(line) for line in (tmp_path / "runs/s/scored.jsonl").read_text().splitlines()]
    from_command = [json.loads(line) for line in (tmp_path / "direct.jsonl").read_text().splitlines()]
    assert from_task == from_command and all(len(r["neg_scores"]) == 2 for r in from_task)


def test_task_score_needs_a_teacher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.jsonl").write_text(json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    (tmp_path / "score.yaml").write_text("task: score\noutput_dir: runs/s\nmodel: {name_or_path: m}\n"
                                         "data: {train: train.jsonl}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "score.yaml", "device.name=cpu"])
    assert result.exit_code == 1
    assert "score.reranker: the teacher cross-encoder is not set" in result.output
    assert not (tmp_path / "runs/s").exists()  # a failed run leaves nothing behind
