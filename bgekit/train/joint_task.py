"""The ``joint`` task: a retriever and a reranker trained together, as RocketQAv2 does.

RocketQAv2 (Ren et al., 2021, arXiv:2110.07367) trains a dual-encoder
retriever and a cross-encoder reranker on the same candidate lists (per
query: its positive and ``group_size - 1`` candidates):

- the reranker learns from the labels: listwise cross-entropy over the list
  (``joint.reranker_loss``: any registered reranker loss, ``listwise-ce`` by default);
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
resolved recipe beside it. With ``train.chunk_size`` a micro-batch runs by
GradCache (:mod:`bgekit.train.joint_chunks`): ``chunk_size`` texts per
retriever chunk, ``chunk_size`` pairs per reranker chunk, the same loss on the
whole batch. The run around it is
:mod:`bgekit.train.task_skeleton`'s; :class:`JointTask` says what is joint
training's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.recipe import check_loss_tasks
from bgekit.registry import Registry, task_default
from bgekit.train.candidates import CandidateRefresher
from bgekit.train.collate import Collator, TrainBatch
from bgekit.train.embedder_task import build_model as build_retriever
from bgekit.train.embedder_task import embedder_collator
from bgekit.train.gradcache import input_embeddings
from bgekit.train.joint_chunks import JointChunk, JointChunks, JointRep
from bgekit.train.loss_terms import LossTerm, build_losses, loss_entries, weighted_loss_sum
from bgekit.train.outcome import data_summary, write_embedder_card, write_reranker_card
from bgekit.train.refresh import RefreshingSampler
from bgekit.train.reranker_task import RerankBatch, RerankCollator
from bgekit.train.sampling import TrainGroup
from bgekit.train.settings import schema_field, setting, settings_from_section
from bgekit.train.task_skeleton import TaskSetup, TrainingRun, TrainingTask, console, run_training, save_model
from bgekit.train.trainer import TrainResult, parameter_groups

RETRIEVER_DIR = "retriever"
RERANKER_DIR = "reranker"


@dataclass
class JointSettings:
    """The recipe's ``joint`` section (see :mod:`bgekit.recipe_schema` for each key; its defaults are the schema's)."""

    head: str = schema_field("joint", "head")
    temperature: float = schema_field("joint", "temperature")
    reranker_temperature: float = schema_field("joint", "reranker_temperature")
    #: the reranker's loss from the labels: a loss component, ``{name: ..., <params>}``; None: the one the task
    #: declares (listwise-ce for the built-in joint task)
    reranker_loss: dict[str, Any] | None = schema_field("joint", "reranker_loss")
    rerank_weight: float = schema_field("joint", "rerank_weight")
    distill_weight: float = schema_field("joint", "distill_weight")
    contrastive_weight: float = schema_field("joint", "contrastive_weight")
    distill_to_reranker: bool = schema_field("joint", "distill_to_reranker")
    negative_max_preference: float = schema_field("joint", "negative_max_preference")
    mine_at_start: bool = schema_field("joint", "mine_at_start")
    refresh_every: int = schema_field("joint", "refresh_every")
    score_batch_size: int = schema_field("joint", "score_batch_size")

    @classmethod
    def from_recipe(cls, values: dict[str, Any]) -> JointSettings:
        """From the recipe's ``joint`` section; an unknown key is refused."""
        return settings_from_section(cls, "joint", values.get("joint"))


@dataclass
class RerankerSettings:
    """The recipe's ``reranker`` section: the cross-encoder trained beside the retriever (defaults: the schema's)."""

    name_or_path: str | None = schema_field("reranker", "name_or_path")
    max_length: int = schema_field("reranker", "max_length")
    query_max_length: int = schema_field("reranker", "query_max_length")
    learning_rate: float | None = schema_field("reranker", "learning_rate")
    revision: str | None = schema_field("reranker", "revision")
    trust_remote_code: bool = schema_field("reranker", "trust_remote_code")

    @classmethod
    def from_recipe(cls, values: dict[str, Any]) -> RerankerSettings:
        """From the recipe's ``reranker`` section; an unknown key is refused."""
        return settings_from_section(cls, "reranker", values.get("reranker"))


