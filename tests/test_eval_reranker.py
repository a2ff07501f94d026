"""`bgekit eval reranker`, `eval pipeline`, `compare` and `bench` for rerankers, against independent computations:
pairs scored directly with the model, sorted in plain Python, scored by pytrec_eval."""

from __future__ import annotations

import json
import random
import warnings

import pytest
import pytrec_eval
from click.testing import CliRunner

from bgekit.commands.bench import bench
from bgekit.commands.compare import compare
from bgekit.commands.eval import eval_group
from bgekit.errors import BgekitError
from bgekit.evaluate.reranking import load_rerank_data, model_kind, pipeline_depths
from bgekit.evaluate.trec import read_qrels, read_run
from bgekit.testing import TRAINING_TEXT, tiny_cross_encoder, tiny_encoder

SENTENCES = sorted(set(TRAINING_TEXT))
#: ours -> pytrec_eval's measure (cut-offs as trec_eval writes them)
MEASURES = {"ndcg@10": "ndcg_cut_10", "recall@5": "recall_5", "map": "map", "accuracy@1": "success_1",
            "precision@5": "P_5"}


def _spread(module) -> None:
    """Re-draw a tiny random model's weights with a wide spread: a fresh one scores every input almost
    the same, and float32 near-ties would make two correct rankings disagree."""
    import torch

    torch.manual_seed(0)
    for param in module.parameters():
        if param.dim() == 2:
            torch.nn.init.normal_(param, std=0.5)


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    from bgekit.models.cross_encoder import CrossEncoder

    root = tmp_path_factory.mktemp("reranker")
    model = CrossEncoder.from_pretrained(tiny_cross_encoder(root / "init"))
    _spread(model.model)
    model.save_pretrained(root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def retriever_dir(tmp_path_factory):
    from bgekit.models import Embedder

    root = tmp_path_factory.mktemp("retriever")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Embedder.from_pretrained(str(tiny_encoder(root / "encoder")), heads=[{"name": "dense"}])
    _spread(model.encoder)
    model.save_pretrained(root / "m3")
    return root / "m3"


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    """30 documents, 10 judged queries (graded, 5 judgements each) and one unjudged query; a first-stage run."""
    rng = random.Random(1)
    root = tmp_path_factory.mktemp("beir")
    docs = {f"doc{i}": f"{' '.join(rng.sample(SENTENCES, 2))} {i}" for i in range(30)}
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n"
                      for doc_id, text in docs.items())
    (root / "qrels").mkdir()
    with open(root / "queries.jsonl", "w", encoding="utf-8") as q, open(root / "qrels" / "test.tsv", "w") as r, \
            open(root / "first.trec", "w") as run:
        r.write("query-id\tcorpus-id\tscore\n")
        for i in range(11):
            q.write(json.dumps({"_id": f"q{i}", "text": rng.choice(SENTENCES)[:20]}, ensure_ascii=False) + "\n")
            for rank, doc_id in enumerate(rng.sample(sorted(docs), 15), start=1):
                run.write(f"q{i} Q0 {doc_id} {rank} {100 - rank * 1.5} first\n")  # distinct scores
            if i < 10:  # q10 is unjudged: never reranked
                for doc_id in rng.sample(sorted(docs), 5):
                    r.write(f"q{i}\t{doc_id}\t{rng.choice([0, 1, 2])}\n")
    return root


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _files(root):
    return ["--corpus", str(root / "corpus.jsonl"), "--queries", str(root / "queries.jsonl"),
            "--qrels", str(root / "qrels" / "test.tsv")]


def _direct_scores(reranker_dir, root, candidates: dict[str, list[str]]) -> dict:
    """Each pair scored on its own by the model: ``{qid: {docid: score}}``."""
    from bgekit.models.cross_encoder import CrossEncoder

    model = CrossEncoder.from_pretrained(str(reranker_dir))
    queries = {r["_id"]: r["text"] for r in _jsonl(root / "queries.jsonl")}
    docs = {r["_id"]: r["text"] for r in _jsonl(root / "corpus.jsonl")}
    return {q: {d: float(model.score([(queries[q], docs[d])], batch_size=1)[0]) for d in ds}
            for q, ds in candidates.items()}


