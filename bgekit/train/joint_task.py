"""The ``joint`` task: a retriever and a reranker trained together, as RocketQAv2 does.

RocketQAv2 (Ren et al., 2021, arXiv:2110.07367) trains a dual-encoder
retriever and a cross-encoder reranker on the same candidate lists (per
query: its positive and ``group_size - 1`` candidates):

- the reranker learns from the labels: listwise cross-entropy over the list;
- *dynamic listwise distillation*: the retriever's distribution over the list,
  ``softmax(retriever scores / joint.temperature)``, is pulled towards the
  reranker's, ``softmax(reranker logits / joint.reranker_temperature)``, by
  ``KL(reranker || retriever)``. With ``joint.distill_to_reranker`` (the
  default, as in the paper) the KL's gradient also reaches the reranker, so
  each model adapts to the other; without it the reranker's distribution is a
  detached target;
- optionally the retriever's own ``loss`` (InfoNCE with in-batch negatives),
  weighted by ``joint.contrastive_weight`` (0 by default: the paper has none).

Candidates are denoised hard negatives (:mod:`bgekit.train.candidates`): the
data's negatives, plus those the starting retriever mines (``miner`` section)
with ``joint.mine_at_start`` (the paper's hybrid data augmentation) and those
the current retriever mines every ``joint.refresh_every`` steps; a candidate
the reranker prefers to the labelled positive is dropped as a likely
unlabelled positive.

Both models live in one :class:`JointModel`, so the shared
:class:`~bgekit.train.trainer.Trainer` runs one AdamW over both (the reranker
at ``reranker.learning_rate`` when given). The results are written in their
own formats: ``<output_dir>/retriever`` (as the embedder task's model) and
``<output_dir>/reranker`` (a Hugging Face sequence classifier), each with the
resolved recipe beside it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.plugins import get_plugin_manager
from bgekit.registry import Registry
from bgekit.train.batching import LengthGroupedBatcher
from bgekit.train.callbacks import build_callbacks, recipe_for_plugins, run_lifecycle
from bgekit.train.candidates import CandidateRefresher
from bgekit.train.collate import Collator, TrainBatch
from bgekit.train.distributed import setup_process, teardown_process
from bgekit.train.embedder_task import (
    build_losses,
    console,
    example_length,
    load_training_examples,
    save_model_atomically,
)
from bgekit.train.embedder_task import build_model as build_retriever
from bgekit.train.outcome import data_summary, write_embedder_card, write_reranker_card
from bgekit.train.refresh import RefreshingSampler
from bgekit.train.reranker_task import RerankBatch, RerankCollator
from bgekit.train.sampling import TrainGroup
from bgekit.train.trainer import (
    LossTerm,
    RunInfo,
    TrainConfig,
    Trainer,
    parameter_groups,
    resolve_dtype,
    seed_everything,
    weighted_loss_sum,
)

RETRIEVER_DIR = "retriever"
RERANKER_DIR = "reranker"


@dataclass
class JointSettings:
    """The recipe's ``joint`` section (see :mod:`bgekit.recipe_schema` for each key)."""

    head: str = "dense"
    temperature: float = 0.02
    reranker_temperature: float = 1.0
    rerank_weight: float = 1.0
    distill_weight: float = 1.0
    contrastive_weight: float = 0.0
    distill_to_reranker: bool = True
    negative_max_preference: float = 0.5
    mine_at_start: bool = False
    refresh_every: int = 0
    score_batch_size: int = 32

    @classmethod
    def from_recipe(cls, values: dict[str, Any]) -> JointSettings:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (values.get("joint") or {}).items() if k in known})


