"""The ``embedder`` task: fine-tune an encoder with retrieval heads from a resolved recipe.

Reads the recipe's ``model``, ``data``, ``loss``, ``train``, ``evaluate`` and
``callbacks`` sections, builds the model, data pipeline and losses from the
registry, trains, and saves the final model to ``<output_dir>/model`` (with
the resolved recipe beside it), ready for ``bgekit encode`` and for
FlagEmbedding's ``BGEM3FlagModel``. With ``train.select_best`` the model best
on that metric is kept as ``<output_dir>/best`` too (:mod:`bgekit.train.best`);
with ``miner.refresh_every`` hard negatives are re-mined with the model being
trained (:mod:`bgekit.train.refresh`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bgekit.data.example import Example, RowError
from bgekit.data.readers import read_examples
from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.plugins import get_plugin_manager
from bgekit.registry import Registry
from bgekit.train import checkpoint as ckpt
from bgekit.train.batching import LengthGroupedBatcher
from bgekit.train.best import BestModel, check_select_best
from bgekit.train.callbacks import build_callbacks, recipe_for_plugins, run_lifecycle
from bgekit.train.collate import Collator
from bgekit.train.distributed import setup_process, teardown_process
from bgekit.train.failures import check_finite_weights
from bgekit.train import refresh
from bgekit.train.refresh import NegativeRefresher, RefreshingSampler
from bgekit.train.outcome import HeldOutEvaluation, comparison_lines, data_summary, write_embedder_card
from bgekit.train.sampling import GroupSampler
from bgekit.train.trainer import LossTerm, RunInfo, Trainer, TrainConfig, resolve_dtype, seed_everything

#: Bad rows shown in full before the rest are only counted.
SHOWN_ROW_ERRORS = 5
DEFAULT_LOSS = {"name": "infonce"}

console = Console(stderr=True)


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


def build_losses(entries: Any, registry: Registry) -> list[LossTerm]:
    """The recipe's ``loss`` (one component or a list), each with its weight."""
    if entries is None:
        entries = [DEFAULT_LOSS]
    elif isinstance(entries, dict):
        entries = [entries]
    terms = []
    for i, entry in enumerate(entries):
        params = {k: v for k, v in entry.items() if k not in ("name", "weight")}
        spec = registry.get("loss", entry["name"])
        try:
            fn = spec.create(**params)
        except (TypeError, ValueError) as exc:
            where = "loss" if len(entries) == 1 else f"loss[{i}]"
            raise BgekitError(f"{where} '{entry['name']}': {exc}") from exc
        terms.append(LossTerm(name=entry["name"], fn=fn, weight=float(entry.get("weight", 1.0))))
    return terms


def build_model(model_values: dict[str, Any], registry: Registry) -> Any:
    from bgekit.models import Embedder

    model = Embedder.from_pretrained(
        model_values["name_or_path"], heads=model_values.get("heads") or None,
        revision=model_values.get("revision"), trust_remote_code=bool(model_values.get("trust_remote_code")),
        registry=registry,
    )
    model.query_max_length = model_values.get("query_max_length", 64)
    model.passage_max_length = model_values.get("passage_max_length", 512)
    model.query_instruction = model_values.get("query_instruction") or ""
    model.passage_instruction = model_values.get("passage_instruction") or ""
    return model


def example_length(example: Example) -> int:
    """Characters of the query and its longest passage: a cheap stand-in for padded tokens."""
    return len(example.query) + max(len(p) for p in example.pos + example.neg)


def _held_out(values: dict[str, Any], output_dir: Path) -> HeldOutEvaluation | None:
    """The recipe's ``evaluate`` section as a :class:`HeldOutEvaluation`, or None when it has none."""
    spec = values.get("evaluate") or {}
    return HeldOutEvaluation(spec, output_dir) if spec.get("corpus") else None


def write_model(model: Any, recipe: Any, folder: Path) -> None:
    """The model and its resolved recipe into ``folder``."""
    model.save_pretrained(folder)
    if recipe is not None and hasattr(recipe, "save"):
        recipe.save(folder)


def save_model_atomically(model: Any, recipe: Any, final: Path) -> Path:
    """``model`` and its resolved recipe into ``final``, written to a temp folder beside it then renamed.

    Non-finite weights are refused before anything is written; a failed write (full disk, ``ulimit -f``)
    removes the temp folder and is one line, and whatever was at ``final`` stays.
    """
    check_finite_weights(model, str(final))

    def write(tmp: Path) -> None:
        write_model(model, recipe, tmp)
        ckpt._fault("final-model")

    return ckpt.write_dir_atomically(final, write, f"the model {final}")


def save_final_model(model: Any, recipe: Any, output_dir: Path) -> Path:
    """``<output_dir>/model``, written atomically."""
    return save_model_atomically(model, recipe, output_dir / "model")


def build_refresh(values: dict[str, Any], examples: list[Example], sampler: RefreshingSampler,
                  output_dir: Path, registry: Registry, is_main: bool, resume: Path | None) -> NegativeRefresher:
    """The ``miner.refresh_every`` re-miner; on a resume, the negatives in use when the run stopped come back."""
    refresher = NegativeRefresher(examples, values["miner"], sampler, output_dir,
                                  batch_size=(values.get("evaluate") or {}).get("batch_size", 64),
                                  write=is_main, registry=registry, log=console.print if is_main else None)
    match = ckpt.CHECKPOINT_RE.match(resume.name) if resume is not None else None
    if match:
        restored = refresh.restore(sampler, output_dir, int(match.group(1)))
        if restored and is_main:
            console.print(f"resuming with the negatives re-mined up to {restored[-1].name}")
    return refresher


