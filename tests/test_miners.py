"""Miner plugins and the mining engine, checked against brute-force numpy rankings.

The dense retriever is driven by a stand-in embedder whose representations
are seeded random vectors per text: the search code (FAISS, the sparse
product, colbert re-scoring, the hybrid sum) and the engine are real, and the
expected negatives come from scoring every pool passage in plain numpy.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bgekit.data.example import Example
from bgekit.errors import BgekitError
from bgekit.mine import MiningContext, Pool, mine_examples
from bgekit.mine.pool import same_text_key
from bgekit.mine.run import build_retriever


def _rng(text: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


def built_in_heads() -> dict:
    """The built-in heads' objects: the miner searches through their search interface."""
    from bgekit_heads.colbert import ColbertHead
    from bgekit_heads.dense import DenseHead
    from bgekit_heads.sparse import SparseHead

    return {"dense": DenseHead(16), "sparse": SparseHead(16), "colbert": ColbertHead(16, 8)}


class SeededEmbedder:
    """Same interface as :meth:`bgekit.models.Embedder.encode`; representations depend on the text only."""

    heads = built_in_heads()
    head_configs = [{"name": "dense"}, {"name": "sparse"}, {"name": "colbert"}]

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts, *, is_query=False, batch_size=32, max_length=512, heads=None, **_):
        self.encoded += len(texts)
        out = {}
        if "dense" in heads:
            vecs = np.stack([_rng(t).standard_normal(16) for t in texts]).astype(np.float32)
            out["dense"] = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        if "sparse" in heads:
            out["sparse"] = [{str(t): float(w) for t, w in zip(_rng(s).choice(40, 6, replace=False),
                                                                _rng(s + "w").random(6))} for s in texts]
        if "colbert" in heads:
            out["colbert"] = [_rng(t + "c").standard_normal((1 + len(t) % 4, 8)).astype(np.float32) for t in texts]
        return out


def brute_scores(model: SeededEmbedder, queries: list[str], passages: list[str], weights: dict[str, float]):
    """(Q, N) scores: every query against every passage, by the definitions of each head."""
    q = model.encode(queries, heads=list(weights))
    p = model.encode(passages, heads=list(weights))
    total = np.zeros((len(queries), len(passages)))
    for head, weight in weights.items():
        for i in range(len(queries)):
            for j in range(len(passages)):
                if head == "dense":
                    s = float(q["dense"][i] @ p["dense"][j])
                elif head == "sparse":
                    s = sum(w * p["sparse"][j].get(t, 0.0) for t, w in q["sparse"][i].items())
                else:
                    s = float((q["colbert"][i] @ p["colbert"][j].T).max(axis=1).mean())
                total[i, j] += weight * s
    return total


POOL = [f"passage number {i} about topic {i % 7}" for i in range(40)]


def _examples() -> list[Example]:
    return [
        Example(query="what is topic 3", pos=[POOL[3], POOL[10]]),
        Example(query="tell me about topic 5", pos=[POOL[5]]),
        Example(query="passage number 12 about topic 5", pos=[POOL[19]]),  # the query is itself a pool text
        Example(query="anything on topic 0", pos=[POOL[0]]),
    ]


def _expected(examples, pool: Pool, scores: np.ndarray, start: int, end: int, k: int,
              lexical: bool = False) -> list[list[str]]:
    """Top-ranked pool passages in the window by brute-force score, positives and query-equal texts out.

    ``lexical``: passages sharing no token with the query (score 0) are not retrieved at all.
    """
    out = []
    for i, ex in enumerate(examples):
        order = sorted(range(len(pool)), key=lambda j: (-scores[i, j], j))
        order = [j for j in order if scores[i, j] > 0 or not lexical][start:end]
        banned = {same_text_key(t) for t in ex.pos} | {same_text_key(ex.query)}
        out.append([pool.texts[j] for j in order if same_text_key(pool.texts[j]) not in banned][:k])
    return out