class JointModel(torch.nn.Module):
    """The retriever (an :class:`~bgekit.models.Embedder`) and the reranker (a
    :class:`~bgekit.models.cross_encoder.CrossEncoder`) as one module: one optimizer, one checkpoint."""

    def __init__(self, retriever: torch.nn.Module, reranker: torch.nn.Module) -> None:
        super().__init__()
        self.retriever = retriever
        self.reranker = reranker

    def forward(self, batch: JointBatch | None = None, *,
                chunk: JointChunk | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor] | JointRep:
        """The retriever's (Q, Q*G) scores per head and the reranker's (Q, G) logits.

        ``forward(chunk=...)`` instead runs one GradCache chunk (:mod:`bgekit.train.joint_chunks`): the
        retriever heads' representations of its texts and/or the reranker's logits of its pairs, through
        this module's ``__call__`` so a DDP wrapper's hooks see it.
        """
        if chunk is not None:
            return JointRep(
                retriever=self.retriever(features=chunk.retriever) if chunk.retriever is not None else None,
                reranker=self.reranker(chunk.reranker) if chunk.reranker is not None else None)
        if batch is None:
            raise TypeError("JointModel.forward takes a batch, or chunk=")
        retrieval = batch.retrieval
        scores = self.retriever(retrieval.queries, retrieval.passages)
        logits = self.reranker(batch.rerank.features).view(batch.num_queries, batch.group_size)
        return scores, logits

    def input_embedding_tables(self) -> list[torch.nn.Embedding]:
        """Both models' token-embedding tables: GradCache writes each one's gradient once per micro-batch."""
        return [t for t in (input_embeddings(self.retriever), input_embeddings(self.reranker)) if t is not None]

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


