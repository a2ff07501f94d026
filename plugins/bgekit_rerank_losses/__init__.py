"""Built-in reranker losses over groups: listwise-ce, ranknet, lambdarank, bce, rerank-kd.

A reranker batch is Q groups of G passages (the positive first, then
``group_size - 1`` negatives) scored by a cross-encoder. Each loss is built
as ``registry.get("loss", name).create(**params)`` and called as
``loss(logits, labels, teacher_scores=None, step=0)`` with ``logits`` and
``labels`` of shape (Q, G): labels are graded relevance (1 for the positive
and 0 for the negatives unless the data grades them), ``teacher_scores`` a
(Q, G) tensor or None. Each returns a :class:`bgekit_losses.common.LossOutput`.

Their specs say ``task="reranker"``, so a recipe cannot hand them to the
embedder (nor the embedder's losses to a reranker).
"""

from __future__ import annotations

from typing import Any, Iterable

from bgekit.api import LossSpec, hookimpl, lazy_factory

LISTWISE_CITATION = ("Bruch, Wang, Bendersky and Najork, 2019. An Analysis of the Softmax Cross Entropy Loss "
                     "for Learning-to-Rank with Binary Relevance. ICTIR; used for BGE rerankers in "
                     "Xiao et al., 2023. C-Pack: Packaged Resources To Advance General Chinese Embedding. "
                     "arXiv:2309.07597")
RANKNET_CITATION = ("Burges, Shaked, Renshaw, Lazier, Deeds, Hamilton and Hullender, 2005. Learning to Rank "
                    "using Gradient Descent. ICML")
LAMBDARANK_CITATION = ("Burges, 2010. From RankNet to LambdaRank to LambdaMART: An Overview. Microsoft "
                       "Research Technical Report MSR-TR-2010-82 (section 4)")
BCE_CITATION = ("Nogueira and Cho, 2019. Passage Re-ranking with BERT. arXiv:1901.04085 (pointwise "
                "cross-entropy on relevance labels)")
KD_CITATION = ("Hinton, Vinyals and Dean, 2015. Distilling the Knowledge in a Neural Network. "
               "arXiv:1503.02531; listwise distillation of rerankers as in Qu et al., 2021. RocketQA. "
               "NAACL")


def _num(default: float, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "number", "default": default, "description": description, **extra}


SIGMA = _num(1.0, "steepness of the pairwise logistic: softplus(-sigma * (s_i - s_j))", exclusiveMinimum=0)


@hookimpl
def bgekit_losses() -> Iterable[LossSpec]:
    yield LossSpec(
        name="listwise-ce",
        task="reranker",
        summary="softmax cross-entropy over each group (the positive first), as BGE rerankers are trained",
        factory=lazy_factory("bgekit_rerank_losses.listwise:ListwiseCrossEntropy"),
        citation=LISTWISE_CITATION,
        params_schema={"properties": {
            "temperature": _num(1.0, "logits are divided by this before the softmax", exclusiveMinimum=0),
        }},
    )
    yield LossSpec(
        name="ranknet",
        task="reranker",
        summary="pairwise logistic loss on every (more relevant, less relevant) pair of a group",
        factory=lazy_factory("bgekit_rerank_losses.pairwise:RankNetLoss"),
        citation=RANKNET_CITATION,
        params_schema={"properties": {"sigma": SIGMA}},
    )
    yield LossSpec(
        name="lambdarank",
        task="reranker",
        summary="RankNet pairs weighted by |delta NDCG| of swapping them in the current ranking",
        factory=lazy_factory("bgekit_rerank_losses.pairwise:LambdaRankLoss"),
        citation=LAMBDARANK_CITATION,
        params_schema={"properties": {"sigma": SIGMA}},
    )
    yield LossSpec(
        name="bce",
        task="reranker",
        summary="pointwise binary cross-entropy of each pair's logit against its label",
        factory=lazy_factory("bgekit_rerank_losses.pointwise:BinaryCrossEntropyLoss"),
        citation=BCE_CITATION,
        params_schema={"properties": {
            "max_label": _num(1.0, "graded labels are divided by this (and capped at 1) to give the target "
                                   "probability; 1 suits binary labels", exclusiveMinimum=0),
        }},
    )
    yield LossSpec(
        name="rerank-kd",
        task="reranker",
        summary="KL divergence to a teacher's softmax over each group (teacher scores from bgekit score)",
        factory=lazy_factory("bgekit_rerank_losses.distill:RerankDistillationLoss"),
        citation=KD_CITATION,
        params_schema={"properties": {
            "temperature": _num(1.0, "teacher and student logits are divided by this before their softmax; "
                                     "the loss is scaled by its square", exclusiveMinimum=0),
        }},
    )
