"""Built-in tasks: what a recipe's ``task:`` can name, registered as a third party's would be.

Runners are ``module:function`` strings, imported only when a recipe runs
them. A task that owns a recipe section hands its schema over here, and
each task names here the components it takes when a recipe leaves a slot
out (``component_defaults``): the core itself names none.
"""

from __future__ import annotations

from bgekit.api import TaskSpec, hookimpl

#: the components the training and mining tasks fall back on (joint reuses the embedder's and reranker's)
RETRIEVER_LOSS = {"name": "infonce"}
RERANKER_LOSS = {"name": "listwise-ce"}
MINER = {"name": "dense"}


@hookimpl
def bgekit_tasks():
    yield TaskSpec(name="embedder", summary="fine-tune a retriever (BGE-M3: dense, sparse, ColBERT heads)",
                   runner="bgekit.train.embedder_task:run", trains=True,
                   component_defaults={"loss": RETRIEVER_LOSS})
    yield TaskSpec(name="reranker", summary="fine-tune a cross-encoder reranker",
                   runner="bgekit.train.reranker_task:run", trains=True,
                   component_defaults={"loss": RERANKER_LOSS})
    yield TaskSpec(name="joint", summary="train a retriever and a reranker together (RocketQAv2)",
                   runner="bgekit.train.joint_task:run", trains=True,
                   sections="bgekit.train.joint_section:SECTIONS",
                   component_defaults={"loss": RETRIEVER_LOSS, "joint.reranker_loss": RERANKER_LOSS, "miner": MINER})
    yield TaskSpec(name="mine", summary="mine hard negatives for the training data",
                   runner="bgekit.mine.mine_task:run", component_defaults={"miner": MINER})
    yield TaskSpec(name="score", summary="teacher scores for the training data from a cross-encoder",
                   runner="bgekit.score_task:run")
    yield TaskSpec(name="evaluate", summary="evaluate a retriever on BEIR-style data",
                   runner="bgekit.evaluate.evaluate_task:run")
    yield TaskSpec(name="augment", summary="write training data with an LLM",
                   runner="bgekit.augment.task:run", sections="bgekit.augment.section:SECTIONS")
