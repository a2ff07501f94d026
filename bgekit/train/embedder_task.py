"""The ``embedder`` task: fine-tune an encoder with retrieval heads from a resolved recipe.

Reads the recipe's ``model``, ``data``, ``loss``, ``train``, ``evaluate`` and
``callbacks`` sections, builds the model, data pipeline and losses from the
registry, trains, and saves the final model to ``<output_dir>/model`` (with
the resolved recipe beside it), ready for ``bgekit encode`` and for
FlagEmbedding's ``BGEM3FlagModel``. With ``train.select_best`` the model best
on that metric is kept as ``<output_dir>/best`` too (:mod:`bgekit.train.best`);
with ``miner.refresh_every`` hard negatives are re-mined with the model being
trained (:mod:`bgekit.train.refresh`).

The run around it (data, callbacks, processes, seeding, the loop, the
summary) is :mod:`bgekit.train.task_skeleton`'s; :class:`EmbedderTask` says
what is the embedder's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bgekit.devices import DeviceBackend
from bgekit.data.example import Example
from bgekit.registry import Registry
from bgekit.train import checkpoint as ckpt
from bgekit.train import refresh
from bgekit.train.best import BestModel, check_select_best
from bgekit.train.collate import Collator
from bgekit.train.gradcache import EmbedderChunks
from bgekit.train.loss_terms import build_losses, loss_entries
from bgekit.train.outcome import HeldOutEvaluation, comparison_lines, data_summary, write_embedder_card
from bgekit.train.refresh import NegativeRefresher, RefreshingSampler
from bgekit.train.sampling import GroupSampler
from bgekit.train.settings import setting
from bgekit.train.task_skeleton import (
    TaskSetup,
    TrainingRun,
    TrainingTask,
    console,
    run_training,
    save_model,
    write_model,
)
from bgekit.train.trainer import TrainResult


def build_model(model_values: dict[str, Any], registry: Registry) -> Any:
    from bgekit.models import Embedder

    model = Embedder.from_pretrained(
        model_values["name_or_path"], heads=model_values.get("heads") or None,
        revision=model_values.get("revision"), trust_remote_code=bool(model_values.get("trust_remote_code")),
        registry=registry,
    )
    model.query_max_length = setting(model_values, "model", "query_max_length")
    model.passage_max_length = setting(model_values, "model", "passage_max_length")
    model.query_instruction = model_values.get("query_instruction") or ""
    model.passage_instruction = model_values.get("passage_instruction") or ""
    return model


def embedder_collator(model: Any) -> Collator:
    """Tokenizes queries and passages as ``model`` was configured (lengths, instructions)."""
    return Collator(model.tokenizer, query_max_length=model.query_max_length,
                    passage_max_length=model.passage_max_length, query_instruction=model.query_instruction,
                    passage_instruction=model.passage_instruction)


def _held_out(values: dict[str, Any], output_dir: Path) -> HeldOutEvaluation | None:
    """The recipe's ``evaluate`` section as a :class:`HeldOutEvaluation`, or None when it has none."""
    spec = values.get("evaluate") or {}
    return HeldOutEvaluation(spec, output_dir) if spec.get("corpus") else None


def build_refresh(values: dict[str, Any], examples: list[Example], sampler: RefreshingSampler,
                  output_dir: Path, registry: Registry, is_main: bool, resume: Path | None) -> NegativeRefresher:
    """The ``miner.refresh_every`` re-miner; on a resume, the negatives in use when the run stopped come back."""
    refresher = NegativeRefresher(examples, values["miner"], sampler, output_dir,
                                  batch_size=setting(values.get("evaluate"), "evaluate", "batch_size"),
                                  write=is_main, registry=registry, log=console.print if is_main else None)
    match = ckpt.CHECKPOINT_RE.match(resume.name) if resume is not None else None
    if match:
        restored = refresh.restore(sampler, output_dir, int(match.group(1)))
        if restored and is_main:
            console.print(f"resuming with the negatives re-mined up to {restored[-1].name}")
    return refresher


