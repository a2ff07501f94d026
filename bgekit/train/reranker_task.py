"""The ``reranker`` task: fine-tune a cross-encoder on groups of (query, passage) pairs.

Data, sampling, batching, checkpoints, callbacks and the loop are the
embedder's (:mod:`bgekit.train`): each example becomes one group of
``data.group_size`` passages (its positive first, then hard negatives, drawn
by :class:`~bgekit.train.sampling.GroupSampler`), here scored as
``group_size`` (query, passage) pairs by the cross-encoder. The losses
(``listwise-ce`` by default, as the task's spec declares; ``ranknet``, ``lambdarank``, ``bce``,
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

The run around it is :mod:`bgekit.train.task_skeleton`'s; :class:`RerankerTask`
says what is the reranker's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.recipe import check_loss_tasks
from bgekit.train.collate import common_group_size, pin_optional, pin_tensors, query_texts
from bgekit.train.gradcache import RerankerChunks
from bgekit.train.loss_terms import build_losses, loss_entries
from bgekit.train.outcome import data_summary, write_reranker_card
from bgekit.train.sampling import GroupSampler, TrainGroup
from bgekit.train.settings import setting
from bgekit.train.task_skeleton import TaskSetup, TrainingRun, TrainingTask, console, run_training, save_model
from bgekit.train.trainer import TrainResult

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
        group_size = common_group_size(groups)
        queries = [query for query, group in zip(query_texts(groups, self.query_instruction), groups)
                   for _ in group.passages]  # one (query, passage) pair per passage
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


def pair_lengths(model_values: dict[str, Any], tokenizer: Any) -> tuple[int, int]:
    """``(pair max length, query max length)`` from the recipe, within the model's position limit."""
    query = int(setting(model_values, "model", "query_max_length"))
    pair = query + int(setting(model_values, "model", "passage_max_length"))
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


def restore_into(model: torch.nn.Module) -> Any:
    """``restore_model`` for the trainer: a checkpoint's cross-encoder folder loaded into ``model``."""

    def restore_model(model_dir: Path) -> None:
        from bgekit.models.cross_encoder import CrossEncoder

        model.load_state_dict(CrossEncoder.from_pretrained(model_dir).state_dict())

    return restore_model


class RerankerTask(TrainingTask):
    """A cross-encoder trained on groups of (query, passage) pairs by the recipe's reranker ``loss``."""

    name = "reranker"

    def check(self, run: TrainingRun) -> None:
        if run.config.select_best:
            raise BgekitError("train.select_best is not supported by the reranker task (it does not evaluate "
                              "during training); remove it")

    def prepare(self, run: TrainingRun) -> None:
        entries = check_loss_tasks(loss_entries(run.component("loss")), "reranker", "loss", run.registry)
        self.losses = build_losses(entries, run.registry)
        if (run.values.get("evaluate") or {}).get("corpus"):
            console.print("[yellow]the reranker task does not evaluate during training: re-order a retriever's "
                          "run with `bgekit rerank` and score it with `bgekit eval`[/yellow]")

    def build(self, run: TrainingRun) -> TaskSetup:
        model_values = run.values["model"]
        model = build_model(model_values)
        run.warn_partial_teacher_scores("a batch with any example without them has no teacher scores for its "
                                        "losses")
        sampler = GroupSampler(run.examples, setting(run.data, "data", "group_size"), seed=run.config.seed, graded=True)
        collator = RerankCollator(model, query_instruction=model_values.get("query_instruction") or "",
                                  passage_instruction=model_values.get("passage_instruction") or "")
        chunks = RerankerChunks(self.losses)
        return TaskSetup(model=model, sampler=sampler, collator=collator, chunked=chunks,
                         restore_model=restore_into(model))

    def model_dirs(self, run: TrainingRun) -> dict[str, Path]:
        return {"model_dir": run.output_dir / "model"}

    def save(self, run: TrainingRun, setup: TaskSetup, result: TrainResult) -> None:
        model_dir = save_model(setup.model, run.recipe, self.model_dirs(run)["model_dir"])
        write_reranker_card(model_dir, setup.model, run.recipe,
                            data_summary(run.data.get("train"), run.examples, run.errors))

    def report(self, run: TrainingRun, dirs: dict[str, Path]) -> None:
        console.print(f"[bold green]reranker saved to {dirs['model_dir']}[/bold green]")
        console.print(f"score pairs with it: bgekit rerank --model {dirs['model_dir']} --input pairs.jsonl "
                      "--output scored.jsonl", markup=False, highlight=False, soft_wrap=True)


def run(recipe: Any, backend: DeviceBackend, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Train a reranker as ``recipe`` says; return a summary of what was written."""
    return run_training(RerankerTask(), recipe, backend, show_progress=show_progress)
