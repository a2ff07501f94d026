"""The outer recipe schema: sections and their keys, before any plugin's part.

Component slots (``model.heads[]``, ``loss``, ``miner``, ``callbacks[]``) are
marked with ``{"$component": KIND}``; :mod:`bgekit.schema` replaces each
marker with the live registry's names and each plugin's parameter schema.
Strings that name a component without parameters (``task``, ``device.name``,
``data.format``, ``evaluate.metrics[]``) carry ``"$name_of": KIND``. The
sections a task owns (``augment``; ``reranker`` and ``joint``, in
:mod:`bgekit.train.joint_section`) are not here: each task's plugin hands
them over in its :class:`bgekit.registry.TaskSpec`, and :mod:`bgekit.schema`
adds them (:func:`bgekit.schema.section_schema` finds a section wherever it lives).
Every object here is closed (``additionalProperties: false``).

File paths in a recipe (``data.train``, ``evaluate.*``, ``output_dir``) are
relative to the working directory the command runs in, not to the recipe
file; only ``extends`` is relative to the recipe that contains it.
"""

from __future__ import annotations

import copy
from typing import Any

#: Pipeline steps (:mod:`bgekit.pipeline`), in the only order they may run.
STEPS = ["augment", "mine", "score", "train", "evaluate"]


def _obj(properties: dict[str, Any], required: list[str] | None = None, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    return out


def _int(default: int | None, description: str, minimum: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "description": description}
    if default is not None:
        out["default"] = default
    if minimum is not None:
        out["minimum"] = minimum
    return out


def _num(default: float, description: str, minimum: float | None = None,
         maximum: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number", "default": default, "description": description}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _str(default: str | None, description: str, nullable: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["string", "null"] if nullable else "string", "description": description}
    if default is not None or nullable:
        out["default"] = default
    return out


def _bool(default: bool, description: str) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "description": description}


PATHS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
         "description": "a file path, or a list of them (relative to the working directory)"}

EVAL_DATA = _obj(
    {
        "corpus": _str(None, "BEIR corpus.jsonl (id, text, optional title)"),
        "queries": _str(None, "BEIR queries.jsonl (id, text)"),
        "qrels": _str(None, "qrels: TSV 'query-id corpus-id score' or TREC 'qid 0 docid rel'"),
        "metrics": {"type": "array", "items": {"type": "string", "$name_of": "metric"}, "default": ["ndcg@10", "recall@100", "mrr@10"],
                    "description": "metric names as users write them, e.g. ndcg@10"},
        "mode": _str("dense", "which head(s) retrieve: a head of the model (dense, sparse, colbert or a "
                              "plugin's) or hybrid, checked against the model's heads when it loads"),
        "top_k": _int(100, "documents retrieved per query", 1),
        "batch_size": _int(64, "texts encoded per batch", 1),
        "every_steps": _int(0, "evaluate every N optimiser steps during training (0: only at the end)", 0),
    },
    description="held-out evaluation data, BEIR-style",
)


