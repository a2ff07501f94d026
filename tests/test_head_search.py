"""A third party's head is searched, evaluated, mixed into hybrids and mined with like the built-in heads.

The head below is written as a plugin author would, from the public API
only: a masked-mean vector that implements ``score_candidates`` and nothing
else of the search interface (the base class then searches exhaustively).
Every result is checked against plain numpy over the same encodings, and
the metrics against pytrec_eval.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from click.testing import CliRunner

import bgekit
from bgekit.api import Head, HeadSpec
from bgekit.errors import BgekitError
from bgekit.testing import TRAINING_TEXT, registered_plugin, tiny_encoder

REPO = Path(__file__).resolve().parent.parent
SENTENCES = sorted(set(TRAINING_TEXT))
NAME = "mean-vector"


class MeanVectorHead(Head):
    """Masked mean of the token states, L2-normalised; score = cosine."""

    gatherable = True
    hybrid_weight = 0.5

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size

    def represent(self, hidden, batch):
        import torch.nn.functional as F

        mask = batch.attention_mask.unsqueeze(-1).to(hidden.dtype)
        return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0), dim=-1)

    def score(self, queries, passages):
        return queries @ passages.T

    def export(self, rep):
        return list(rep.detach().float().cpu().numpy())

    def collate(self, items):
        return np.stack(items).astype(np.float32)

    def score_candidates(self, queries, index, candidates):
        return np.einsum("qh,qch->qc", queries, index[np.maximum(candidates, 0)])


class PlainMeanHead(MeanVectorHead):
    """The same vectors with the base class's search defaults only (inner product over (N, D) arrays),
    as a re-scorer that sits out of hybrids unless given a weight."""

    retrieves = False
    hybrid_weight = 0.0
    score_candidates = Head.score_candidates


RESCORER = "plain-mean"


class ThirdPartyPlugin:
    @bgekit.hookimpl
    def bgekit_heads(self):
        yield HeadSpec(name=NAME, summary="masked mean vector (a test's plugin head)", factory=MeanVectorHead,
                       params_schema={"properties": {}})
        yield HeadSpec(name=RESCORER, summary="masked mean vector, re-scoring only", factory=PlainMeanHead,
                       params_schema={"properties": {}})


@pytest.fixture
def plugin(bgekit_pm):
    with registered_plugin(ThirdPartyPlugin(), name="third-party-head", pm=bgekit_pm):
        yield


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return tiny_encoder(tmp_path_factory.mktemp("encoder"))


@pytest.fixture
def model_dir(plugin, encoder_dir, tmp_path):
    """A tiny model with the built-in dense head and the plugin head, saved (``bgekit_heads.json`` names both).

    Weights are re-drawn with a wide spread so that texts do not all encode to nearly one vector.
    """
    import torch

    from bgekit.models import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Embedder.from_pretrained(str(encoder_dir), heads=[{"name": "dense"}, {"name": NAME},
                                                                        {"name": RESCORER}])
    torch.manual_seed(0)
    for param in model.encoder.parameters():
        if param.dim() == 2:
            torch.nn.init.normal_(param, std=0.5)
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def model(model_dir):
    from bgekit.evaluate.retrieval import load_embedder

    return load_embedder(model_dir, "cpu")


@pytest.fixture(scope="module")
def beir_dir(tmp_path_factory):
    rng = random.Random(1)
    root = tmp_path_factory.mktemp("beir")
    docs = {f"doc{i}": f"{' '.join(rng.sample(SENTENCES, 2))} {i}" for i in range(30)}
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, text in docs.items():
            fh.write(json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    (root / "qrels").mkdir()
    with open(root / "queries.jsonl", "w", encoding="utf-8") as q, open(root / "qrels" / "test.tsv", "w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for i in range(10):
            q.write(json.dumps({"_id": f"q{i}", "text": rng.choice(SENTENCES)[:24]}, ensure_ascii=False) + "\n")
            for doc_id in rng.sample(sorted(docs), 3):
                r.write(f"q{i}\t{doc_id}\t{rng.choice([0, 1, 2])}\n")
    return root


def _data(beir_dir):
    from bgekit.evaluate.retrieval import load_eval_data

    return load_eval_data(beir_dir / "corpus.jsonl", beir_dir / "queries.jsonl", beir_dir / "qrels" / "test.tsv")


def brute_force(model, data, weights: dict[str, float]) -> np.ndarray:
    """(Q, N) weighted sum of each head's score of every query with every document, in numpy."""
    docs = model.encode(data.doc_texts, is_query=False, max_length=512, heads=list(weights))
    queries = model.encode(data.query_texts, is_query=True, max_length=64, heads=list(weights))
    return sum(w * (queries[h].astype(np.float64) @ docs[h].astype(np.float64).T) for h, w in weights.items())


