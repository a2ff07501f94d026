"""The part every training task shares: one run from a resolved recipe to a saved model and a summary.

The embedder, reranker and joint tasks differ in their models, batches,
losses and what they save; everything around that is the same and lives
here, in :func:`run_training`:

1. read the ``train`` settings and check the dtype, then the task's own
   checks (:meth:`TrainingTask.check`), before anything is loaded;
2. read the training data (bad rows reported, the first few in full), let
   the task build its losses (:meth:`TrainingTask.prepare`) and build the
   recipe's callbacks;
3. start this process (torchrun), seed, let the task build its model(s),
   sampler, collator and batch loss (:meth:`TrainingTask.build`), batch
   the examples by length;
4. train under the run lifecycle hooks, the main process saving the final
   model(s) (:meth:`TrainingTask.save`), and tear the process down;
5. return the summary (the task adds its own keys) and, on the main
   process, print where the results are (:meth:`TrainingTask.report`).

A task is a :class:`TrainingTask` subclass; its module's ``run(recipe,
backend)`` calls ``run_training(TheTask(), recipe, backend)``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from rich.console import Console

from bgekit.data.example import Example, RowError
from bgekit.data.readers import read_examples
from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.plugins import get_plugin_manager
from bgekit.registry import Registry, task_default
from bgekit.train import checkpoint as ckpt
from bgekit.train.batching import LengthGroupedBatcher
from bgekit.train.callbacks import build_callbacks, recipe_for_plugins, run_lifecycle
from bgekit.train.distributed import ProcessContext, setup_process, teardown_process
from bgekit.train.failures import check_finite_weights
from bgekit.train.gradcache import ChunkedTask
from bgekit.train.sampling import GroupSampler
from bgekit.train.settings import setting
from bgekit.train.trainer import BatchLoss, RunInfo, Trainer, TrainConfig, TrainResult, resolve_dtype, seed_everything

#: Bad rows shown in full before the rest are only counted.
SHOWN_ROW_ERRORS = 5

console = Console(stderr=True)


# -- the data --------------------------------------------------------------------------------------------------
def load_training_examples(data: dict[str, Any], registry: Registry, report: Any = console) -> tuple[list[Example], list[RowError]]:
    """Every valid example of ``data.train``; bad rows are reported (first few in full) and skipped."""
    paths = data.get("train")
    if not paths:
        raise BgekitError("data.train: no training data; give a JSONL file (or a list of them)")
    paths = [paths] if isinstance(paths, str) else list(paths)
    fmt = data.get("format") or "auto"
    limit = data.get("max_examples")
    examples: list[Example] = []
    errors: list[RowError] = []
    for path in paths:  # relative to the working directory, as every recipe path
        for item in read_examples(path, registry, fmt, encoding=data.get("encoding") or "auto"):
            if isinstance(item, RowError):
                errors.append(item)
            else:
                examples.append(item)
                if limit and len(examples) >= limit:
                    break
        if limit and len(examples) >= limit:
            break
    if errors and report is not None:
        report.print(f"[yellow]skipped {len(errors)} bad training row(s):[/yellow]")
        for err in errors[:SHOWN_ROW_ERRORS]:
            report.print(f"  {err}", markup=False, highlight=False, soft_wrap=True)
        if len(errors) > SHOWN_ROW_ERRORS:
            report.print(f"  ... and {len(errors) - SHOWN_ROW_ERRORS} more (bgekit data validate lists all)")
    if not examples:
        shown = "\n".join(f"  {e}" for e in errors[:SHOWN_ROW_ERRORS])
        raise BgekitError(f"data.train: no valid training example in {', '.join(map(str, paths))}"
                          + (f"; problems:\n{shown}" if shown else " (the files are empty)"))
    return examples, errors


def example_length(example: Example) -> int:
    """Characters of the query and its longest passage: a cheap stand-in for padded tokens."""
    return len(example.query) + max(len(p) for p in example.pos + example.neg)


# -- saving ----------------------------------------------------------------------------------------------------
def save_model(model: Any, recipe: Any, final: Path) -> Path:
    """``model`` and its resolved recipe (:func:`write_model`) into a temp folder beside ``final``, then renamed
    to ``final``: every task's finished model(s).

    Non-finite weights are refused before anything is written; a failed write (full disk, ``ulimit -f``)
    removes the temp folder and is one line, and whatever was at ``final`` stays.
    """
    check_finite_weights(model, str(final))

    def write_then_mark(tmp: Path) -> None:
        write_model(model, recipe, tmp)
        ckpt._fault("final-model")

    return ckpt.write_dir_atomically(final, write_then_mark, f"the model {final}")


def write_model(model: Any, recipe: Any, folder: Path) -> None:
    """The model and its resolved recipe into ``folder``."""
    model.save_pretrained(folder)
    if recipe is not None and hasattr(recipe, "save"):
        recipe.save(folder)


# -- one run ---------------------------------------------------------------------------------------------------
@dataclass
class TrainingRun:
    """What every step of a training task may read: the recipe, the device, the data, this process."""

    recipe: Any
    #: the resolved recipe's values (``recipe.values``)
    values: dict[str, Any]
    backend: DeviceBackend
    plugin_manager: Any
    registry: Registry
    config: TrainConfig
    #: the autocast dtype the run uses (the summary's ``dtype``)
    dtype: str
    output_dir: Path
    #: the recipe's ``data`` section
    data: dict[str, Any]
    examples: list[Example] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: set when the process starts (before :meth:`TrainingTask.build`)
    process: ProcessContext | None = None
    #: what lifecycle hooks receive as ``run``; set before the trainer is built
    info: RunInfo | None = None
    #: the registered task this run trains (the recipe's ``task``); its spec declares the default components
    task: str = ""

    @property
    def is_main(self) -> bool:
        return self.process is not None and self.process.is_main

    def component(self, slot: str) -> Any:
        """The recipe's ``slot`` (``loss``, ``miner``, dotted inside a section: ``joint.reranker_loss``), or,
        when the recipe leaves it out, the component the task's spec declares for it."""
        node: Any = self.values
        for part in slot.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node if node is not None else task_default(self.registry, self.task, slot)

    @property
    def log(self) -> Callable[..., None] | None:
        """``console.print`` on the main process, None on the others (so only one process logs)."""
        return console.print if self.is_main else None

    def warn_partial_teacher_scores(self, consequence: str) -> None:
        """Say (main process) when only some examples have teacher scores, and what that means for this task."""
        with_scores = sum(e.pos_scores is not None and e.neg_scores is not None for e in self.examples)
        if 0 < with_scores < len(self.examples) and self.is_main:
            console.print(f"[yellow]{with_scores} of {len(self.examples)} examples have teacher scores; "
                          f"{consequence}[/yellow]")


