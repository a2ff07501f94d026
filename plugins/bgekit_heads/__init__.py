"""Built-in heads: dense (pooled vector), sparse (lexical weights), colbert (token vectors).

Together they are BGE-M3's three retrieval modes; the sparse and colbert
heads read and write FlagEmbedding's ``sparse_linear.pt`` / ``colbert_linear.pt``.
"""

from __future__ import annotations

from typing import Iterable

from bgekit.api import HeadSpec, hookimpl, lazy_factory

#: dense pooling modes (kept here, not in dense.py, so listing plugins does not import torch)
POOLINGS = ("cls", "mean", "last-token")


NORMALIZE = {"type": "boolean", "default": True, "description": "L2-normalise the vectors (BGE-M3 does)"}


@hookimpl
def bgekit_heads() -> Iterable[HeadSpec]:
    yield HeadSpec(
        name="dense",
        summary="one pooled vector per text (CLS for BGE-M3), dot-product scores",
        factory=lazy_factory("bgekit_heads.dense:DenseHead"),
        params_schema={"properties": {
            "pooling": {"enum": list(POOLINGS), "default": "cls",
                        "description": "how token states become one vector: cls, mean or last-token"},
            "normalize": NORMALIZE,
        }},
    )
    yield HeadSpec(
        name="sparse",
        summary="SPLADE-style lexical weights relu(Linear(h,1)); score = sum over shared token ids",
        factory=lazy_factory("bgekit_heads.sparse:SparseHead"),
        params_schema={"properties": {}},
    )
    yield HeadSpec(
        name="colbert",
        summary="multi-vector token embeddings without CLS; score = mean over query tokens of max sim",
        factory=lazy_factory("bgekit_heads.colbert:ColbertHead"),
        params_schema={"properties": {
            "colbert_dim": {"type": "integer", "default": -1,
                            "description": "size of each token vector; -1 keeps the encoder's hidden size "
                                           "(a loaded colbert_linear.pt decides when -1)"},
            "normalize": NORMALIZE,
        }},
    )
