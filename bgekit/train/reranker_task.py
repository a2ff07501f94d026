"""The ``reranker`` task: fine-tune a cross-encoder on groups of (query, passage) pairs.

Data, sampling, batching, checkpoints, callbacks and the loop are the
embedder's (:mod:`bgekit.train`): each example becomes one group of
``data.group_size`` passages (its positive first, then hard negatives, drawn
by :class:`~bgekit.train.sampling.GroupSampler`), here scored as
``group_size`` (query, passage) pairs by the cross-encoder. The losses
(``listwise-ce`` by default; ``ranknet``, ``lambdarank``, ``bce``,
``rerank-kd``) take the (Q, G) logits, (Q, G) labels (1 for the positive, 0
for the negatives; with graded data, ``pos_labels`` or a ``pairs`` file with
labels above 1, the positive's grade, and lower-graded positives may fill
negative slots with theirs) and the teacher's (Q, G) scores when every group
has them.

Pair lengths come from the recipe's ``model`` section: the query keeps at
most ``query_max_length`` tokens and the pair at most ``query_max_length +
passage_max_length`` (capped at what the model's positions allow). The final
model goes to ``<output_dir>/model`` as a plain Hugging Face sequence
classifier (with the resolved recipe beside it), which ``bgekit rerank``,
FlagEmbedding's ``FlagReranker`` and sentence-transformers' ``CrossEncoder``
load.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.plugins import get_plugin_manager
from bgekit.registry import Registry
from bgekit.train.batching import LengthGroupedBatcher
from bgekit.train.callbacks import build_callbacks, recipe_for_plugins, run_lifecycle
from bgekit.train.collate import pin_optional, pin_tensors
from bgekit.train.distributed import setup_process, teardown_process
from bgekit.train.embedder_task import (
    build_losses,
    console,
    example_length,
    load_training_examples,
    save_final_model,
)
from bgekit.train.gradcache import RerankerChunks
from bgekit.train.outcome import data_summary, write_reranker_card
from bgekit.train.sampling import GroupSampler, TrainGroup
from bgekit.train.trainer import RunInfo, Trainer, TrainConfig, resolve_dtype, seed_everything, weighted_loss_sum

DEFAULT_LOSS = {"name": "listwise-ce"}
#: ``model_max_length`` values above this mean "no limit recorded" in Hugging Face tokenizers.
NO_RECORDED_LIMIT = 1_000_000


@dataclass
class RerankBatch:
    """Q groups of G tokenized (query, passage) pairs, group after group, the positive first."""

    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    teacher_scores: torch.Tensor | None
    group_size: int

    @property
    def num_queries(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_passages(self) -> int:
        return int(self.features["input_ids"].shape[0])

    def num_tokens(self) -> int:
        """Real (unpadded) tokens of all pairs."""
        return int(self.features["attention_mask"].sum())

    def to(self, device: Any) -> "RerankBatch":
        teacher = self.teacher_scores.to(device) if self.teacher_scores is not None else None
        return RerankBatch({k: v.to(device, non_blocking=True) for k, v in self.features.items()},
                           self.labels.to(device), teacher, self.group_size)

    def pin_memory(self) -> "RerankBatch":
        """This batch in page-locked memory, so its copy to the GPU (``to``, non-blocking) overlaps compute."""
        return RerankBatch(pin_tensors(self.features), self.labels.pin_memory(), pin_optional(self.teacher_scores),
                           self.group_size)


class RerankCollator:
    """Builds a :class:`RerankBatch` from training groups with the cross-encoder's pair tokenizer."""

    def __init__(self, model: Any, *, query_instruction: str = "", passage_instruction: str = "") -> None:
        self.model = model
        self.query_instruction = query_instruction or ""
        self.passage_instruction = passage_instruction or ""

    def __call__(self, groups: Sequence[TrainGroup]) -> RerankBatch:
        if not groups:
            raise ValueError("cannot collate an empty batch")
        group_size = len(groups[0].passages)
        if any(len(g.passages) != group_size for g in groups):
            raise ValueError("all groups of a batch must have the same number of passages")
        queries = [(g.prompt if g.prompt is not None else self.query_instruction) + g.query
                   for g in groups for _ in g.passages]
        passages = [self.passage_instruction + p for g in groups for p in g.passages]
        features = self.model.collate(self.model.tokenize_pairs(queries, passages))
        labels = torch.zeros(len(groups), group_size)
        labels[:, 0] = 1.0  # the sampler puts the positive first
        for row, group in enumerate(groups):
            if group.labels is not None:  # graded relevance (data with pos_labels)
                labels[row] = torch.tensor(group.labels, dtype=torch.float32)
        teacher = None
        if all(g.teacher_scores is not None for g in groups):
            teacher = torch.tensor([g.teacher_scores for g in groups], dtype=torch.float32)
        return RerankBatch(features, labels, teacher, group_size)