@dataclass
class TaskSetup:
    """What a task builds for the trainer: the model(s), how groups are drawn and batched, the loss."""

    model: torch.nn.Module
    sampler: GroupSampler
    #: ``groups -> batch`` (the batch has ``to``, ``pin_memory``, ``num_passages``, ``num_tokens``)
    collator: Callable[..., Any]
    #: loads a checkpoint's model folder into ``model`` (resume)
    restore_model: Callable[[Path], None]
    #: how a micro-batch splits into GradCache chunks (None: this task cannot use ``train.chunk_size``)
    chunked: ChunkedTask | None = None
    #: the unchunked forward pass and loss of a micro-batch; None: ``chunked.plain_loss``
    batch_loss: BatchLoss | None = None
    #: further :class:`~bgekit.train.trainer.Trainer` arguments (evaluator, best model, refresher, ...)
    trainer_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_loss is None:
            if self.chunked is None:
                raise TypeError("TaskSetup needs batch_loss, or chunked (whose plain_loss it then is)")
            self.batch_loss = self.chunked.plain_loss


class TrainingTask:
    """One training task's own steps; :func:`run_training` calls them in order. Override what differs."""

    #: the recipe's ``task`` (and ``RunInfo.task``)
    name = ""

    def check(self, run: TrainingRun) -> None:
        """Refuse recipe settings this task cannot honour, before any data or model is loaded."""

    def prepare(self, run: TrainingRun) -> None:
        """Build the losses (and whatever else the registry gives) once the data is read."""

    def build(self, run: TrainingRun) -> TaskSetup:
        """The model(s), sampler, collator and batch loss; called after seeding, in every process."""
        raise NotImplementedError

    def before_training(self, run: TrainingRun, setup: TaskSetup) -> None:
        """Inside the run lifecycle, before the first step (the embedder scores its base model here)."""

    def model_dirs(self, run: TrainingRun) -> dict[str, Path]:
        """The folders the final model(s) go to, by summary key (e.g. ``{"model_dir": .../model}``)."""
        raise NotImplementedError

    def save(self, run: TrainingRun, setup: TaskSetup, result: TrainResult) -> None:
        """Main process only: write the final model(s) to :meth:`model_dirs`, with their cards."""
        raise NotImplementedError

    def data_summary(self, run: TrainingRun) -> dict[str, Any]:
        """Summary keys about the training data, after ``skipped_rows``."""
        return {}

    def outcome_summary(self, run: TrainingRun) -> dict[str, Any]:
        """Summary keys about the outcome (evaluation, best model, refreshes), after ``dtype``."""
        return {}

    def report(self, run: TrainingRun, dirs: dict[str, Path]) -> None:
        """Main process only, after the run: print where the results are and what to do next."""