class JointModel(torch.nn.Module):
    """The retriever (an :class:`~bgekit.models.Embedder`) and the reranker (a
    :class:`~bgekit.models.cross_encoder.CrossEncoder`) as one module: one optimizer, one checkpoint."""

    def __init__(self, retriever: torch.nn.Module, reranker: torch.nn.Module) -> None:
        super().__init__()
        self.retriever = retriever
        self.reranker = reranker

    def forward(self, batch: JointBatch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The retriever's (Q, Q*G) scores per head and the reranker's (Q, G) logits."""
        retrieval = batch.retrieval
        scores = self.retriever(retrieval.queries, retrieval.passages)
        logits = self.reranker(batch.rerank.features).view(batch.num_queries, batch.group_size)
        return scores, logits

    def save_pretrained(self, directory: str | Path) -> None:
        """Both models in their own layouts, under ``retriever/`` and ``reranker/`` (checkpoints)."""
        self.retriever.save_pretrained(Path(directory) / RETRIEVER_DIR)
        self.reranker.save_pretrained(Path(directory) / RERANKER_DIR)

    def gradient_checkpointing_enable(self) -> None:
        self.retriever.gradient_checkpointing_enable()
        self.reranker.gradient_checkpointing_enable()


@dataclass
class JointBatch:
    """One set of groups, tokenized for the retriever and, as pairs, for the reranker."""

    retrieval: TrainBatch
    rerank: RerankBatch

    @property
    def group_size(self) -> int:
        return self.retrieval.group_size

    @property
    def num_queries(self) -> int:
        return self.retrieval.num_queries

    @property
    def num_passages(self) -> int:
        return self.retrieval.num_passages

    def num_tokens(self) -> int:
        return self.retrieval.num_tokens() + self.rerank.num_tokens()

    def to(self, device: Any) -> JointBatch:
        return JointBatch(self.retrieval.to(device), self.rerank.to(device))

    def pin_memory(self) -> JointBatch:
        return JointBatch(self.retrieval.pin_memory(), self.rerank.pin_memory())


class JointCollator:
    """Collates the same groups twice: the retriever's :class:`Collator`, the reranker's :class:`RerankCollator`."""

    def __init__(self, retrieval: Collator, rerank: RerankCollator) -> None:
        self.retrieval = retrieval
        self.rerank = rerank

    def __call__(self, groups: Sequence[TrainGroup]) -> JointBatch:
        return JointBatch(self.retrieval(groups), self.rerank(groups))


def in_group_scores(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """(Q, G) from a (Q, Q*G) score matrix: each query against its own list only."""
    q = scores.shape[0]
    index = torch.arange(q, device=scores.device)[:, None] * group_size + torch.arange(group_size, device=scores.device)
    return scores.gather(1, index)


def listwise_distillation(retriever_scores: torch.Tensor, reranker_logits: torch.Tensor, *, temperature: float,
                          reranker_temperature: float, to_reranker: bool) -> torch.Tensor:
    """Mean over queries of KL(softmax(reranker / τ_r) || softmax(retriever / τ)) over each (Q, G) list."""
    target = F.log_softmax(reranker_logits.float() / reranker_temperature, dim=-1)
    if not to_reranker:
        target = target.detach()
    student = F.log_softmax(retriever_scores.float() / temperature, dim=-1)
    return F.kl_div(student, target, log_target=True, reduction="batchmean")


def joint_batch_loss(settings: JointSettings, rerank_loss: Any, contrastive: Sequence[LossTerm]):
    """The trainer's ``batch_loss``: weighted reranker loss + listwise distillation (+ retriever's own loss)."""

    def batch_loss(model: torch.nn.Module, batch: JointBatch, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        scores, logits = model(batch)
        if settings.head not in scores:
            raise BgekitError(f"joint.head: the retriever has no head '{settings.head}'; it has: "
                              f"{', '.join(scores)}")
        listed = in_group_scores(scores[settings.head], batch.group_size)
        labels = batch.rerank.labels
        rerank = rerank_loss(logits, labels, step=step).loss
        distill = listwise_distillation(listed, logits, temperature=settings.temperature,
                                        reranker_temperature=settings.reranker_temperature,
                                        to_reranker=settings.distill_to_reranker)
        total = settings.rerank_weight * rerank + settings.distill_weight * distill
        parts = {"rerank_ce": float(rerank.detach()), "distill_kl": float(distill.detach())}
        if settings.contrastive_weight > 0:
            targets = torch.arange(batch.num_queries, device=listed.device) * batch.group_size
            own, own_parts = weighted_loss_sum(contrastive, lambda fn: fn(
                scores, targets, batch.group_size, teacher_scores=batch.retrieval.teacher_scores, step=step))
            total = total + settings.contrastive_weight * own
            parts.update({f"retriever/{k}": v for k, v in own_parts.items()})
        return total, parts

    return batch_loss


def joint_optimizer_groups(reranker_lr: float | None):
    """AdamW groups for both models; the reranker's carry their own ``lr`` when one is given."""

    def groups(model: JointModel, weight_decay: float) -> list[dict[str, Any]]:
        out = parameter_groups(model.retriever, weight_decay)
        reranker = parameter_groups(model.reranker, weight_decay)
        if reranker_lr is not None:
            reranker = [{**g, "lr": float(reranker_lr)} for g in reranker]
        return out + reranker

    return groups


