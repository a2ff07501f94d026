"""Metric values against pytrec_eval (trec_eval's own code) on random graded runs with ties."""

from __future__ import annotations

import random

import numpy as np
import pytest
import pytrec_eval

from bgekit.errors import BgekitError
from bgekit.evaluate.judged import judge_run, judge_topk, order_topk
from bgekit.evaluate.metrics import evaluate_run, compute

CUTOFFS = [1, 2, 3, 5, 10, 50]
TREC_MEASURES = {f"{m}.{','.join(map(str, CUTOFFS))}" for m in ("P", "recall", "ndcg_cut", "map_cut", "success")}
TREC_MEASURES |= {"map", "recip_rank", "num_rel"}
OURS_TO_TREC = {"precision": "P", "recall": "recall", "ndcg": "ndcg_cut", "map": "map_cut", "success": "success"}


def random_case(seed: int) -> tuple[dict, dict]:
    """Graded qrels (some queries with nothing relevant, a few negative grades) and a run full of ties."""
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)] + ["D", "a", "b1", "文档"]  # "d10" < "d9": string order matters
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 12))
        grades = [0, 0, 1, 2, 3, -1] if q % 7 else [0]  # every 7th query has no relevant document
        qrels[qid] = {d: rng.choice(grades) for d in judged}
        if q % 11 == 5:
            continue  # in the qrels, missing from the run: trec_eval skips it
        retrieved = rng.sample(docs, rng.randint(0, 30))  # sometimes empty
        # few distinct scores -> many ties, broken by docid descending
        run[qid] = {d: float(rng.choice([0.5, 1.0, 1.5, 2.0, rng.random()])) for d in retrieved}
    run["only-in-run"] = {"d1": 1.0}
    return qrels, run


def truncate(run: dict, k: int) -> dict:
    """Top k per query in trec_eval order, computed independently of bgekit."""
    return {q: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k]) for q, docs in run.items()}


def reference_err(grades: list[float], k: int, max_grade: float) -> float:
    value, reach = 0.0, 1.0
    for rank, g in enumerate(grades[:k], start=1):
        stop = (2 ** max(g, 0) - 1) / 2 ** max_grade
        value += reach * stop / rank
        reach *= 1 - stop
    return value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trec_eval_metrics_match_pytrec_eval(seed):
    qrels, run = random_case(seed)
    expected = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(run)
    names = [f"{m}@{k}" for m in OURS_TO_TREC for k in CUTOFFS] + ["map"]
    ours = evaluate_run(run, qrels, names)

    assert ours.qids == sorted(expected)  # same evaluated queries: run ∩ qrels
    for name in names:
        metric, _, k = name.partition("@")
        trec_name = f"{OURS_TO_TREC[metric]}_{k}" if k else "map"
        want = np.array([expected[q][trec_name] for q in ours.qids])
        np.testing.assert_allclose(ours.per_query[name], want, atol=1e-6, rtol=0, err_msg=name)
        assert ours.aggregate(name) == pytest.approx(want.mean(), abs=1e-6)


@pytest.mark.parametrize("k", [1, 3, 10, 100])
def test_mrr_at_k_is_recip_rank_of_the_cut_run(k):
    qrels, run = random_case(3)
    expected = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(truncate(run, k))
    ours = evaluate_run(run, qrels, [f"mrr@{k}"])
    want = [expected[q]["recip_rank"] for q in ours.qids]
    np.testing.assert_allclose(ours.per_query[f"mrr@{k}"], want, atol=1e-6, rtol=0)


def test_coverage_pools_relevant_documents_over_queries():
    qrels, run = random_case(4)
    expected = pytrec_eval.RelevanceEvaluator(qrels, {"recall.5", "num_rel"}).evaluate(run)
    found = sum(v["recall_5"] * v["num_rel"] for v in expected.values())
    total = sum(v["num_rel"] for v in expected.values())
    ours = evaluate_run(run, qrels, ["coverage@5", "recall@5"])
    assert ours.aggregate("coverage@5") == pytest.approx(found / total, abs=1e-9)
    assert ours.aggregate("coverage@5") != pytest.approx(ours.aggregate("recall@5"))