def build_batcher(run: TrainingRun) -> LengthGroupedBatcher:
    """This process's batches of examples, of similar length unless ``data.length_grouping`` is off."""
    return LengthGroupedBatcher([example_length(e) for e in run.examples], run.config.batch_size,
                                seed=run.config.seed, shuffle=setting(run.data, "data", "shuffle"),
                                length_grouping=setting(run.data, "data", "length_grouping"),
                                rank=run.process.rank, world_size=run.process.world_size)


def run_training(task: TrainingTask, recipe: Any, backend: DeviceBackend, *,
                 show_progress: bool | None = None) -> dict[str, Any]:
    """Train as ``recipe`` says, ``task`` supplying what is its own; return the run's summary."""
    pm = get_plugin_manager()
    config = TrainConfig.from_recipe(recipe.values)
    # the dtype is checked before anything is loaded
    values = recipe.values
    run = TrainingRun(recipe=recipe, values=values, backend=backend, plugin_manager=pm, registry=pm.registry,
                      config=config, dtype=resolve_dtype(config.dtype, backend),
                      output_dir=Path(values["output_dir"]), data=values.get("data") or {},
                      task=values.get("task") or task.name)
    task.check(run)
    run.examples, run.errors = load_training_examples(run.data, run.registry)
    task.prepare(run)
    callbacks = build_callbacks(run.values.get("callbacks") or [], run.registry)
    run.process = process = setup_process(backend)
    try:
        seed_everything(config.seed)
        setup = task.build(run)
        batcher = build_batcher(run)
        run.info = RunInfo(recipe=recipe_for_plugins(recipe), output_dir=run.output_dir,
                           is_main_process=process.is_main, rank=process.rank, world_size=process.world_size,
                           task=task.name)
        trainer = Trainer(model=setup.model, batch_loss=setup.batch_loss, sampler=setup.sampler, batcher=batcher,
                          collator=setup.collator, config=config, backend=backend, process=process, run=run.info,
                          plugin_manager=pm, restore_model=setup.restore_model, chunked=setup.chunked,
                          num_workers=setting(run.data, "data", "num_workers"),
                          show_progress=sys.stderr.isatty() if show_progress is None else show_progress,
                          log_lines=show_progress is None, **setup.trainer_options)
        with run_lifecycle(pm, run.info, callbacks):
            task.before_training(run, setup)
            result = trainer.train()
            if process.is_main:
                task.save(run, setup, result)
            process.barrier()
    finally:
        teardown_process(process)

    dirs = task.model_dirs(run)
    summary = {
        "task": task.name,
        "output_dir": str(run.output_dir),
        **{key: str(path) for key, path in dirs.items()},
        "metrics_log": str(run.output_dir / "metrics.jsonl"),
        "examples": len(run.examples),
        "skipped_rows": len(run.errors),
        **task.data_summary(run),
        **result.summary(),
        "device": backend.name,
        "dtype": run.dtype,
        **task.outcome_summary(run),
    }
    if process.is_main:
        task.report(run, dirs)
    return summary