@pytest.mark.parametrize("mode,weights", [
    ("dense", {"dense": 1.0}),
    ("sparse", {"sparse": 1.0}),
    ("colbert", {"colbert": 1.0}),
    ("hybrid", {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}),
])
@pytest.mark.parametrize("start,end,k", [(2, 14, 6), (0, 40, 35)])  # (0, 40, 35): nearly the whole pool
def test_top_sampling_matches_brute_force_ranking(mode, weights, start, end, k):
    model = SeededEmbedder()
    examples = _examples()
    pool_texts = POOL + ["  passage number 3   about topic 3 ", "passage number 12 about topic 5"]  # duplicates
    pool = Pool.build(examples, pool_texts)
    assert len(pool) == len(POOL)  # the whitespace variant and the repeat collapsed
    params = {"mode": mode, "range": [start, end], "num_negatives": k, "sampling": "top", "with_scores": True}
    if mode == "hybrid":
        params["weights"] = weights
    retriever = build_retriever("dense", params, MiningContext(embedder=model))
    mined, stats = mine_examples(examples, retriever, pool, retriever.settings)

    scores = brute_scores(model, [e.query for e in examples], pool.texts, weights)
    expected = _expected(examples, pool, scores, start, end, k, lexical=mode == "sparse")
    filled = 0
    for i, (row, want) in enumerate(zip(mined, expected)):
        assert row.neg[:len(want)] == want, f"row {i}"
        assert len(row.neg) == k and len(set(row.neg)) == k
        filled += k - len(want)  # sparse search retrieves only passages sharing a token; the rest is fill
        got = np.array(row.neg_scores)
        assert np.allclose(got, [scores[i, pool.id_of(t)] for t in row.neg], atol=1e-4)
        assert np.allclose(row.pos_scores, [scores[i, pool.id_of(t)] for t in row.pos], atol=1e-4)
        assert not {same_text_key(t) for t in row.neg} & {same_text_key(t) for t in row.pos}
        assert same_text_key(row.query) not in {same_text_key(t) for t in row.neg}
    assert stats.filled_negatives == filled and stats.negatives == k * len(examples)
    if mode != "sparse":
        assert filled == 0


def test_faiss_ivf_and_hnsw_agree_with_flat_on_a_small_pool():
    model = SeededEmbedder()
    examples = _examples()
    pool = Pool.build(examples, POOL)
    results = {}
    for index in ("Flat", "IVF", "HNSW"):
        params = {"index": index, "range": [0, 10], "num_negatives": 5, "sampling": "top", "nprobe": 64}
        retriever = build_retriever("dense", params, MiningContext(embedder=model))
        results[index] = [e.neg for e in mine_examples(examples, retriever, pool, retriever.settings)[0]]
    assert results["IVF"] == results["Flat"]  # nprobe covers every cluster: exact
    assert results["HNSW"] == results["Flat"]  # a 40-node graph with ef_search 256 finds everything


def test_margin_filters_and_fill_are_counted():
    model = SeededEmbedder()
    examples = _examples()
    pool = Pool.build(examples, POOL)
    params = {"range": [0, 20], "num_negatives": 8, "sampling": "top", "absolute_margin": 0.1, "with_scores": True}
    retriever = build_retriever("dense", params, MiningContext(embedder=model))
    mined, stats = mine_examples(examples, retriever, pool, retriever.settings)
    scores = brute_scores(model, [e.query for e in examples], pool.texts, {"dense": 1.0})
    filled = 0
    for i, row in enumerate(mined):
        weakest = min(scores[i, pool.id_of(t)] for t in row.pos)
        top20 = set(sorted(range(len(pool)), key=lambda j: -scores[i, j])[:20])
        window_part = [t for t in row.neg if pool.id_of(t) in top20]
        assert all(scores[i, pool.id_of(t)] <= weakest - 0.1 + 1e-5 for t in window_part)
        extra = [t for t in row.neg if pool.id_of(t) not in top20]  # only the random fill leaves the window
        filled += bool(extra)
        assert len(row.neg) == 8 and len(set(row.neg)) == 8
    assert stats.filled_rows == filled > 0

    # nothing survives max_score: every row is filled entirely from outside the top 20
    params = {"range": [0, 20], "num_negatives": 4, "max_score": -10.0}
    retriever = build_retriever("dense", params, MiningContext(embedder=model))
    mined, stats = mine_examples(examples, retriever, pool, retriever.settings)
    assert stats.filled_rows == len(examples) and stats.filled_negatives == 4 * len(examples)
    for i, row in enumerate(mined):
        top20 = set(sorted(range(len(pool)), key=lambda j: -scores[i, j])[:20])
        assert not {pool.id_of(t) for t in row.neg} & top20