class EmbedderTask(TrainingTask):
    """An encoder with retrieval heads, trained on its heads' scores by the recipe's ``loss``."""

    name = "embedder"

    def check(self, run: TrainingRun) -> None:
        check_select_best(run.config.select_best, run.values.get("evaluate"))

    def prepare(self, run: TrainingRun) -> None:
        self.refresh_every = int((run.values.get("miner") or {}).get("refresh_every") or 0)
        self.losses = build_losses(loss_entries(run.component("loss")), run.registry)
        self.held_out = _held_out(run.values, run.output_dir)
        self.best: BestModel | None = None
        self.refresher: NegativeRefresher | None = None
        self.final_metrics: dict[str, float] = {}
        self.comparison: dict[str, Any] | None = None

    def build(self, run: TrainingRun) -> TaskSetup:
        values, config, registry = run.values, run.config, run.registry
        model = build_model(values["model"], registry)
        run.warn_partial_teacher_scores("batches with any example without them train without distillation")
        group_size = setting(run.data, "data", "group_size")
        if self.refresh_every:
            sampler: GroupSampler = RefreshingSampler(run.examples, group_size, seed=config.seed, log=run.log)
            self.refresher = build_refresh(values, run.examples, sampler, run.output_dir, registry, run.is_main,
                                           ckpt.resolve_resume(config.resume_from, run.output_dir))
        else:
            sampler = GroupSampler(run.examples, group_size, seed=config.seed)

        def restore_model(model_dir: Path) -> None:
            from bgekit.models import Embedder

            saved = Embedder.from_pretrained(str(model_dir), heads=model.head_configs, registry=registry)
            model.load_state_dict(saved.state_dict())

        if config.select_best and run.is_main:
            self.best = BestModel(run.output_dir, config.select_best,
                                  lambda m, folder: write_model(m, run.recipe, folder))
        chunks = EmbedderChunks(self.losses, config.negatives_cross_device)
        return TaskSetup(model=model, sampler=sampler, collator=embedder_collator(model),
                         chunked=chunks, restore_model=restore_model,
                         trainer_options={
                             "evaluator": self.held_out.metrics if self.held_out is not None else None,
                             "evaluate_every": setting(values.get("evaluate"), "evaluate", "every_steps"),
                             "best": self.best, "refresh": self.refresher, "refresh_every": self.refresh_every})

    def before_training(self, run: TrainingRun, setup: TaskSetup) -> None:
        if self.held_out is not None and run.is_main:
            setup.model.to(run.process.device)  # scored where it trains, not on the CPU it was loaded on
            self.held_out.score_base(setup.model, resuming=ckpt.may_resume(run.config.resume_from, run.output_dir))

    def model_dirs(self, run: TrainingRun) -> dict[str, Path]:
        return {"model_dir": run.output_dir / "model"}

    def save(self, run: TrainingRun, setup: TaskSetup, result: TrainResult) -> None:
        model, recipe, best = setup.model, run.recipe, self.best
        model_dir = save_model(model, recipe, self.model_dirs(run)["model_dir"])
        if self.held_out is not None:
            self.final_metrics, self.comparison = self.held_out.score_final(model)
            run.plugin_manager.hook.bgekit_on_evaluate_end(run=run.info, step=result.steps,
                                                           metrics=self.final_metrics)
            if best is not None:
                best.offer(result.steps, self.final_metrics, model)
        card_data = data_summary(run.data.get("train"), run.examples, run.errors)
        write_embedder_card(model_dir, model, recipe, card_data, self.comparison, self.final_metrics)
        if best is not None and best.step is not None:
            write_embedder_card(best.path, model, recipe, card_data, None, {best.metric: best.value})

    def outcome_summary(self, run: TrainingRun) -> dict[str, Any]:
        return {
            **({"eval": self.final_metrics} if self.final_metrics else {}),
            **({"eval_vs_base": self.comparison} if self.comparison else {}),
            **(self.best.summary() if self.best is not None else {}),
            **({"negative_refreshes": self.refresher.refreshes} if self.refresher is not None else {}),
        }

    def report(self, run: TrainingRun, dirs: dict[str, Path]) -> None:
        print_next_steps(dirs["model_dir"], self.final_metrics, self.best, self.comparison)


def run(recipe: Any, backend: DeviceBackend, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Train an embedder as ``recipe`` says; return a summary of what was written."""
    return run_training(EmbedderTask(), recipe, backend, show_progress=show_progress)


def print_next_steps(model_dir: Path, metrics: dict[str, float], best: BestModel | None = None,
                     comparison: dict[str, Any] | None = None) -> None:
    if comparison:
        console.print("held-out evaluation, base model -> fine-tuned (95% CI of the difference, p):")
        for line in comparison_lines(comparison):
            console.print(f"  {line}", markup=False, highlight=False)
    elif metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        console.print(f"held-out evaluation of the fine-tuned model: {shown}")
    console.print(f"[bold green]model saved to {model_dir}[/bold green] (the last step's)")
    if best is not None and best.step is not None:
        console.print(f"[bold green]best model saved to {best.path}[/bold green] "
                      f"({best.metric} {best.value:.4f} at step {best.step}; {best.path.parent / 'best.json'})")
    console.print("encode texts with it (JSONL with 'text' and optional 'id' per line):")
    console.print(f"  bgekit encode --model {model_dir} --input texts.jsonl --output vectors.jsonl",
                  markup=False, highlight=False, soft_wrap=True)