def _independent(reranker_dir, root, candidates: dict[str, list[str]]) -> dict:
    """pytrec_eval on the run of directly scored pairs."""
    run = _direct_scores(reranker_dir, root, candidates)
    qrels = read_qrels(root / "qrels" / "test.tsv")
    return pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.5", "map", "success.1", "P.5"}).evaluate(run)


def _check_against(result_dir, expected: dict) -> None:
    rows = {r["qid"]: r for r in _jsonl(result_dir / "per_query.jsonl")}
    assert sorted(rows) == sorted(expected)
    for qid, row in rows.items():
        for ours, theirs in MEASURES.items():
            assert row["metrics"][ours] == pytest.approx(expected[qid][theirs], abs=1e-6), (qid, ours)
    summary = json.loads((result_dir / "metrics.json").read_text())
    for ours, theirs in MEASURES.items():
        mean = sum(v[theirs] for v in expected.values()) / len(expected)
        assert summary["metrics"][ours] == pytest.approx(mean, abs=1e-6)


def test_reranking_a_run_equals_direct_scoring_and_pytrec_eval(reranker_dir, beir_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_group, [
        "reranker", "--model", str(reranker_dir), *_files(beir_dir), "--run", str(beir_dir / "first.trec"),
        "--top-k", "8", "--batch-size", "7", "--metrics", ",".join(MEASURES), "--device", "cpu",
        "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    run = read_run(beir_dir / "first.trec")
    top8 = {q: sorted(docs, key=docs.get, reverse=True)[:8] for q, docs in run.items() if q != "q10"}
    _check_against(out, _independent(reranker_dir, beir_dir, top8))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["candidates"] == "run" and summary["pairs"] == 80 and summary["top_k"] == 8
    written = read_run(out / "run.trec")
    assert {q: set(d) for q, d in written.items()} == {q: set(d) for q, d in top8.items()}


def test_reranking_judged_documents_only(reranker_dir, beir_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_group, [
        "reranker", "--model", str(reranker_dir), *_files(beir_dir), "--metrics", ",".join(MEASURES),
        "--device", "cpu", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy@1" in result.output
    qrels = read_qrels(beir_dir / "qrels" / "test.tsv")
    _check_against(out, _independent(reranker_dir, beir_dir, {q: list(d) for q, d in qrels.items()}))
    rows = _jsonl(out / "per_query.jsonl")
    assert all(r["num_ret"] == len(qrels[r["qid"]]) for r in rows)  # the judged documents, nothing else
    assert json.loads((out / "metrics.json").read_text())["candidates"] == "qrels"


def test_default_reranker_metrics_include_accuracy_at_1(reranker_dir, beir_dir):
    result = CliRunner().invoke(eval_group, ["reranker", "--model", str(reranker_dir), *_files(beir_dir),
                                             "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert "accuracy@1" in json.loads(result.stdout)["metrics"]


def test_pipeline_candidate_counts_and_its_run_file_metrics(retriever_dir, reranker_dir, beir_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_group, [
        "pipeline", "--retriever", str(retriever_dir), "--reranker", str(reranker_dir), *_files(beir_dir),
        "--retrieve-top", "8", "--rerank-top", "3", "--metrics", ",".join(MEASURES), "--device", "cpu",
        "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    retriever_only, pipeline = json.loads(result.stdout)
    assert pipeline["pairs"] == 10 * 3 and pipeline["reranked_per_query"]["max"] == 3
    assert pipeline["retrieved_per_query"] == {"min": 8, "mean": 8.0, "max": 8}
    assert pipeline["retriever_metrics"] == retriever_only["metrics"]
    assert all(row["num_ret"] == 8 for row in _jsonl(out / "per_query.jsonl"))

    final, first = read_run(out / "run.trec"), read_run(out / "retriever" / "run.trec")
    heads = {}
    for qid, docs in final.items():
        mine = sorted(docs, key=docs.get, reverse=True)
        theirs = sorted(first[qid], key=first[qid].get, reverse=True)
        assert set(mine[:3]) == set(theirs[:3]) and mine[3:] == theirs[3:]  # only the top 3 re-ordered
        heads[qid] = mine[:3]
    direct = _direct_scores(reranker_dir, beir_dir, heads)  # the top 3 carry the reranker's own scores
    pairs = [(q, d) for q, ds in heads.items() for d in ds]
    assert [final[q][d] for q, d in pairs] == pytest.approx([direct[q][d] for q, d in pairs], abs=1e-5)
    qrels = read_qrels(beir_dir / "qrels" / "test.tsv")
    expected = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.5", "map", "success.1", "P.5"}
                                              ).evaluate(final)
    _check_against(out, expected)


def test_compare_a_reranker_with_itself_gives_zero_deltas_and_p_one(reranker_dir, beir_dir, tmp_path):
    assert model_kind(reranker_dir) == "reranker"
    result = CliRunner().invoke(compare, [
        "--baseline", str(reranker_dir), "--candidate", str(reranker_dir), *_files(beir_dir),
        "--run", str(beir_dir / "first.trec"), "--top-k", "5", "--metrics", "ndcg@10,accuracy@1",
        "--samples", "100", "--device", "cpu", "--output", str(tmp_path / "cmp"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["metrics"]
    assert [r["metric"] for r in rows] == ["ndcg@10", "accuracy@1"]
    for row in rows:
        assert row["delta"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
        assert row["p_value"] == 1.0 and row["tied"] == row["queries"] == 10
    assert (tmp_path / "cmp" / "candidate" / "run.trec").is_file()


def test_compare_refuses_a_retriever_against_a_reranker(retriever_dir, reranker_dir, beir_dir):
    result = CliRunner().invoke(compare, ["--baseline", str(retriever_dir), "--candidate", str(reranker_dir),
                                          *_files(beir_dir)])
    assert result.exit_code == 1 and "two rerankers" in str(result.exception)


def test_bench_reranker_json_keys(reranker_dir, tmp_path):
    result = CliRunner().invoke(bench, ["--model", str(reranker_dir), "--batch-sizes", "1,4", "--max-length", "32",
                                        "--warmup", "1", "--iterations", "3", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "reranker" and report["items"] == "pairs"  # auto-detected
    assert report["device"]["backend"] == "cpu" and report["dtype"] == "float32" and report["max_length"] == 32
    assert [r["batch_size"] for r in report["results"]] == [1, 4]
    for row in report["results"]:
        assert {"items_per_s", "tokens_per_s", "mean_tokens_per_item", "peak_memory_mib", "peak_memory_source",
                "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"} <= set(row)
        assert row["items_per_s"] > 0 and row["tokens_per_s"] > row["items_per_s"]
        assert 8 < row["mean_tokens_per_item"] <= 32  # pairs cut to --max-length
        assert row["latency_p50_ms"] <= row["latency_p90_ms"] <= row["latency_p95_ms"] <= row["latency_p99_ms"]


def test_bad_inputs_say_what_to_do(beir_dir, tmp_path):
    with pytest.raises(BgekitError, match="more than --retrieve-top"):
        pipeline_depths(10, 20)
    stray = tmp_path / "stray.trec"
    stray.write_text("q1 Q0 nowhere 1 3.0 x\n")
    with pytest.raises(BgekitError, match=r"corpus.jsonl: no document with id 'nowhere' \(named in the run\)"):
        load_rerank_data(beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv",
                         run=stray)
    other = tmp_path / "other.trec"
    other.write_text("zz Q0 doc1 1 3.0 x\n")
    with pytest.raises(BgekitError, match="share no query id"):
        load_rerank_data(beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv",
                         run=other)