def test_err_and_accuracy_against_plain_python():
    qrels, run = random_case(5)
    max_grade = max(g for docs in qrels.values() for g in docs.values())
    ours = evaluate_run(run, qrels, ["err@10", "err@100", "accuracy@1", "precision@1"])
    for i, qid in enumerate(ours.qids):
        ranked = sorted(run[qid].items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        grades = [qrels[qid].get(d, 0) for d, _ in ranked]
        assert ours.per_query["err@10"][i] == pytest.approx(reference_err(grades, 10, max_grade), abs=1e-9)
        assert ours.per_query["err@100"][i] == pytest.approx(reference_err(grades, 100, max_grade), abs=1e-9)
    np.testing.assert_array_equal(ours.per_query["accuracy@1"], ours.per_query["precision@1"])


def test_edge_cases_by_hand():
    qrels = {"tie": {"a": 1, "b": 2, "c": 0}, "norel": {"a": 0}, "empty": {"x": 1}}
    run = {"tie": {"a": 1.0, "b": 1.0, "c": 1.0}, "norel": {"a": 5.0}, "empty": {}}
    ours = evaluate_run(run, qrels, ["ndcg@1", "precision@5", "recall@1000", "mrr@10", "map"])
    row = {q: i for i, q in enumerate(ours.qids)}
    # ties: c, b, a (docid descending) -> first result "c" is not relevant
    assert ours.per_query["mrr@10"][row["tie"]] == pytest.approx(0.5)
    assert ours.per_query["ndcg@1"][row["tie"]] == pytest.approx(0.0)
    assert ours.per_query["precision@5"][row["tie"]] == pytest.approx(2 / 5)  # k past the end of the run
    for name in ours.names:  # no relevant documents, or nothing retrieved: 0, and still counted
        assert ours.per_query[name][row["norel"]] == 0.0
        assert ours.per_query[name][row["empty"]] == 0.0
    assert len(ours.qids) == 3


def test_complete_counts_queries_missing_from_the_run_like_trec_eval_c():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 1.0}}
    assert evaluate_run(run, qrels, ["recall@10"]).aggregate("recall@10") == 1.0
    assert evaluate_run(run, qrels, ["recall@10"], complete=True).aggregate("recall@10") == 0.5


def test_index_path_matches_dict_path():
    """Search results as index arrays (what retrieval produces) give the same values as the dict run."""
    qrels, run = random_case(6)
    doc_ids = sorted({d for docs in run.values() for d in docs} | {"unused"})
    position = {d: i for i, d in enumerate(doc_ids)}
    qids = list(run)
    depth = max(len(v) for v in run.values())
    indices = np.full((len(qids), depth), -1, dtype=np.int64)
    scores = np.zeros((len(qids), depth), dtype=np.float32)
    for i, q in enumerate(qids):
        items = list(run[q].items())
        random.Random(i).shuffle(items)  # order must not matter
        for j, (d, s) in enumerate(items):
            indices[i, j], scores[i, j] = position[d], s
    names = ["ndcg@10", "map", "mrr@5", "recall@3", "err@20"]
    indices, scores = order_topk(indices, scores, doc_ids)
    from_index = compute(judge_topk(qids, doc_ids, indices, qrels), names)
    from_dict = evaluate_run(run, qrels, names)
    assert set(from_index.qids) == set(from_dict.qids)  # index rows keep the caller's query order
    order = [from_index.qids.index(q) for q in from_dict.qids]
    for name in names:
        np.testing.assert_allclose(from_index.per_query[name][order], from_dict.per_query[name], atol=1e-9)


@pytest.mark.parametrize("written, message", [
    ("ndcg", "needs a cut-off"),
    ("ndgc@10", "did you mean 'ndcg'"),
    ("recall@ten", "not a whole number"),
    ("precision@0", "at least 1"),
])
def test_bad_metric_names_say_what_to_write(written, message):
    with pytest.raises(BgekitError, match=message):
        evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, [written])


def test_names_parse_as_users_write_them():
    values = evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["NDCG@10", "map", "Recall@100"])
    assert values.names == ["ndcg@10", "map", "recall@100"]
    assert values.summary() == {"ndcg@10": 1.0, "map": 1.0, "recall@100": 1.0}


def test_no_shared_queries_is_an_error():
    with pytest.raises(BgekitError, match="share no query id"):
        judge_run({"x": {"a": 1.0}}, {"y": {"a": 1}})
