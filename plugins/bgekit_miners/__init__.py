"""Built-in hard-negative miners: dense (any M3 head, FAISS), bm25 (bm25s), random.

Each factory takes the recipe's ``miner`` values plus a
:class:`bgekit.api.MiningContext` and returns a :class:`bgekit.api.Retriever`;
the shared window, filters, sampling and fill live in the mining engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from bgekit.api import VECTOR_INDEX_PARAMS, MinerSpec, MiningSettings, hookimpl, miner_params_schema

from bgekit_miners.params import BM25_PARAMS, DENSE_PARAMS

if TYPE_CHECKING:
    from bgekit.api import MiningContext


def _dense(context: MiningContext | None = None, **params: Any):
    from bgekit_miners.dense import DenseRetriever

    from bgekit.api import MiningContext  # numpy: imported when a miner is built, not when plugins are listed

    settings, own = MiningSettings.split(params)
    return DenseRetriever(settings, context or MiningContext(), **own)


def _bm25(context: MiningContext | None = None, **params: Any):
    from bgekit_miners.bm25 import Bm25Retriever

    settings, own = MiningSettings.split(params)
    return Bm25Retriever(settings, context, **own)


def _random(context: MiningContext | None = None, **params: Any):
    from bgekit_miners.uniform import RandomRetriever

    settings, own = MiningSettings.split(params)
    return RandomRetriever(settings, context, **own)


@hookimpl
def bgekit_miners() -> Iterable[MinerSpec]:
    yield MinerSpec(
        name="dense",
        summary="rank the pool with the model's dense, sparse, colbert or hybrid score (FAISS Flat/IVF/HNSW)",
        factory=_dense,
        params_schema=miner_params_schema({**DENSE_PARAMS, **VECTOR_INDEX_PARAMS}),
    )
    yield MinerSpec(
        name="bm25",
        summary="rank the pool with BM25 (bm25s; jieba for Chinese, Snowball stemming for English)",
        factory=_bm25,
        params_schema=miner_params_schema(BM25_PARAMS),
    )
    yield MinerSpec(
        name="random",
        summary="negatives uniformly at random from the pool",
        factory=_random,
        params_schema=miner_params_schema({}),
    )