def run(recipe: Any, backend: DeviceBackend, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Train an embedder as ``recipe`` says; return a summary of what was written."""
    values: dict[str, Any] = recipe.values
    pm = get_plugin_manager()
    registry = pm.registry
    config = TrainConfig.from_recipe(values)
    output_dir = Path(values["output_dir"])
    data = values.get("data") or {}
    dtype = resolve_dtype(config.dtype, backend)  # fail on a bad dtype before loading anything
    select_best = (values.get("train") or {}).get("select_best")
    check_select_best(select_best, values.get("evaluate"))
    refresh_every = int((values.get("miner") or {}).get("refresh_every") or 0)

    examples, errors = load_training_examples(data, registry)
    losses = build_losses(values.get("loss"), registry)
    callbacks = build_callbacks(values.get("callbacks") or [], registry)
    held_out = _held_out(values, output_dir)
    process = setup_process(backend)
    try:
        seed_everything(config.seed)
        model = build_model(values["model"], registry)
        with_scores = sum(e.pos_scores is not None and e.neg_scores is not None for e in examples)
        if 0 < with_scores < len(examples) and process.is_main:
            console.print(f"[yellow]{with_scores} of {len(examples)} examples have teacher scores; batches "
                          "with any example without them train without distillation[/yellow]")
        if refresh_every:
            sampler: GroupSampler = RefreshingSampler(examples, data.get("group_size", 8), seed=config.seed,
                                                      log=console.print if process.is_main else None)
            refresher = build_refresh(values, examples, sampler, output_dir, registry, process.is_main,
                                      ckpt.resolve_resume(config.resume_from, output_dir))
        else:
            sampler, refresher = GroupSampler(examples, data.get("group_size", 8), seed=config.seed), None
        batcher = LengthGroupedBatcher([example_length(e) for e in examples], config.batch_size,
                                       seed=config.seed, shuffle=data.get("shuffle", True),
                                       length_grouping=data.get("length_grouping", True),
                                       rank=process.rank, world_size=process.world_size)
        collator = Collator(model.tokenizer, query_max_length=model.query_max_length,
                            passage_max_length=model.passage_max_length,
                            query_instruction=model.query_instruction,
                            passage_instruction=model.passage_instruction)
        run_info = RunInfo(recipe=recipe_for_plugins(recipe), output_dir=output_dir,
                           is_main_process=process.is_main,
                           rank=process.rank, world_size=process.world_size, task="embedder")

        def restore_model(model_dir: Path) -> None:
            from bgekit.models import Embedder

            saved = Embedder.from_pretrained(str(model_dir), heads=model.head_configs, registry=registry)
            model.load_state_dict(saved.state_dict())

        best = BestModel(output_dir, select_best, lambda m, folder: write_model(m, recipe, folder)) \
            if select_best and process.is_main else None
        trainer = Trainer(model=model, losses=losses, sampler=sampler, batcher=batcher, collator=collator,
                          config=config, backend=backend, process=process, run=run_info, plugin_manager=pm,
                          restore_model=restore_model,
                          evaluator=held_out.metrics if held_out is not None else None,
                          evaluate_every=(values.get("evaluate") or {}).get("every_steps", 0),
                          show_progress=sys.stderr.isatty() if show_progress is None else show_progress,
                          log_lines=show_progress is None, best=best, refresh=refresher,
                          refresh_every=refresh_every, num_workers=data.get("num_workers", "auto"))
        final_metrics: dict[str, float] = {}
        comparison: dict[str, Any] | None = None
        with run_lifecycle(pm, run_info, callbacks):
            if held_out is not None and process.is_main:
                model.to(process.device)  # scored where it trains, not on the CPU it was loaded on
                held_out.score_base(model, resuming=ckpt.may_resume(config.resume_from, output_dir))
            result = trainer.train()
            model_dir = output_dir / "model"
            if process.is_main:
                model_dir = save_final_model(model, recipe, output_dir)
                if held_out is not None:
                    final_metrics, comparison = held_out.score_final(model)
                    pm.hook.bgekit_on_evaluate_end(run=run_info, step=result.steps, metrics=final_metrics)
                    if best is not None:
                        best.offer(result.steps, final_metrics, model)
                card_data = data_summary(data.get("train"), examples, errors)
                write_embedder_card(model_dir, model, recipe, card_data, comparison, final_metrics)
                if best is not None and best.step is not None:
                    write_embedder_card(best.path, model, recipe, card_data, None, {best.metric: best.value})
            process.barrier()
    finally:
        teardown_process(process)

    summary = {
        "task": "embedder",
        "output_dir": str(output_dir),
        "model_dir": str(model_dir),
        "metrics_log": str(output_dir / "metrics.jsonl"),
        "examples": len(examples),
        "skipped_rows": len(errors),
        **result.summary(),
        "device": backend.name,
        "dtype": dtype,
        **({"eval": final_metrics} if final_metrics else {}),
        **({"eval_vs_base": comparison} if comparison else {}),
        **(best.summary() if best is not None else {}),
        **({"negative_refreshes": refresher.refreshes} if refresher is not None else {}),
    }
    if process.is_main:
        print_next_steps(model_dir, final_metrics, best, comparison)
    return summary


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