def joint_loss(settings: JointSettings, rerank_loss: Any, contrastive: Sequence[LossTerm],
               rerank_part: str = "rerank_ce"):
    """``loss(scores, logits, batch, step)``: weighted reranker loss + listwise distillation (+ the retriever's
    own loss) from the retriever's (Q, Q*G) scores per head and the reranker's (Q, G) logits. Shared by the
    unchunked step and GradCache (:class:`~bgekit.train.joint_chunks.JointChunks`: ``plain_loss`` and ``loss``).

    ``rerank_loss`` is a reranker loss (``joint.reranker_loss``), called as ``fn(logits, labels,
    teacher_scores=..., step=...)`` (the data's pos_scores/neg_scores, for a distilling loss such as rerank-kd);
    its value is logged as ``rerank_part``.
    """

    def loss(scores: dict[str, torch.Tensor], logits: torch.Tensor, batch: JointBatch,
             step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if settings.head not in scores:
            raise BgekitError(f"joint.head: the retriever has no head '{settings.head}'; it has: "
                              f"{', '.join(scores)}")
        listed = in_group_scores(scores[settings.head], batch.group_size)
        labels = batch.rerank.labels
        rerank = rerank_loss(logits, labels, teacher_scores=batch.rerank.teacher_scores, step=step).loss
        distill = listwise_distillation(listed, logits, temperature=settings.temperature,
                                        reranker_temperature=settings.reranker_temperature,
                                        to_reranker=settings.distill_to_reranker)
        total = settings.rerank_weight * rerank + settings.distill_weight * distill
        parts = {rerank_part: float(rerank.detach()), "distill_kl": float(distill.detach())}
        if settings.contrastive_weight > 0:
            targets = torch.arange(batch.num_queries, device=listed.device) * batch.group_size
            own, own_parts = weighted_loss_sum(contrastive, lambda fn: fn(
                scores, targets, batch.group_size, teacher_scores=batch.retrieval.teacher_scores, step=step))
            total = total + settings.contrastive_weight * own
            parts.update({f"retriever/{k}": v for k, v in own_parts.items()})
        return total, parts

    return loss


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


def build_reranker_loss(entry: dict[str, Any], registry: Registry) -> LossTerm:
    """``joint.reranker_loss`` made by the registry; it must be a reranker loss, and is weighted by
    ``joint.rerank_weight``."""
    where = "joint.reranker_loss"
    check_loss_tasks([entry], "joint", where, registry)
    if float(entry.get("weight", 1.0)) != 1.0:
        raise BgekitError(f"{where}.weight: the reranker loss is weighted by joint.rerank_weight; remove weight")
    return build_losses([entry], registry, where=where)[0]


def rerank_part_name(loss_name: str, default_name: str | None = None) -> str:
    """The metrics key of the reranker's loss: ``rerank_ce`` for the task's default (``default_name``, listwise
    cross-entropy for the built-in joint task), as before the loss could be chosen; ``rerank_<name>`` for any
    other."""
    return "rerank_ce" if loss_name == default_name else f"rerank_{loss_name}"


def build_reranker(settings: RerankerSettings) -> Any:
    from bgekit.models.cross_encoder import CrossEncoder

    if not settings.name_or_path:
        raise BgekitError("reranker.name_or_path: task joint needs a reranker to train beside the retriever, "
                          "e.g. reranker: {name_or_path: BAAI/bge-reranker-base}")
    model = CrossEncoder.from_pretrained(settings.name_or_path, revision=settings.revision,
                                         trust_remote_code=bool(settings.trust_remote_code),
                                         max_length=int(settings.max_length),
                                         query_max_length=int(settings.query_max_length))
    model.budgets()  # fail now when the query leaves the passage no room
    return model


class JointTask(TrainingTask):
    """A retriever and a reranker in one :class:`JointModel`, trained on the same denoised candidate lists."""

    name = "joint"

    def check(self, run: TrainingRun) -> None:
        self.settings = JointSettings.from_recipe(run.values)
        self.reranker_settings = RerankerSettings.from_recipe(run.values)
        self.group_size = int(setting(run.data, "data", "group_size"))
        if run.config.select_best:
            raise BgekitError("train.select_best is not supported by the joint task; remove it")
        if self.group_size < 2:
            raise BgekitError("data.group_size: joint training distils over lists; use at least 2")
        # built now, so an embedder loss named here fails before the data is read
        chosen = self.settings.reranker_loss
        self.rerank_loss = build_reranker_loss(
            chosen if chosen is not None else task_default(run.registry, run.task, "joint.reranker_loss"),
            run.registry)
        declared = run.registry.get("task", run.task).default_component("joint.reranker_loss")
        self.default_rerank_name = declared["name"] if declared else None

    def prepare(self, run: TrainingRun) -> None:
        settings = self.settings
        self.contrastive = build_losses(check_loss_tasks(
            loss_entries(run.component("loss")), "joint", "loss", run.registry), run.registry) \
            if settings.contrastive_weight > 0 else []

    def build(self, run: TrainingRun) -> TaskSetup:
        values, settings, config, registry = run.values, self.settings, run.config, run.registry
        retriever = build_retriever(values["model"], registry)
        reranker = build_reranker(self.reranker_settings)
        model = JointModel(retriever, reranker).to(run.process.device)

        # The first candidate lists: the data's negatives, plus (mine_at_start, RocketQAv2's hybrid data
        # augmentation) those the starting retriever finds, all denoised by the starting reranker.
        sampler = RefreshingSampler(run.examples, self.group_size, seed=config.seed, log=run.log)
        candidates = CandidateRefresher(
            run.examples, sampler, max_preference=settings.negative_max_preference,
            keep_at_least=self.group_size - 1, score_batch_size=settings.score_batch_size,
            output_dir=run.output_dir, registry=registry, log=run.log, write=run.is_main,
            miner=run.component("miner") if settings.refresh_every or settings.mine_at_start
            else None, mine_batch_size=setting(values.get("evaluate"), "evaluate", "batch_size"))
        self.initial = candidates.candidates(model, step=0, epoch=0, mine=settings.mine_at_start)
        sampler.examples = list(self.initial)
        self.stats = candidates.last_stats
        self.refresher = candidates if settings.refresh_every else None

        def restore_model(model_dir: Path) -> None:
            from bgekit.models import Embedder
            from bgekit.models.cross_encoder import CrossEncoder

            saved = Embedder.from_pretrained(str(model_dir / RETRIEVER_DIR), heads=retriever.head_configs,
                                             registry=registry)
            retriever.load_state_dict(saved.state_dict())
            reranker.load_state_dict(CrossEncoder.from_pretrained(model_dir / RERANKER_DIR).state_dict())

        chunks = JointChunks(joint_loss(settings, self.rerank_loss.fn, self.contrastive,
                                        rerank_part=rerank_part_name(self.rerank_loss.name, self.default_rerank_name)))
        return TaskSetup(model=model, sampler=sampler, collator=JointCollator(embedder_collator(retriever),
                                                                              RerankCollator(reranker)),
                         chunked=chunks, restore_model=restore_model,
                         trainer_options={"refresh": self.refresher, "refresh_every": settings.refresh_every,
                                          "optimizer_groups": joint_optimizer_groups(
                                              self.reranker_settings.learning_rate),
                                          "clip_groups": per_model_clip_groups})

    def model_dirs(self, run: TrainingRun) -> dict[str, Path]:
        return {"retriever_dir": run.output_dir / RETRIEVER_DIR, "reranker_dir": run.output_dir / RERANKER_DIR}

    def save(self, run: TrainingRun, setup: TaskSetup, result: TrainResult) -> None:
        dirs, recipe = self.model_dirs(run), run.recipe
        retriever, reranker = setup.model.retriever, setup.model.reranker
        save_model(retriever, recipe, dirs["retriever_dir"])
        save_model(reranker, recipe, dirs["reranker_dir"])
        card_data = data_summary(run.data.get("train"), run.examples, run.errors)
        write_embedder_card(dirs["retriever_dir"], retriever, recipe, card_data, None, None)
        write_reranker_card(dirs["reranker_dir"], reranker, recipe, card_data, run.values["reranker"])

    def data_summary(self, run: TrainingRun) -> dict[str, Any]:
        return {"denoised_negatives_dropped": self.stats.dropped,
                "candidates_per_query": round(sum(len(e.neg) for e in self.initial) / max(1, len(self.initial)),
                                              2)}

    def outcome_summary(self, run: TrainingRun) -> dict[str, Any]:
        return {"candidate_refreshes": self.refresher.refreshes} if self.refresher is not None else {}

    def report(self, run: TrainingRun, dirs: dict[str, Path]) -> None:
        console.print(f"[bold green]retriever saved to {dirs['retriever_dir']}, reranker to "
                      f"{dirs['reranker_dir']}[/bold green]")


def run(recipe: Any, backend: DeviceBackend, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Train a retriever and a reranker together as ``recipe`` says; return a summary."""
    return run_training(JointTask(), recipe, backend, show_progress=show_progress)
