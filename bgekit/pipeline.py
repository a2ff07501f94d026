"""Recipe pipelines: ``steps: [augment, mine, score, train, evaluate]`` run in order by ``bgekit run``.

Each step reads what the one before wrote:

- ``augment``: training rows written by an LLM for ``augment.input`` (the
  ``augment`` section, :mod:`bgekit.augment`) -> ``<output_dir>/augmented.jsonl``;
  ``data.train`` is then not needed;
- ``mine``: negatives for ``data.train`` from the ``miner`` section (pool:
  ``miner.corpus``) with the base model -> ``<output_dir>/mined.jsonl``;
- ``score``: teacher ``pos_scores``/``neg_scores`` from the ``score.reranker``
  cross-encoder -> ``<output_dir>/scored.jsonl``;
- ``train``: the recipe's ``task`` (embedder, reranker) on the latest data
  file -> ``<output_dir>/model``;
- ``evaluate``: the trained model (or ``model.name_or_path`` when there is no
  train step) on the ``evaluate`` section -> ``<output_dir>/eval/metrics.json``.

A finished step leaves ``<output_dir>/<step>.done.json`` with a fingerprint:
a hash of the step's resolved settings and of its input files (size,
modification time and a SHA-256 of their first and last 64 KiB; model
directories by their files' names, sizes and times). A step whose record
matches, and whose output is still the one it wrote, is skipped, so a run
that stopped (a crash, a kill) goes on at the step that did not finish; any
change upstream makes every step after it run again. ``<step>.started.json``
records what a step began with: a train step that starts again with the same
fingerprint resumes from its checkpoints (``train.resume_from: latest``), one
with a new fingerprint first deletes the earlier run's checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from bgekit import score_task
from bgekit.data.atomic import atomic_write
from bgekit.errors import BgekitError

STEPS = ("augment", "mine", "score", "train", "evaluate")
#: bytes hashed at each end of an input file
EDGE_BYTES = 64 * 1024

console = Console(stderr=True)


# -- fingerprints -------------------------------------------------------------

def file_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Size, modification time and a SHA-256 of the first and last 64 KiB of a file.

    Directories (models) give their files' names, sizes and times instead.
    """
    path = Path(path)
    if path.is_dir():
        from bgekit.mine.cache import model_fingerprint

        return {"path": str(path), "dir": model_fingerprint(path)}
    info = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(EDGE_BYTES))
        if info.st_size > EDGE_BYTES:
            handle.seek(max(EDGE_BYTES, info.st_size - EDGE_BYTES))
            digest.update(handle.read())
    return {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns, "edges_sha256": digest.hexdigest()}


