"""``bgekit mine`` end to end with a tiny real model: output rows, kept fields, summary, cache, errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bgekit.cli import main

ROWS = [
    {"query": "长江有多长", "pos": ["长江是中国最长的河流，全长约六千三百公里。"], "neg": ["旧的负例"],
     "pos_scores": [0.9], "neg_scores": [0.1], "source": "a"},
    {"query": "What is the capital of China?", "pos": ["Beijing is the capital of the People's Republic of China."],
     "source": "b"},
]
POOL = ["北京是中华人民共和国的首都。", "红楼梦是中国古典四大名著之一。", "机器学习是人工智能的一个分支。",
        "The Yangtze is the longest river in China.", "Dream of the Red Chamber is a classical novel.",
        "今天天气很好，我们去公园散步吧！", "Machine learning studies how computers learn from data."]


def _write(tmp_path):
    train, pool = tmp_path / "train.jsonl", tmp_path / "pool.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    pool.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in POOL), encoding="utf-8")
    return train, pool


def test_mine_writes_canonical_rows_and_reuses_the_cache(tmp_path, tiny_model_dir):
    train, pool = _write(tmp_path)
    out, cache = tmp_path / "mined.jsonl", tmp_path / "cache"
    args = ["mine", "--input", str(train), "--output", str(out), "--model", str(tiny_model_dir), "--corpus", str(pool),
            "--range", "0-5", "--num-negatives", "3", "--cache-dir", str(cache), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["stats"]["rows"] == 2 and summary["stats"]["negatives_per_row"] == 3
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["source"] for r in rows] == ["a", "b"]  # other fields kept, order kept
    for row in rows:
        assert len(row["neg"]) == 3 and set(row["neg"]) <= set(POOL)
        assert "pos_scores" not in row and "neg_scores" not in row  # stale teacher scores dropped
    assert summary["stats"]["dropped_teacher_scores"] == 1
    assert len(list(cache.glob("*.npz"))) == 1

    again = CliRunner().invoke(main, args[:-1] + ["--output", str(tmp_path / "again.jsonl")])
    assert again.exit_code == 0, again.output
    assert "mined 2 rows" in again.output and "rows filled at random: 0" in again.output
    assert (tmp_path / "again.jsonl").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert len(list(cache.glob("*.npz"))) == 1  # same model and pool: the cache file was reused


def test_mine_subprocess_bm25_with_scores(tmp_path, run_bgekit):
    train, pool = _write(tmp_path)
    out = tmp_path / "mined.jsonl"
    done = run_bgekit("mine", "--input", str(train), "--output", str(out), "--miner", "bm25", "--corpus", str(pool),
                      "--range", "0-10", "--num-negatives", "2", "--sampling", "top", "--scores")
    assert done.returncode == 0, done.stderr
    assert "negatives per row: 2.00" in done.stdout
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(len(r["neg_scores"]) == 2 and len(r["pos_scores"]) == 1 for r in rows)
    assert all(r["neg_scores"] == sorted(r["neg_scores"], reverse=True) for r in rows)  # top sampling: best first


def test_mine_errors_name_the_problem(tmp_path):
    train, pool = _write(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": []}\n', encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["mine", "--input", str(bad), "--output", str(tmp_path / "o.jsonl"),
                                  "--miner", "random"])
    assert result.exit_code == 1 and "bad.jsonl:1" in result.output and "pos" in result.output
    result = runner.invoke(main, ["mine", "--input", str(train), "--output", str(tmp_path / "o.jsonl"),
                                  "--miner", "bm25", "--param", "nprob=3"])
    assert result.exit_code == 1 and "has no parameter 'nprob'" in result.output
    result = runner.invoke(main, ["mine", "--input", str(train), "--output", str(tmp_path / "o.jsonl"),
                                  "--miner", "bm25", "--range", "10"])
    assert result.exit_code == 1 and "START-END" in result.output
    result = runner.invoke(main, ["mine", "--input", str(train), "--output", str(tmp_path / "o.jsonl"),
                                  "--miner", "denes"])
    assert result.exit_code == 1 and "did you mean 'dense'" in result.output
    assert not (tmp_path / "o.jsonl").exists()