def per_model_clip_groups(model: JointModel) -> list[list[torch.nn.Parameter]]:
    """Clip the retriever and the reranker each on its own, so the retriever's larger distillation
    gradients do not shrink the reranker's updates under one shared norm."""
    return [list(model.retriever.parameters()), list(model.reranker.parameters())]


def check_retriever_losses(entries: Any, registry: Registry) -> Any:
    """The recipe's ``loss`` (the retriever's own) must be embedder losses."""
    listed = [] if entries is None else [entries] if isinstance(entries, dict) else list(entries)
    for entry in listed:
        spec = registry.get("loss", entry["name"])
        if getattr(spec, "task", "embedder") not in (None, "embedder"):
            raise BgekitError(f"loss '{spec.name}' trains a {spec.task}; in a joint recipe 'loss' is the "
                              "retriever's own contrastive loss (e.g. infonce)")
    return entries


def build_reranker(values: dict[str, Any]) -> Any:
    from bgekit.models.cross_encoder import CrossEncoder

    section = values.get("reranker") or {}
    if not section.get("name_or_path"):
        raise BgekitError("reranker.name_or_path: task joint needs a reranker to train beside the retriever, "
                          "e.g. reranker: {name_or_path: BAAI/bge-reranker-base}")
    model = CrossEncoder.from_pretrained(section["name_or_path"], revision=section.get("revision"),
                                         trust_remote_code=bool(section.get("trust_remote_code")),
                                         max_length=int(section.get("max_length", 512)),
                                         query_max_length=int(section.get("query_max_length", 64)))
    model.budgets()  # fail now when the query leaves the passage no room
    return model