def step_fingerprint(settings: dict[str, Any], inputs: list[Path]) -> str:
    payload = {"settings": settings, "inputs": [file_fingerprint(p) for p in inputs]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def done_path(output_dir: Path, step: str) -> Path:
    return output_dir / f"{step}.done.json"


def started_path(output_dir: Path, step: str) -> Path:
    return output_dir / f"{step}.started.json"


def _started_with_other_inputs(output_dir: Path, fingerprint: str) -> bool:
    """Whether the last train step started here had other inputs or settings (its checkpoints are not ours)."""
    path = started_path(output_dir, "train")
    return path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("fingerprint") != fingerprint


def _drop_checkpoints(output_dir: Path) -> None:
    """Delete checkpoints of a superseded train step, so ``resume_from: latest`` cannot resume them."""
    import shutil

    from bgekit.train.checkpoint import list_checkpoints

    old = list_checkpoints(output_dir)
    for path in old:
        shutil.rmtree(path)
    if old:
        console.print(f"train inputs or settings changed: removed {len(old)} checkpoint(s) of the earlier run")


def is_up_to_date(output_dir: Path, step: str, fingerprint: str, output: Path) -> bool:
    record_path = done_path(output_dir, step)
    if not record_path.is_file() or not output.exists():
        return False
    record = json.loads(record_path.read_text(encoding="utf-8"))
    return record.get("fingerprint") == fingerprint and record.get("output") == file_fingerprint(output)


def record_done(output_dir: Path, step: str, fingerprint: str, output: Path, summary: dict[str, Any]) -> None:
    with atomic_write(done_path(output_dir, step)) as handle:
        handle.write(json.dumps({"step": step, "fingerprint": fingerprint, "output": file_fingerprint(output),
                                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": summary},
                                indent=2, default=str) + "\n")


# -- steps ----------------------------------------------------------------------

@dataclass
class Step:
    """One step as the pipeline sees it: what it reads and writes, what changes its result, how it runs."""

    name: str
    output: Path
    settings: dict[str, Any]
    inputs: list[Path]
    execute: Callable[[], dict[str, Any]]


def _local(path: Any) -> list[Path]:
    """``[path]`` when it names a local file or folder (hub ids and ``pkg:`` models are settings only)."""
    return [Path(path)] if isinstance(path, str) and Path(path).exists() else []


def _data_files(values: dict[str, Any]) -> list[str]:
    train = (values.get("data") or {}).get("train")
    if not train:
        raise BgekitError("steps: the pipeline needs data.train, the training data to start from")
    return [train] if isinstance(train, str) else list(train)


def _single(files: list[str], step: str) -> str:
    if len(files) != 1:
        raise BgekitError(f"steps: '{step}' reads one data file, data.train lists {len(files)}; merge them first")
    return files[0]


def with_values(recipe: Any, changes: dict[str, Any], source: str) -> Any:
    """A copy of ``recipe`` with dotted keys replaced (the provenance says which step set them)."""
    values = copy.deepcopy(recipe.values)
    provenance = dict(getattr(recipe, "provenance", {}) or {})
    for key, value in changes.items():
        node = values
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        provenance[key] = source
    if dataclasses.is_dataclass(recipe):
        return dataclasses.replace(recipe, values=values, provenance=provenance)
    clone = copy.copy(recipe)
    clone.values = values
    return clone


def plan_steps(recipe: Any, backend: Any) -> list[Step]:
    """The recipe's steps, each reading the previous step's output."""
    values = recipe.values
    names = list(values.get("steps") or [])
    check_order(names, values.get("task"))
    output_dir = Path(values["output_dir"])
    model = values.get("model") or {}
    data = [] if "augment" in names else _data_files(values)
    trained: str = model.get("name_or_path", "")
    steps: list[Step] = []
    for name in names:
        if name == "augment":
            steps.append(_augment_step(recipe, backend, output_dir))
            data = [str(steps[-1].output)]
        elif name == "mine":
            source = _single(data, "mine")
            steps.append(_mine_step(recipe, backend, source, output_dir))
            data = [str(steps[-1].output)]
        elif name == "score":
            source = _single(data, "score")
            steps.append(_score_step(values, backend, source, output_dir))
            data = [str(steps[-1].output)]
        elif name == "train":
            steps.append(_train_step(recipe, backend, data, output_dir))
            trained = str(steps[-1].output)
        else:
            steps.append(_evaluate_step(values, backend, trained, output_dir, produced="train" in names))
    return steps


def check_order(names: list[str], task: Any) -> None:
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise BgekitError(f"steps: unknown step(s) {', '.join(unknown)}; steps are {', '.join(STEPS)}")
    if len(set(names)) != len(names) or names != sorted(names, key=STEPS.index):
        raise BgekitError(f"steps: {names} - each step at most once, in the order {', '.join(STEPS)}")
    if "train" in names and task not in training_tasks():
        raise BgekitError(f"steps: 'train' trains the recipe's task, and task '{task}' is not a training task "
                          f"({', '.join(training_tasks())})")
    if "evaluate" in names and task != "embedder":
        raise BgekitError("steps: 'evaluate' evaluates retrievers (task: embedder); for a reranker use "
                          "bgekit eval reranker on the trained model")


def training_tasks() -> list[str]:
    """The registered tasks a ``train`` step can run (:attr:`bgekit.registry.TaskSpec.trains`)."""
    from bgekit.plugins import get_registry

    return [spec.name for spec in get_registry().all("task") if getattr(spec, "trains", False)]


def _mine_step(recipe: Any, backend: Any, source: str, output_dir: Path) -> Step:
    from bgekit.mine import mine_task
    from bgekit.plugins import get_registry

    values = recipe.values
    miner = mine_task.recipe_miner(values, get_registry())
    miner.pop("refresh_every", None)  # a training setting: it does not change what this step writes
    model = values.get("model") or {}
    settings = {"miner": miner, "model": model.get("name_or_path"), "query_max_length": model.get("query_max_length"),
                "passage_max_length": model.get("passage_max_length"),
                "format": (values.get("data") or {}).get("format", "auto")}
    inputs = [Path(source)] + _local(miner.get("corpus")) + _local(model.get("name_or_path"))
    step_recipe = with_values(recipe, {"data.train": source}, "pipeline")
    return Step("mine", output_dir / mine_task.OUTPUT_NAME, settings, inputs,
                lambda: mine_task.run(step_recipe, backend))


#: augment settings that change how fast results come, not what they are (a run whose rows failed is
#: done; raising max_retries or timeout runs it again, answering what succeeded from the cache)
_AUGMENT_PACE = ("api_key_env", "concurrency", "requests_per_minute", "tokens_per_minute",
                 "price_per_1k_input", "price_per_1k_output", "cache")


def _augment_step(recipe: Any, backend: Any, output_dir: Path) -> Step:
    from bgekit.augment import task
    from bgekit.augment.settings import from_recipe

    augment = from_recipe(recipe.values, output_dir)
    section = {k: v for k, v in (recipe.values.get("augment") or {}).items() if k not in _AUGMENT_PACE}
    settings = {"augment": section, "roundtrip": dataclasses.asdict(augment.filters)}
    inputs = [Path(augment.input)] + _local(augment.filters.roundtrip_model)
    return Step("augment", Path(augment.output), settings, inputs, lambda: task.run(recipe, backend))


SCORED_NAME = score_task.OUTPUT_NAME


def _score_step(values: dict[str, Any], backend: Any, source: str, output_dir: Path) -> Step:
    settings = dict(values.get("score") or {})
    reranker = settings.get("reranker")
    if not reranker:
        raise BgekitError("steps: 'score' needs score.reranker, the teacher cross-encoder "
                          "(e.g. BAAI/bge-reranker-v2-m3)")
    output = output_dir / SCORED_NAME
    fmt = (values.get("data") or {}).get("format", "auto")
    return Step("score", output, {**settings, "format": fmt}, [Path(source)] + _local(reranker),
                lambda: score_task.score_data(values, backend, source, output))


def _train_step(recipe: Any, backend: Any, data: list[str], output_dir: Path) -> Step:
    from bgekit.task_runners import runner_for

    values = recipe.values
    runner = runner_for(values["task"])
    settings = {k: v for k, v in values.items() if k not in ("steps", "score", "augment")}
    settings["data"] = {k: v for k, v in (values.get("data") or {}).items() if k != "train"}
    step_recipe = with_values(recipe, {"data.train": data[0] if len(data) == 1 else data}, "pipeline")
    inputs = [Path(p) for p in data] + _local((values.get("model") or {}).get("name_or_path"))
    return Step("train", output_dir / "model", settings, inputs, lambda: runner(step_recipe, backend))


EVAL_DIR = "eval"


def _evaluate_step(values: dict[str, Any], backend: Any, model_dir: str, output_dir: Path,
                   produced: bool) -> Step:
    spec = dict(values.get("evaluate") or {})
    missing = [k for k in ("corpus", "queries", "qrels") if not spec.get(k)]
    if missing:
        raise BgekitError(f"steps: 'evaluate' needs evaluate.{', evaluate.'.join(missing)} (BEIR-style files)")
    output = output_dir / EVAL_DIR / "metrics.json"
    model = values.get("model") or {}

    def execute() -> dict[str, Any]:
        from bgekit.evaluate.retrieval import evaluate_embedder, load_embedder
        from bgekit.model_paths import resolve_model_path

        embedder = load_embedder(resolve_model_path(model_dir), getattr(backend, "name", "auto"))
        embedder.query_max_length = model.get("query_max_length", 64)
        embedder.passage_max_length = model.get("passage_max_length", 512)
        embedder.query_instruction = model.get("query_instruction") or ""
        embedder.passage_instruction = model.get("passage_instruction") or ""
        metrics = evaluate_embedder(embedder, spec["corpus"], spec["queries"], spec["qrels"],
                                    metrics=spec.get("metrics", ["ndcg@10"]), mode=spec.get("mode", "dense"),
                                    top_k=spec.get("top_k", 100), batch_size=spec.get("batch_size", 64))
        with atomic_write(output) as handle:
            handle.write(json.dumps({"model": model_dir, "metrics": metrics}, indent=2) + "\n")
        console.print(f"evaluation of {model_dir}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return {"output": str(output), "metrics": metrics}

    settings = {k: v for k, v in spec.items() if k != "every_steps"}
    settings["model"] = {k: model.get(k) for k in ("query_max_length", "passage_max_length",
                                                   "query_instruction", "passage_instruction")}
    settings["model_ref"] = model_dir
    inputs = ([Path(model_dir)] if produced else _local(model_dir)) + [Path(spec[k]) for k in ("corpus", "queries", "qrels")]
    return Step("evaluate", output, settings, inputs, execute)


# -- running --------------------------------------------------------------------

def run_pipeline(recipe: Any, backend: Any) -> dict[str, Any]:
    """Run the recipe's ``steps`` in order, skipping those already done for the same inputs and settings."""
    output_dir = Path(recipe.values["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for step in plan_steps(recipe, backend):
        # Fingerprinted only now: a step's inputs are what the steps before it have just written.
        fingerprint = step_fingerprint(step.settings, step.inputs)
        if is_up_to_date(output_dir, step.name, fingerprint, step.output):
            console.print(f"skipping {step.name}: up to date ({step.output})")
            results[step.name] = {"skipped": True, "output": str(step.output)}
            continue
        console.print(f"[bold]step {step.name}[/bold] -> {step.output}")
        if step.name == "train" and _started_with_other_inputs(output_dir, fingerprint):
            _drop_checkpoints(output_dir)
        done_path(output_dir, step.name).unlink(missing_ok=True)
        with atomic_write(started_path(output_dir, step.name)) as handle:
            handle.write(json.dumps({"step": step.name, "fingerprint": fingerprint}) + "\n")
        summary = step.execute()
        record_done(output_dir, step.name, fingerprint, step.output, summary)
        results[step.name] = {"skipped": False, **summary}
    return {"steps": results, "output_dir": str(output_dir)}
