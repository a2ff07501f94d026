"""Built-in losses: infonce, m3-unified (BGE-M3 with self-distillation) and kd.

Each is built as ``registry.get("loss", name).create(**params)`` and called
as ``loss(scores, targets, group_size, teacher_scores=None, step=0)``,
returning a :class:`~bgekit_losses.common.LossOutput`.
"""

from __future__ import annotations

from typing import Any, Iterable

from bgekit.api import LossSpec, hookimpl, lazy_factory

#: teacher-score terms (kept here so listing plugins does not import torch)
METHODS = ("kl_div", "m3_kd_loss")
KD_TYPES = ("none",) + METHODS

M3_CITATION = ("Chen et al., 2024. M3-Embedding: Multi-Linguality, Multi-Functionality, Multi-Granularity "
               "Text Embeddings Through Self-Knowledge Distillation. arXiv:2402.03216")
INFONCE_CITATION = ("van den Oord, Li and Vinyals, 2018. Representation Learning with Contrastive "
                    "Predictive Coding. arXiv:1807.03748")
KD_CITATION = ("Hinton, Vinyals and Dean, 2015. Distilling the Knowledge in a Neural Network. "
               "arXiv:1503.02531; listwise m3_kd_loss from " + M3_CITATION)


def _num(default: float, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "number", "default": default, "description": description, **extra}


TEMPERATURE = _num(0.02, "scores are divided by this before the softmax", exclusiveMinimum=0)
IN_BATCH = {"type": "boolean", "default": True,
            "description": "use the other queries' passages as extra negatives (false: own group only)"}
HEAD = {"type": "string", "default": "dense", "description": "which model head's scores the loss uses"}


@hookimpl
def bgekit_losses() -> Iterable[LossSpec]:
    yield LossSpec(
        name="infonce",
        summary="contrastive cross-entropy over in-batch and hard negatives",
        factory=lazy_factory("bgekit_losses.infonce:InfoNCELoss"),
        citation=INFONCE_CITATION,
        params_schema={"properties": {"head": HEAD, "temperature": TEMPERATURE, "in_batch_negatives": IN_BATCH}},
    )
    yield LossSpec(
        name="m3-unified",
        summary="BGE-M3 unified loss: dense + sparse + colbert + ensemble, self-distilled from the ensemble",
        factory=lazy_factory("bgekit_losses.m3_unified:M3UnifiedLoss"),
        citation=M3_CITATION,
        params_schema={"properties": {
            "temperature": TEMPERATURE,
            "dense_weight": _num(1.0, "weight of the dense score in the ensemble"),
            "sparse_weight": _num(0.3, "weight of the sparse score in the ensemble"),
            "colbert_weight": _num(1.0, "weight of the colbert score in the ensemble"),
            "sparse_loss_scale": _num(0.1, "factor on the sparse contrastive and self-distillation terms",
                                      minimum=0),
            "self_distill": {"type": "boolean", "default": True,
                             "description": "distil each head from the ensemble's score distribution"},
            "self_distill_start_step": {"type": "integer", "default": -1,
                                        "description": "self-distillation is on for steps after this one "
                                                       "(-1: from the start)"},
            "in_batch_negatives": IN_BATCH,
            "kd_loss_type": {"enum": list(KD_TYPES), "default": "none",
                             "description": "use teacher scores (pos_scores/neg_scores) in every term as "
                                            "FlagEmbedding does: kl_div or m3_kd_loss; none ignores them"},
            "teacher_temperature": _num(1.0, "teacher scores are divided by this before their softmax",
                                        exclusiveMinimum=0),
        }},
    )
    yield LossSpec(
        name="kd",
        summary="distillation from teacher scores (pos_scores/neg_scores): kl_div or BGE-M3's m3_kd_loss",
        factory=lazy_factory("bgekit_losses.kd:DistillationLoss"),
        citation=KD_CITATION,
        params_schema={"properties": {
            "head": HEAD,
            "method": {"enum": list(METHODS), "default": "kl_div",
                       "description": "kl_div: match the teacher's softmax over each group; "
                                      "m3_kd_loss: BGE-M3's listwise form over all in-batch scores"},
            "temperature": TEMPERATURE,
            "teacher_temperature": _num(1.0, "teacher scores are divided by this before their softmax",
                                        exclusiveMinimum=0),
        }},
    )