def test_random_sampling_is_seeded_and_within_the_window():
    model = SeededEmbedder()
    examples = _examples()
    pool = Pool.build(examples, POOL)
    runs = []
    for seed in (1, 1, 2):
        params = {"range": [5, 25], "num_negatives": 5, "sampling": "random", "seed": seed}
        retriever = build_retriever("dense", params, MiningContext(embedder=model))
        runs.append([e.neg for e in mine_examples(examples, retriever, pool, retriever.settings)[0]])
    assert runs[0] == runs[1] and runs[0] != runs[2]
    scores = brute_scores(model, [e.query for e in examples], pool.texts, {"dense": 1.0})
    for i, negs in enumerate(runs[0]):
        window = {pool.texts[j] for j in sorted(range(len(pool)), key=lambda j: -scores[i, j])[5:25]}
        assert set(negs) <= window


def test_pool_cache_is_reused(tmp_path, tiny_model_dir):
    from bgekit.mine.cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path)
    encoded = {"dense": np.eye(3, dtype=np.float32), "sparse": [{"5": 0.5}, {}, {"7": 1.0, "9": 2.0}],
               "colbert": [np.ones((2, 4), np.float32), np.zeros((0, 4), np.float32), np.ones((1, 4), np.float32)]}
    cache.put("k", encoded)
    back = cache.get("k")
    assert np.array_equal(back["dense"], encoded["dense"]) and back["sparse"] == encoded["sparse"]
    assert [c.shape for c in back["colbert"]] == [(2, 4), (0, 4), (1, 4)]
    assert cache.get("missing") is None


CHINESE_POOL = [
    "长江是中国最长的河流，全长约六千三百公里。",
    "长江流经青海、西藏、四川、湖北和上海等地。",
    "黄河是中国第二长的河流，被称为母亲河。",
    "北京是中华人民共和国的首都。",
    "红楼梦是中国古典四大名著之一，作者是曹雪芹。",
    "机器学习是人工智能的一个分支。",
    "今天天气很好，我们去公园散步吧。",
]


def test_bm25_on_chinese_finds_the_lexically_closest_passages():
    examples = [
        Example(query="长江有多长", pos=[CHINESE_POOL[0]]),
        Example(query="红楼梦的作者是谁", pos=["曹雪芹写了《红楼梦》。"]),
    ]
    pool = Pool.build(examples, CHINESE_POOL)
    retriever = build_retriever("bm25", {"range": [0, 3], "num_negatives": 1, "sampling": "top",
                                         "with_scores": True}, MiningContext())
    mined, stats = mine_examples(examples, retriever, pool, retriever.settings)
    # the only other passage sharing 长江 with the query; the positive itself is excluded
    assert mined[0].neg == [CHINESE_POOL[1]]
    # the passage about 红楼梦 and its 作者, not the positive (which is not in the pool file)
    assert mined[1].neg == [CHINESE_POOL[4]]
    assert mined[0].neg_scores[0] > 0 and mined[0].pos_scores[0] > mined[0].neg_scores[0]
    assert stats.filled_rows == 0


def test_random_miner_excludes_positives_and_refuses_score_filters():
    examples = [Example(query="长江有多长", pos=[CHINESE_POOL[0]])]
    pool = Pool.build(examples, CHINESE_POOL)
    retriever = build_retriever("random", {"num_negatives": 6, "seed": 3}, MiningContext())
    mined, stats = mine_examples(examples, retriever, pool, retriever.settings)
    assert sorted(mined[0].neg) == sorted(CHINESE_POOL[1:]) and stats.filled_rows == 0
    with pytest.raises(BgekitError, match="without scores"):
        build_retriever("random", {"max_score": 0.5}, MiningContext())


def test_bad_settings_are_clear_errors():
    with pytest.raises(BgekitError, match="start < end"):
        build_retriever("random", {"range": [20, 10]}, MiningContext())
    with pytest.raises(BgekitError, match="needs a model"):
        build_retriever("dense", {}, MiningContext())
