"""``bgekit rerank``: scored pairs in input order, re-ordered runs, clear errors, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bgekit.cli import main
from bgekit.models.cross_encoder import CrossEncoder
from bgekit.testing import tiny_cross_encoder

PAIRS = [
    {"id": 1, "query": "What is the capital of China?", "passage": "Beijing is the capital of China."},
    {"id": 2, "query": "What is the capital of China?", "passage": "长江是中国最长的河流，全长约六千三百公里。"},
    {"id": 3, "query": "长江有多长？", "passage": "The Yangtze is the longest river in China, about 6,300 km long."},
]
CORPUS = [{"id": "d1", "title": "Beijing", "text": "Beijing is the capital of China."},
          {"id": "d2", "text": "长江是中国最长的河流。"},
          {"id": "d3", "text": "Machine learning studies how computers learn from data."}]
QUERIES = [{"id": "q1", "text": "What is the capital of China?"}, {"id": "q2", "text": "长江有多长？"}]
RUN = ["q1 Q0 d3 1 9.0 bm25", "q1 Q0 d2 2 8.0 bm25", "q1 Q0 d1 3 7.0 bm25", "q2 Q0 d2 1 5.0 bm25",
       "q2 Q0 d1 2 4.0 bm25"]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory) -> Path:
    return tiny_cross_encoder(tmp_path_factory.mktemp("reranker"))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["rerank", *args])


def test_pairs_get_the_models_scores_in_input_order(reranker, tmp_path):
    src = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    result = invoke("--model", str(reranker), "--input", str(src), "--output", str(tmp_path / "out.jsonl"),
                    "--batch-size", "2")
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "score"} for r in rows] == PAIRS  # lines kept, in order
    expected = CrossEncoder.from_pretrained(reranker).score([(p["query"], p["passage"]) for p in PAIRS])
    np.testing.assert_allclose([r["score"] for r in rows], expected, atol=1e-5)

    result = invoke("--model", str(reranker), "--input", str(src), "--output", str(tmp_path / "norm.jsonl"),
                    "--normalize")
    assert result.exit_code == 0, result.output
    normalized = [json.loads(x)["score"] for x in (tmp_path / "norm.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(normalized, 1 / (1 + np.exp(-expected)), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["norm.jsonl", "out.jsonl", "pairs.jsonl"]  # no temp files


def test_a_run_is_reordered_by_the_reranker(reranker, tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    run = tmp_path / "bm25.trec"
    run.write_text("\n".join(RUN) + "\n")
    result = invoke("--model", str(reranker), "--input", str(run), "--queries", str(queries), "--corpus",
                    str(corpus), "--top-k", "2", "--output", str(tmp_path / "reranked.trec"))
    assert result.exit_code == 0, result.output
    lines = [x.split() for x in (tmp_path / "reranked.trec").read_text().splitlines()]
    model = CrossEncoder.from_pretrained(reranker)
    texts = {"d1": "Beijing Beijing is the capital of China.", "d2": CORPUS[1]["text"], "d3": CORPUS[2]["text"]}
    for qid, query, top in (("q1", QUERIES[0]["text"], ["d3", "d2"]), ("q2", QUERIES[1]["text"], ["d2", "d1"])):
        scores = model.score([(query, texts[d]) for d in top])
        best_first = [top[i] for i in np.argsort(-scores, kind="stable")]
        got = [x for x in lines if x[0] == qid]
        assert [x[2] for x in got] == best_first  # only the run's top 2, re-ordered
        assert [x[3] for x in got] == ["1", "2"] and all(x[5] == "bgekit-rerank" for x in got)
        np.testing.assert_allclose(sorted((float(x[4]) for x in got), reverse=True), sorted(scores, reverse=True),
                                   atol=1e-5)


def test_bad_inputs_name_the_file_and_line(reranker, tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(json.dumps(PAIRS[0]) + "\n" + '{"query": "q"}\n')
    result = invoke("--model", str(reranker), "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 1
    assert f"{src}:2: field 'passage' must be a string" in result.output
    assert not (tmp_path / "o.jsonl").exists()

    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d9 1 1.0 x\n")
    result = invoke("--model", str(reranker), "--input", str(run), "--output", str(tmp_path / "o.trec"))
    assert result.exit_code == 1 and "looks like a TREC run; give --queries and --corpus" in result.output
    corpus = write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    queries = write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    result = invoke("--model", str(reranker), "--input", str(run), "--queries", str(queries), "--corpus",
                    str(corpus), "--output", str(tmp_path / "o.trec"))
    assert result.exit_code == 1 and "no document with id 'd9'" in result.output


def test_rerank_runs_as_a_real_command(reranker, tmp_path, run_bgekit):
    src = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:1])
    done = run_bgekit("rerank", "--model", str(reranker), "--input", str(src), "--output",
                      str(tmp_path / "out.jsonl"), "--max-length", "64", "--normalize")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "scored 1 pairs" in done.stderr
    score = json.loads((tmp_path / "out.jsonl").read_text())["score"]
    assert 0.0 < score < 1.0