def run_of(data, scores: np.ndarray, k: int) -> dict:
    run = {}
    for qid, row in zip(data.query_ids, scores):
        run[qid] = {data.doc_ids[i]: float(row[i]) for i in np.argsort(-row, kind="stable")[:k]}
    return run


def test_the_plugin_head_is_searched_and_evaluated_alone(model, model_dir, beir_dir, tmp_path):
    from bgekit.commands.eval import eval_group

    data = _data(beir_dir)
    expected = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10", "recall.15"}).evaluate(
        run_of(data, brute_force(model, data, {NAME: 1.0}), 15))
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_group, [
        "retriever", "--model", str(model_dir), "--eval-data", str(beir_dir), "--mode", NAME, "--top-k", "15",
        "--metrics", "ndcg@10,recall@15", "--device", "cpu", "--output", str(out), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == NAME
    assert metrics["metrics"]["ndcg@10"] == pytest.approx(np.mean([v["ndcg_cut_10"] for v in expected.values()]),
                                                          abs=1e-6)
    assert metrics["metrics"]["recall@15"] == pytest.approx(np.mean([v["recall_15"] for v in expected.values()]),
                                                            abs=1e-6)

    typo = CliRunner().invoke(eval_group, ["retriever", "--model", str(model_dir), "--eval-data", str(beir_dir),
                                           "--mode", "mean-vectr", "--device", "cpu"])
    assert typo.exit_code != 0
    assert "did you mean 'mean-vector'?" in str(typo.exception) + typo.output


def test_the_plugin_head_joins_a_hybrid_with_dense(model, beir_dir):
    from bgekit.evaluate.retrieval import evaluate_retriever, parse_weights, retrieve

    data = _data(beir_dir)
    weights = {"dense": 1.0, NAME: 0.25}
    expected = brute_force(model, data, weights)
    n = len(data.doc_ids)

    # k covers the corpus: every document is a candidate, each scored dense + 0.25 * plugin
    found = retrieve(model, data, mode="hybrid", top_k=n, weights=parse_weights(f"dense=1,{NAME}=0.25"))
    for i, (row, scores) in enumerate(zip(found.indices, found.scores)):
        assert sorted(row.tolist()) == list(range(n))
        assert np.allclose(scores, expected[i, row], atol=1e-5)
        assert np.all(np.diff(scores) <= 1e-6)  # best first

    # a smaller k: candidates are the union of both heads' top k, re-scored by the weighted sum
    k = 4
    alone = {h: brute_force(model, data, {h: 1.0}) for h in weights}
    found = retrieve(model, data, mode="hybrid", top_k=k, weights=weights)
    for i, row in enumerate(found.indices):
        union = set().union(*(np.argsort(-alone[h][i], kind="stable")[:k].tolist() for h in weights))
        best = sorted(union, key=lambda j: -expected[i, j])[:k]
        assert set(row.tolist()) == set(best)
        assert np.allclose(found.scores[i], expected[i, row], atol=1e-5)

    # no weights: each head's own hybrid_weight (dense 1, this plugin 0.5), recorded with the result
    result, _ = evaluate_retriever(model, data, ["ndcg@10"], mode="hybrid", top_k=n)
    assert result.info["weights"] == {"dense": 1.0, NAME: 0.5}
    qrels_run = run_of(data, brute_force(model, data, {"dense": 1.0, NAME: 0.5}), n)
    expected_ndcg = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10"}).evaluate(qrels_run)
    assert result.metrics["ndcg@10"] == pytest.approx(
        np.mean([v["ndcg_cut_10"] for v in expected_ndcg.values()]), abs=1e-6)


def test_a_re_scoring_plugin_head_ranks_the_retrieving_heads_candidates(model, beir_dir):
    from bgekit.evaluate.retrieval import retrieve

    data = _data(beir_dir)
    n, k = len(data.doc_ids), 3
    expected = brute_force(model, data, {NAME: 1.0})  # the same vectors as the re-scorer's
    found = retrieve(model, data, mode=RESCORER, top_k=n)  # k covers the corpus: exact
    for i, row in enumerate(found.indices):
        assert sorted(row.tolist()) == list(range(n))
        assert np.allclose(found.scores[i], expected[i, row], atol=1e-5)
    found = retrieve(model, data, mode=RESCORER, top_k=k)
    dense = brute_force(model, data, {"dense": 1.0})
    for i, row in enumerate(found.indices):  # candidates: the top k of dense and of mean-vector
        union = set(np.argsort(-dense[i])[:k].tolist()) | set(np.argsort(-expected[i])[:k].tolist())
        assert set(row.tolist()) == set(sorted(union, key=lambda j: -expected[i, j])[:k])
    with_it = retrieve(model, data, mode="hybrid", top_k=n, weights={RESCORER: 1.0, NAME: 0.0})
    for i, row in enumerate(with_it.indices):  # given a weight, it joins a hybrid
        assert np.allclose(with_it.scores[i], dense[i, row] + expected[i, row], atol=1e-5)


def test_weights_name_heads_and_bad_ones_say_what_is_wrong(model, beir_dir):
    from bgekit.evaluate.retrieval import evaluate_retriever, parse_weights

    assert parse_weights("1,0.3,1") == {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    assert parse_weights(f"{NAME}=2, dense=0") == {NAME: 2.0, "dense": 0.0}
    assert parse_weights(None) is None
    for bad, message in [("dense=x", "not a number"), ("dense=1,2", "not both"), ("dense=-1", "non-negative"),
                         ("1,2", "three numbers"), ("dense=0", "all be zero")]:
        with pytest.raises(BgekitError, match=message):
            parse_weights(bad)
    with pytest.raises(BgekitError, match="did you mean 'mean-vector'"):
        evaluate_retriever(model, _data(beir_dir), ["ndcg@10"], mode="hybrid", weights={"mean-vectr": 1.0})


def _examples_and_pool():
    from bgekit.data.example import Example
    from bgekit.mine import Pool

    pool_texts = [f"{s} {i}" for i, s in enumerate(SENTENCES)] + SENTENCES
    examples = [Example(query=s[:20], pos=[pool_texts[i]]) for i, s in enumerate(SENTENCES[:5])]
    return examples, Pool.build(examples, pool_texts)


@pytest.mark.parametrize("mode, weights", [(NAME, {NAME: 1.0}), ("hybrid", {"dense": 1.0, NAME: 0.5})])
def test_the_dense_miner_mines_with_the_plugin_head(model, mode, weights):
    from bgekit.mine import MiningContext, mine_examples
    from bgekit.mine.run import build_retriever

    examples, pool = _examples_and_pool()
    params = {"mode": mode, "range": [1, 9], "num_negatives": 5, "sampling": "top", "with_scores": True}
    if mode == "hybrid":
        params["weights"] = {"dense": 1.0}  # the plugin head keeps its own weight, 0.5
    retriever = build_retriever("dense", params, MiningContext(embedder=model))
    mined, _ = mine_examples(examples, retriever, pool, retriever.settings)

    q = model.encode([e.query for e in examples], is_query=True, max_length=64, heads=list(weights))
    p = model.encode(pool.texts, is_query=False, max_length=512, heads=list(weights))
    scores = sum(w * (q[h].astype(np.float64) @ p[h].astype(np.float64).T) for h, w in weights.items())
    for i, (ex, row) in enumerate(zip(examples, mined)):
        order = sorted(range(len(pool)), key=lambda j: (-scores[i, j], j))[1:9]
        want = [pool.texts[j] for j in order if pool.texts[j] not in ex.pos][:5]
        assert row.neg == want
        assert np.allclose(row.neg_scores, [scores[i, pool.id_of(t)] for t in row.neg], atol=1e-5)
    assert retriever.describe()["mode"] == mode


def test_mining_with_the_plugin_head_reuses_the_pool_cache(model_dir, tmp_path):
    from bgekit.mine import MiningContext, mine_examples
    from bgekit.mine.run import build_retriever

    examples, pool = _examples_and_pool()
    negatives = []
    for _ in range(2):
        context = MiningContext(model=str(model_dir), device="cpu", cache_dir=tmp_path / "cache")
        retriever = build_retriever("dense", {"mode": NAME, "range": [0, 6], "num_negatives": 3,
                                              "sampling": "top"}, context)
        negatives.append([e.neg for e in mine_examples(examples, retriever, pool, retriever.settings)[0]])
    assert retriever.cache_hit and negatives[0] == negatives[1]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


HEAD_NAMES = re.compile(r'"(dense|sparse|colbert)"')
ALLOWED = [
    re.compile(r'^POSITIONAL_WEIGHTS = \("dense", "sparse", "colbert"\)$'),  # "1,0.3,1" keeps meaning these
    re.compile(r'^(def \w+\(.*)?\bmode: str = "dense",'),  # the default mode, as before
    re.compile(r'\{"name": "dense"\}'),  # task: mine's default *miner*, named dense
]


def test_search_and_mining_do_not_name_the_built_in_heads():
    """Outside the head plugins, head names appear only as defaults, never in a branch."""
    files = ["bgekit/evaluate/retrieval.py", "bgekit/evaluate/search.py", "bgekit/evaluate/runs.py",
             "plugins/bgekit_miners/dense.py", *(str(p.relative_to(REPO)) for p in (REPO / "bgekit/mine").glob("*.py"))]
    named = []
    for name in files:
        for lineno, line in enumerate((REPO / name).read_text(encoding="utf-8").splitlines(), 1):
            if HEAD_NAMES.search(line) and not any(a.search(line.strip()) for a in ALLOWED):
                named.append(f"{name}:{lineno}: {line.strip()}")
    assert not named, "\n".join(named)


def test_a_plain_vector_heads_default_search_is_exact_without_scoring_every_cell_at_once(monkeypatch):
    """A head keeping the default inner-product ``score_candidates`` is searched by an exact inner-product
    index (no (queries, passages, D) array); a head with its own ``score_candidates`` is scored by it."""
    import numpy as np

    from bgekit.models.head import Head

    rng = np.random.default_rng(0)
    passages, queries = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    expected = np.sort(np.argsort(-(queries @ passages.T), axis=1)[:, :3], axis=1)

    class Plain(Head):
        pass

    from bgekit.evaluate import search

    exhaustive = search.exhaustive_search
    exhaustive_calls = []
    monkeypatch.setattr(search, "exhaustive_search", lambda *a: exhaustive_calls.append(1) or exhaustive(*a))
    calls = []

    class Scored(Head):
        def score_candidates(self, q, index, candidates):
            calls.append(candidates.shape)
            return super().score_candidates(q, index, candidates)

    idx, scores = Plain().search(queries, passages, 3)
    assert (np.sort(idx, axis=1) == expected).all() and not calls and not exhaustive_calls
    np.testing.assert_allclose(np.sort(scores, axis=1), np.sort(-np.sort(-(queries @ passages.T), axis=1)[:, :3], axis=1),
                               rtol=1e-5)
    idx, _ = Scored().search(queries, passages, 3)
    assert (np.sort(idx, axis=1) == expected).all() and calls == [(5, 50)] and exhaustive_calls == [1]