def run(recipe: Any, backend: DeviceBackend, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Train a retriever and a reranker together as ``recipe`` says; return a summary."""
    values: dict[str, Any] = recipe.values
    pm = get_plugin_manager()
    registry = pm.registry
    config = TrainConfig.from_recipe(values)
    settings = JointSettings.from_recipe(values)
    output_dir = Path(values["output_dir"])
    data = values.get("data") or {}
    group_size = int(data.get("group_size", 8))
    dtype = resolve_dtype(config.dtype, backend)
    if (values.get("train") or {}).get("select_best"):
        raise BgekitError("train.select_best is not supported by the joint task; remove it")
    if config.chunk_size:
        raise BgekitError("train.chunk_size is not supported by the joint task yet (its loss distils the "
                          "reranker's scores of each group into the retriever's, and GradCache has no adapter for "
                          "the two models together); set train.chunk_size=0 and lower train.batch_size or turn on "
                          "train.gradient_checkpointing")
    if group_size < 2:
        raise BgekitError("data.group_size: joint training distils over lists; use at least 2")

    examples, errors = load_training_examples(data, registry)
    rerank_loss = registry.get("loss", "listwise-ce").create()
    contrastive = build_losses(check_retriever_losses(values.get("loss"), registry), registry) \
        if settings.contrastive_weight > 0 else []
    callbacks = build_callbacks(values.get("callbacks") or [], registry)
    process = setup_process(backend)
    try:
        seed_everything(config.seed)
        retriever = build_retriever(values["model"], registry)
        reranker = build_reranker(values)
        model = JointModel(retriever, reranker).to(process.device)
        log = console.print if process.is_main else None

        # The first candidate lists: the data's negatives, plus (mine_at_start, RocketQAv2's hybrid data
        # augmentation) those the starting retriever finds, all denoised by the starting reranker.
        sampler = RefreshingSampler(examples, group_size, seed=config.seed, log=log)
        candidates = CandidateRefresher(
            examples, sampler, max_preference=settings.negative_max_preference, keep_at_least=group_size - 1,
            score_batch_size=settings.score_batch_size, output_dir=output_dir, registry=registry, log=log,
            write=process.is_main,
            miner=(values.get("miner") or {"name": "dense"}) if settings.refresh_every or settings.mine_at_start
            else None, mine_batch_size=(values.get("evaluate") or {}).get("batch_size", 64))
        initial = candidates.candidates(model, step=0, epoch=0, mine=settings.mine_at_start)
        sampler.examples = list(initial)
        stats = candidates.last_stats
        refresher = candidates if settings.refresh_every else None
        batcher = LengthGroupedBatcher([example_length(e) for e in examples], config.batch_size,
                                       seed=config.seed, shuffle=data.get("shuffle", True),
                                       length_grouping=data.get("length_grouping", True),
                                       rank=process.rank, world_size=process.world_size)
        collator = JointCollator(
            Collator(retriever.tokenizer, query_max_length=retriever.query_max_length,
                     passage_max_length=retriever.passage_max_length, query_instruction=retriever.query_instruction,
                     passage_instruction=retriever.passage_instruction),
            RerankCollator(reranker))
        run_info = RunInfo(recipe=recipe_for_plugins(recipe), output_dir=output_dir,
                           is_main_process=process.is_main,
                           rank=process.rank, world_size=process.world_size, task="joint")

        def restore_model(model_dir: Path) -> None:
            from bgekit.models import Embedder
            from bgekit.models.cross_encoder import CrossEncoder

            saved = Embedder.from_pretrained(str(model_dir / RETRIEVER_DIR), heads=retriever.head_configs,
                                             registry=registry)
            retriever.load_state_dict(saved.state_dict())
            reranker.load_state_dict(CrossEncoder.from_pretrained(model_dir / RERANKER_DIR).state_dict())

        # The trainer's own losses are unused here (batch_loss computes everything); it only needs one listed.
        trainer = Trainer(model=model, losses=[LossTerm("joint", rerank_loss)], sampler=sampler, batcher=batcher,
                          collator=collator, config=config, backend=backend, process=process, run=run_info,
                          plugin_manager=pm, restore_model=restore_model,
                          batch_loss=joint_batch_loss(settings, rerank_loss, contrastive),
                          show_progress=sys.stderr.isatty() if show_progress is None else show_progress,
                          log_lines=show_progress is None, refresh=refresher, refresh_every=settings.refresh_every,
                          optimizer_groups=joint_optimizer_groups((values.get("reranker") or {}).get("learning_rate")),
                          clip_groups=per_model_clip_groups, num_workers=data.get("num_workers", "auto"))
        with run_lifecycle(pm, run_info, callbacks):
            result = trainer.train()
            retriever_dir, reranker_dir = output_dir / RETRIEVER_DIR, output_dir / RERANKER_DIR
            if process.is_main:
                save_model_atomically(retriever, recipe, retriever_dir)
                save_model_atomically(reranker, recipe, reranker_dir)
                card_data = data_summary(data.get("train"), examples, errors)
                write_embedder_card(retriever_dir, retriever, recipe, card_data, None, None)
                write_reranker_card(reranker_dir, reranker, recipe, card_data, values["reranker"])
            process.barrier()
    finally:
        teardown_process(process)

    if process.is_main:
        console.print(f"[bold green]retriever saved to {retriever_dir}, reranker to {reranker_dir}[/bold green]")
    return {
        "task": "joint",
        "output_dir": str(output_dir),
        "retriever_dir": str(retriever_dir),
        "reranker_dir": str(reranker_dir),
        "metrics_log": str(output_dir / "metrics.jsonl"),
        "examples": len(examples),
        "skipped_rows": len(errors),
        "denoised_negatives_dropped": stats.dropped,
        "candidates_per_query": round(sum(len(e.neg) for e in initial) / max(1, len(initial)), 2),
        **result.summary(),
        "device": backend.name,
        "dtype": dtype,
        **({"candidate_refreshes": refresher.refreshes} if refresher is not None else {}),
    }
