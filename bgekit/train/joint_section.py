"""The recipe's ``reranker`` and ``joint`` sections, owned by the joint task (``plugins/bgekit_tasks``).

The task plugin names them as its ``TaskSpec.sections``; :mod:`bgekit.schema`
merges them into the recipe schema and :mod:`bgekit.train.settings` reads
their defaults through :func:`bgekit.schema.section_schema`. Kept
free of torch so that validating a recipe stays fast.
"""

from __future__ import annotations

from bgekit.recipe_schema import _bool, _int, _num, _obj, _str

RERANKER = _obj(
    {
        "name_or_path": _str(None, "the cross-encoder trained beside the retriever (task: joint): a "
                                   "reranker (BAAI/bge-reranker-base) or a plain encoder"),
        "max_length": _int(512, "tokens per (query, passage) pair", 8),
        "query_max_length": _int(64, "tokens the query may take of the pair", 1),
        "learning_rate": {"type": ["number", "null"], "minimum": 0, "default": None,
                          "description": "the reranker's peak learning rate (null: train.learning_rate)"},
        "revision": _str(None, "hub revision (branch, tag or commit)", nullable=True),
        "trust_remote_code": _bool(False, "allow a hub model's own code to run"),
    },
    required=["name_or_path"],
    description="task: joint only: the reranker trained together with the retriever of 'model'",
)

JOINT = _obj(
    {
        "head": _str("dense", "the retriever head whose scores are distilled from the reranker"),
        "temperature": _num(0.02, "divides the retriever's scores before the softmax over a list", 0),
        "reranker_temperature": _num(1.0, "divides the reranker's logits before the softmax over a "
                                          "list (the distillation target)", 0),
        "reranker_loss": {"oneOf": [{"$component": "loss"}],
                          "description": "the reranker's loss from the labels: a reranker loss "
                                         "(ranknet, lambdarank, bce, ...) and its parameters, "
                                         "weighted by rerank_weight; absent: the reranker task's "
                                         "default, listwise-ce"},
        "rerank_weight": _num(1.0, "weight of the reranker's loss from the labels "
                                   "(joint.reranker_loss)", 0),
        "distill_weight": _num(1.0, "weight of KL(reranker's list distribution || retriever's)", 0),
        "contrastive_weight": _num(0.0, "weight of the retriever's own 'loss' (e.g. infonce with "
                                        "in-batch negatives); 0 leaves it out, as RocketQAv2 does", 0),
        "distill_to_reranker": _bool(True, "let the KL's gradient reach the reranker too "
                                           "(RocketQAv2's dynamic listwise distillation); false "
                                           "trains the reranker from the labels only"),
        "negative_max_preference": _num(0.5, "denoising: a candidate stays a hard negative only "
                                             "while the reranker's preference for it over the "
                                             "labelled positive, sigmoid(logit_neg - logit_pos), "
                                             "is below this (1 keeps every candidate and scores "
                                             "none)", 0, 1),
        "mine_at_start": _bool(False, "before the first step, add the candidates the starting "
                                      "retriever finds ('miner' section, dense by default) to the "
                                      "data's negatives, denoised (RocketQAv2's hybrid data "
                                      "augmentation)"),
        "refresh_every": _int(0, "every N steps re-mine candidates with the current retriever "
                                 "('miner' section, dense by default) and denoise them with the "
                                 "current reranker; used from the next epoch (0: denoise the "
                                 "data's negatives once, before training)", 0),
        "score_batch_size": _int(32, "pairs per batch when the reranker denoises candidates", 1),
    },
    description="task: joint (RocketQAv2): how the retriever and the reranker train together",
)

#: the recipe sections the joint task owns, in the order resolved recipes list them
SECTIONS = {"reranker": RERANKER, "joint": JOINT}