def outer_schema() -> dict[str, Any]:
    """The recipe schema with component markers still in place."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://bgekit.dev/schemas/recipe.schema.json",
        "title": "bgekit recipe",
        "type": "object",
        "additionalProperties": False,
        "required": ["task", "model", "output_dir"],
        "properties": {
            "extends": _str(None, "a base recipe to start from (path relative to this file)"),
            "task": {"type": "string", "$name_of": "task",
                     "description": "which job this recipe runs (with steps: what 'train' trains)"},
            "steps": {"type": "array", "items": {"enum": STEPS}, "uniqueItems": True, "default": [],
                      "description": "a pipeline run in order, each step reading the previous one's output "
                                     "(augment -> output_dir/augmented.jsonl, mine -> output_dir/mined.jsonl, "
                                     "score -> scored.jsonl, train -> model, "
                                     "evaluate -> eval/metrics.json); a step already done for the same inputs "
                                     "and settings is skipped. Empty: run the task alone"},
            "output_dir": _str(None, "where models, logs and the resolved recipe go"),
            "seed": _int(42, "seed for sampling, shuffling and initialisation"),
            "model": _obj(
                {
                    "name_or_path": _str(None, "Hugging Face id (BAAI/bge-m3) or local directory"),
                    "heads": {"type": "array", "items": {"$component": "head"},
                              "default": [{"name": "dense"}],
                              "description": "heads on top of the encoder: dense, sparse, colbert"},
                    "query_max_length": _int(64, "query length in tokens", 1),
                    "passage_max_length": _int(512, "passage length in tokens", 1),
                    "query_instruction": _str("", "text put before every query"),
                    "passage_instruction": _str("", "text put before every passage"),
                    "revision": _str(None, "hub revision (branch, tag or commit)", nullable=True),
                    "trust_remote_code": _bool(False, "allow a hub model's own code to run"),
                },
                required=["name_or_path"],
            ),
            "data": _obj(
                {
                    "train": PATHS,
                    "format": {"oneOf": [{**_str("auto", "data format name, or auto to detect"),
                                          "$name_of": "data_format"},
                                         {"$component": "data_format"}],
                               "default": "auto",
                               "description": "data format name (auto: detect), or {name: FORMAT, PARAM: value} "
                                              "to set the format's parameters (e.g. a delimiter)"},
                    "encoding": _str("auto", "text encoding, or auto to detect"),
                    "group_size": _int(8, "passages per query: 1 positive + group_size-1 negatives", 1),
                    "shuffle": _bool(True, "shuffle examples every epoch"),
                    "length_grouping": _bool(True, "batch examples of similar length to cut padding"),
                    "max_examples": _int(None, "read at most this many examples (for quick tries)", 1),
                    "num_workers": {"anyOf": [{"type": "integer", "minimum": 0}, {"const": "auto"}],
                                    "default": "auto",
                                    "description": "a number of DataLoader worker processes tokenising the next "
                                                   "batches while the model trains (0: on the training thread) "
                                                   "or auto (1 on a CPU, up to 4 on an accelerator)"},
                },
            ),
            "loss": {
                "oneOf": [{"$component": "loss"}, {"type": "array", "items": {"$component": "loss"}, "minItems": 1}],
                "description": "a loss, or a list of losses whose weighted sum is trained",
            },
            "miner": {"$component": "miner"},
            "score": _obj(
                {
                    "reranker": _str(None, "teacher cross-encoder for the score step (e.g. BAAI/bge-reranker-v2-m3 "
                                           "or a local directory)", nullable=True),
                    "batch_size": _int(32, "pairs per batch", 1),
                    "max_length": _int(512, "tokens per (query, passage) pair", 8),
                    "query_max_length": _int(None, "tokens a query may take of the pair (default: 3/4 of "
                                                   "max_length)", 1),
                    "normalize": _bool(False, "write sigmoid(logit) in [0, 1] instead of raw logits"),
                },
                description="teacher scores (pos_scores/neg_scores) for task: score and the 'score' pipeline step",
            ),
            "train": _obj(
                {
                    "epochs": _num(1, "passes over the data", 0),
                    "max_steps": _int(-1, "stop after this many optimiser steps (-1: use epochs)"),
                    "batch_size": _int(8, "queries per device per step", 1),
                    "learning_rate": _num(1e-5, "peak learning rate", 0),
                    "weight_decay": _num(0.01, "AdamW weight decay (not on biases and norms)", 0),
                    "warmup_ratio": _num(0.1, "share of steps spent warming up", 0),
                    "warmup_steps": _int(0, "warm-up steps (wins over warmup_ratio when > 0)", 0),
                    "lr_scheduler": {"enum": ["linear", "cosine", "constant"], "default": "linear",
                                     "description": "decay after warm-up"},
                    "gradient_accumulation_steps": _int(1, "micro-batches per optimiser step", 1),
                    "max_grad_norm": _num(1.0, "gradient clipping norm (0: off)", 0),
                    "dtype": {"enum": ["auto", "fp32", "bf16", "fp16"], "default": "auto",
                              "description": "autocast dtype; auto takes the device backend's choice"},
                    "gradient_checkpointing": _bool(False, "trade compute for memory"),
                    "chunk_size": _int(0, "GradCache: texts (reranker: pairs; joint: retriever texts or "
                                          "reranker pairs) per forward chunk, so the batch "
                                          "size no longer bounds memory, at one extra forward pass; 0 = off", 0),
                    "negatives_cross_device": _bool(False, "share negatives across data-parallel ranks"),
                    "logging_steps": _int(10, "log every N optimiser steps", 1),
                    "save_steps": _int(0, "checkpoint every N steps (0: only at the end)", 0),
                    "save_total_limit": _int(2, "checkpoints kept", 1),
                    "resume_from": _str(None, "'latest' or a checkpoint directory", nullable=True),
                    "max_failed_batches": _int(10, "batches with a non-finite loss or gradient norm skipped "
                                                   "before the run stops", 0),
                    "select_best": _str(None, "keep the checkpoint best on this metric (e.g. ndcg@10)",
                                        nullable=True),
                },
            ),
            "device": _obj(
                {"name": {**_str("auto", "device backend (cpu, cuda, ascend) or auto"), "$name_of": "device"}},
            ),
            "evaluate": EVAL_DATA,
            "callbacks": {"type": "array", "items": {"$component": "callback"}, "default": [],
                          "description": "callbacks such as loggers"},
        },
    }