def rerank_batch_loss(losses: Sequence[Any]):
    """The trainer's ``batch_loss``: the cross-encoder's (Q, G) logits through the reranker losses."""

    def batch_loss(wrapped: torch.nn.Module, batch: RerankBatch, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        logits = wrapped(batch.features).view(batch.num_queries, batch.group_size)
        return weighted_loss_sum(losses, lambda fn: fn(logits, batch.labels, teacher_scores=batch.teacher_scores,
                                                       step=step))

    return batch_loss


def check_reranker_losses(entries: Any, registry: Registry) -> list[dict[str, Any]]:
    """The recipe's losses as a list; each must be a reranker loss (the recipe check says so too)."""
    entries = [DEFAULT_LOSS] if entries is None else [entries] if isinstance(entries, dict) else list(entries)
    for entry in entries:
        spec = registry.get("loss", entry["name"])
        if getattr(spec, "task", "embedder") != "reranker":
            fitting = [s.name for s in registry.all("loss") if getattr(s, "task", "") == "reranker"]
            raise BgekitError(f"loss '{spec.name}' trains an embedder, not a reranker; reranker losses: "
                              f"{', '.join(fitting)}")
    return entries


def pair_lengths(model_values: dict[str, Any], tokenizer: Any) -> tuple[int, int]:
    """``(pair max length, query max length)`` from the recipe, within the model's position limit."""
    query = int(model_values.get("query_max_length", 64))
    pair = query + int(model_values.get("passage_max_length", 512))
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < NO_RECORDED_LIMIT:
        pair = min(pair, limit)
    return pair, query


def build_model(model_values: dict[str, Any]) -> Any:
    from bgekit.models.cross_encoder import CrossEncoder

    model = CrossEncoder.from_pretrained(model_values["name_or_path"], revision=model_values.get("revision"),
                                         trust_remote_code=bool(model_values.get("trust_remote_code")))
    model.max_length, model.query_max_length = pair_lengths(model_values, model.tokenizer)
    model.budgets()  # fail now, not at the first batch, when the query leaves the passage no room
    return model


def run(recipe: Any, backend: DeviceBackend, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Train a reranker as ``recipe`` says; return a summary of what was written."""
    values: dict[str, Any] = recipe.values
    pm = get_plugin_manager()
    registry = pm.registry
    config = TrainConfig.from_recipe(values)
    output_dir = Path(values["output_dir"])
    data = values.get("data") or {}
    dtype = resolve_dtype(config.dtype, backend)  # fail on a bad dtype before loading anything
    if (values.get("train") or {}).get("select_best"):
        raise BgekitError("train.select_best is not supported by the reranker task (it does not evaluate "
                          "during training); remove it")

    examples, errors = load_training_examples(data, registry)
    losses = build_losses(check_reranker_losses(values.get("loss"), registry), registry)
    callbacks = build_callbacks(values.get("callbacks") or [], registry)
    if (values.get("evaluate") or {}).get("corpus"):
        console.print("[yellow]the reranker task does not evaluate during training: re-order a retriever's "
                      "run with `bgekit rerank` and score it with `bgekit eval`[/yellow]")
    process = setup_process(backend)
    try:
        seed_everything(config.seed)
        model_values = values["model"]
        model = build_model(model_values)
        with_scores = sum(e.pos_scores is not None and e.neg_scores is not None for e in examples)
        if 0 < with_scores < len(examples) and process.is_main:
            console.print(f"[yellow]{with_scores} of {len(examples)} examples have teacher scores; a batch "
                          "with any example without them has no teacher scores for its losses[/yellow]")
        sampler = GroupSampler(examples, data.get("group_size", 8), seed=config.seed, graded=True)
        batcher = LengthGroupedBatcher([example_length(e) for e in examples], config.batch_size,
                                       seed=config.seed, shuffle=data.get("shuffle", True),
                                       length_grouping=data.get("length_grouping", True),
                                       rank=process.rank, world_size=process.world_size)
        collator = RerankCollator(model, query_instruction=model_values.get("query_instruction") or "",
                                  passage_instruction=model_values.get("passage_instruction") or "")
        run_info = RunInfo(recipe=recipe_for_plugins(recipe), output_dir=output_dir,
                           is_main_process=process.is_main,
                           rank=process.rank, world_size=process.world_size, task="reranker")

        def restore_model(model_dir: Path) -> None:
            from bgekit.models.cross_encoder import CrossEncoder

            model.load_state_dict(CrossEncoder.from_pretrained(model_dir).state_dict())

        trainer = Trainer(model=model, losses=losses, sampler=sampler, batcher=batcher, collator=collator,
                          config=config, backend=backend, process=process, run=run_info, plugin_manager=pm,
                          restore_model=restore_model, batch_loss=rerank_batch_loss(losses),
                          chunked=RerankerChunks(losses), num_workers=data.get("num_workers", "auto"),
                          show_progress=sys.stderr.isatty() if show_progress is None else show_progress,
                          log_lines=show_progress is None)
        with run_lifecycle(pm, run_info, callbacks):
            result = trainer.train()
            model_dir = output_dir / "model"
            if process.is_main:
                model_dir = save_final_model(model, recipe, output_dir)
                write_reranker_card(model_dir, model, recipe, data_summary(data.get("train"), examples, errors))
            process.barrier()
    finally:
        teardown_process(process)

    if process.is_main:
        console.print(f"[bold green]reranker saved to {model_dir}[/bold green]")
        console.print(f"score pairs with it: bgekit rerank --model {model_dir} --input pairs.jsonl "
                      "--output scored.jsonl", markup=False, highlight=False, soft_wrap=True)
    return {
        "task": "reranker",
        "output_dir": str(output_dir),
        "model_dir": str(model_dir),
        "metrics_log": str(output_dir / "metrics.jsonl"),
        "examples": len(examples),
        "skipped_rows": len(errors),
        **result.summary(),
        "device": backend.name,
        "dtype": dtype,
    }
