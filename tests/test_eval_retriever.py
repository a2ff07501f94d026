"""`bgekit eval retriever` against independent computations: numpy exact search + pytrec_eval."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest
import pytrec_eval
from click.testing import CliRunner

from bgekit.commands.eval import eval_group
from bgekit.errors import BgekitError
from bgekit.evaluate.retrieval import evaluate_embedder, load_eval_data, parse_weights
from bgekit.evaluate.trec import read_run
from bgekit.testing import TRAINING_TEXT, tiny_encoder

SENTENCES = sorted(set(TRAINING_TEXT))


@pytest.fixture(scope="module")
def m3_dir(tmp_path_factory):
    """A tiny model with dense, sparse and colbert heads, saved in FlagEmbedding's layout.

    Its weights are re-drawn with a wide spread: a freshly initialised tiny
    encoder maps every text to nearly the same vector (cosines of 0.99999),
    and float32 near-ties would make any two exact searches disagree.
    """
    import torch

    from bgekit.models import Embedder

    root = tmp_path_factory.mktemp("m3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the heads start random, on purpose
        model = Embedder.from_pretrained(str(tiny_encoder(root / "encoder")),
                                         heads=[{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}])
    torch.manual_seed(0)
    for param in model.encoder.parameters():
        if param.dim() == 2:
            torch.nn.init.normal_(param, std=0.5)
    model.save_pretrained(root / "m3")
    return root / "m3"


@pytest.fixture(scope="module")
def model(m3_dir):
    from bgekit.evaluate.retrieval import load_embedder

    return load_embedder(m3_dir, "cpu")


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    """40 mixed Chinese/English documents, 12 judged queries (graded) and one unjudged query."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("beir")
    docs = {f"doc{i}": f"{' '.join(rng.sample(SENTENCES, 2))} {i}" for i in range(40)}  # all distinct
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for i, (doc_id, text) in enumerate(docs.items()):
            fh.write(json.dumps({"_id": doc_id, "title": "标题" if i % 3 == 0 else "", "text": text},
                                ensure_ascii=False) + "\n")
    (root / "qrels").mkdir()
    with open(root / "queries.jsonl", "w", encoding="utf-8") as q, open(root / "qrels" / "test.tsv", "w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for i in range(13):
            q.write(json.dumps({"_id": f"q{i}", "text": rng.choice(SENTENCES)[:20]}, ensure_ascii=False) + "\n")
            if i == 12:
                continue  # unjudged: not evaluated
            for doc_id in rng.sample(sorted(docs), 4):
                r.write(f"q{i}\t{doc_id}\t{rng.choice([0, 1, 2])}\n")
    return root


def independent_run(model, data, k: int, mode: str = "dense") -> dict:
    """Exact search by brute force over every document, in numpy / plain Python."""
    heads = ["dense", "sparse", "colbert"]
    docs = model.encode(data.doc_texts, is_query=False, max_length=512, heads=heads)
    queries = model.encode(data.query_texts, is_query=True, max_length=64, heads=heads)
    if mode == "dense":
        scores = queries["dense"] @ docs["dense"].T
    elif mode == "sparse":
        scores = np.array([[sum(w * d.get(t, 0.0) for t, w in q.items()) for d in docs["sparse"]]
                           for q in queries["sparse"]])
    else:  # colbert, exhaustive
        scores = np.array([[(q @ d.T).max(axis=1).mean() for d in docs["colbert"]] for q in queries["colbert"]])
    run = {}
    for qid, row in zip(data.query_ids, scores):
        top = np.argsort(-row, kind="stable")[:k]
        run[qid] = {data.doc_ids[i]: float(row[i]) for i in top if mode != "sparse" or row[i] > 0}
    return run


def test_dense_ndcg_equals_numpy_exact_search_and_pytrec_eval(model, m3_dir, beir_dir, tmp_path):
    data = load_eval_data(beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv")
    expected = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10", "recall.20"}).evaluate(
        independent_run(model, data, 20))

    out = tmp_path / "out"
    result = CliRunner().invoke(eval_group, [
        "retriever", "--model", str(m3_dir), "--eval-data", str(beir_dir), "--mode", "dense", "--top-k", "20",
        "--metrics", "ndcg@10,recall@20", "--device", "cpu", "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_queries"] == 12  # the unjudged query is not evaluated
    assert metrics["metrics"]["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in expected.values()]),
                                                          abs=1e-6)
    assert metrics["metrics"]["recall@20"] == pytest.approx(np.mean([v["recall_20"] for v in expected.values()]),
                                                            abs=1e-6)
    assert json.loads(result.stdout)["metrics"] == metrics["metrics"]
    # the written run gives trec_eval the same numbers, query by query
    from_file = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10"}).evaluate(read_run(out / "run.trec"))
    per_query = [json.loads(line) for line in (out / "per_query.jsonl").read_text().splitlines()]
    for row in per_query:
        assert row["metrics"]["ndcg@10"] == pytest.approx(from_file[row["qid"]]["ndcg_cut_10"], abs=1e-6)
        assert row["metrics"]["ndcg@10"] == pytest.approx(expected[row["qid"]]["ndcg_cut_10"], abs=1e-6)


@pytest.mark.parametrize("mode, k", [("sparse", 10), ("colbert", 40)])
def test_sparse_and_exhaustive_colbert_equal_brute_force(model, beir_dir, mode, k):
    """Sparse search is exact; colbert is exact when every document is a candidate (k >= corpus)."""
    data = load_eval_data(beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv")
    expected = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10", "map"}).evaluate(
        independent_run(model, data, k, mode))
    ours = evaluate_embedder(model, data, None, None, metrics=["ndcg@10", "map"], mode=mode, top_k=k)
    assert ours["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in expected.values()]), abs=1e-5)
    assert ours["map"] == pytest.approx(np.mean([v["map"] for v in expected.values()]), abs=1e-5)


def test_hybrid_equals_weighted_sum_over_all_documents_when_k_covers_the_corpus(model, beir_dir):
    data = load_eval_data(beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv")
    parts = {m: independent_run(model, data, 40, m) for m in ("dense", "sparse", "colbert")}
    weights = {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    run = {q: {d: sum(w * parts[m][q].get(d, 0.0) for m, w in weights.items()) for d in parts["dense"][q]}
           for q in data.query_ids}
    run = {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for q, docs in run.items()}
    expected = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10"}).evaluate(run)
    ours = evaluate_embedder(model, data, None, None, metrics=["ndcg@10"], mode="hybrid", top_k=40,
                             weights=weights)
    assert ours["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in expected.values()]), abs=1e-5)


def test_evaluate_embedder_takes_mappings(model):
    corpus = {"a": "北京是中国的首都", "b": {"title": "River", "text": "The Yangtze is the longest river"}}
    metrics = evaluate_embedder(model, corpus, {"q": "长江"}, {"q": {"b": 1}}, metrics=["recall@2", "success@2"],
                                top_k=5)
    assert metrics == {"recall@2": 1.0, "success@2": 1.0}


def test_bad_inputs_say_what_to_do(model, beir_dir, tmp_path):
    with pytest.raises(BgekitError, match="three"):
        parse_weights("1,2")
    with pytest.raises(BgekitError, match="same ids"):
        load_eval_data({"a": "x"}, {"other": "y"}, {"q": {"a": 1}})
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"_id": "a", "text": "x"}\n{"_id": "b"}\n', encoding="utf-8")
    with pytest.raises(BgekitError, match="corpus.jsonl:2"):
        load_eval_data(bad, {"q": "x"}, {"q": {"a": 1}})
    with pytest.raises(BgekitError, match="needs a cut-off"):
        evaluate_embedder(model, {"a": "x"}, {"q": "x"}, {"q": {"a": 1}}, metrics=["ndcg"])


def test_compare_a_model_with_itself_gives_zero_deltas_and_p_one(m3_dir, beir_dir, tmp_path):
    from bgekit.commands.compare import compare

    result = CliRunner().invoke(compare, [
        "--baseline", str(m3_dir), "--candidate", str(m3_dir), "--eval-data", str(beir_dir), "--top-k", "20",
        "--metrics", "ndcg@10,recall@20", "--samples", "200", "--device", "cpu", "--output", str(tmp_path / "out"),
        "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["metrics"]
    assert [r["metric"] for r in rows] == ["ndcg@10", "recall@20"]
    for row in rows:
        assert row["delta"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
        assert row["p_value"] == 1.0 and row["tied"] == row["queries"] == 12
    assert (tmp_path / "out" / "baseline" / "run.trec").is_file()
    assert (tmp_path / "out" / "comparison.json").is_file()


def test_bench_real_subprocess(m3_dir, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "bgekit.cli", "bench", "--model", str(m3_dir), "--batch-sizes",
                          "1,2", "--max-length", "32", "--warmup", "1", "--iterations", "2", "--device", "cpu",
                          "--output", str(out)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    assert "items/s" in run.stdout
    report = json.loads(out.read_text())
    assert report["device"]["backend"] == "cpu" and report["dtype"] == "float32"
    assert report["heads"] == ["dense", "sparse", "colbert"]
    assert [r["batch_size"] for r in report["results"]] == [1, 2]
    for row in report["results"]:
        assert row["items_per_s"] > 0 and row["tokens_per_s"] > row["items_per_s"]
        assert row["latency_p50_ms"] <= row["latency_p90_ms"] <= row["latency_p95_ms"] <= row["latency_p99_ms"]
        assert row["peak_memory_mib"] > 0
