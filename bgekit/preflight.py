"""Checks a resolved recipe's files and lengths before anything heavy is loaded.

A run that fails at step 1 (a length past the model's positions) or after
loading a model for minutes (a missing qrels file) should fail at once, in
one line each, saying what to fix. Only what can be checked cheaply is
checked here: paths on disk and the ``config.json`` of local model folders.
Model references that are not local folders (hub ids, missing folders) are
:mod:`bgekit.model_paths`'s to explain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from bgekit.errors import BgekitError

#: Encoders whose position ids start after the padding index (so ``pad_token_id + 1`` positions are unusable).
PADDING_OFFSET_TYPES = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "mpnet"}
#: What each task's lengths mean: the longest text given to the model at once.
TRAINING_TASKS = ("embedder", "reranker", "joint")


class PreflightError(BgekitError):
    """Every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found before starting"
        super().__init__(problems[0] if len(problems) == 1 else head + "\n" + "\n".join(f"  {p}" for p in problems))


def check_recipe(recipe: Any) -> None:
    """Raise :class:`PreflightError` when the recipe's input files or lengths cannot work."""
    values = recipe.values
    problems = list(_missing_files(values)) + list(_length_problems(values))
    if problems:
        raise PreflightError(problems)


def _paths(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _missing_files(values: dict[str, Any]) -> Iterator[str]:
    data = values.get("data") or {}
    for path in _paths(data.get("train")):
        if not Path(path).exists():
            yield f"data.train: {path}: no such file or folder (paths are relative to the folder you run in)"
    evaluate = values.get("evaluate") or {}
    for key in ("corpus", "queries", "qrels"):
        path = evaluate.get(key)
        if isinstance(path, str) and path and not Path(path).is_file():
            found = "is a folder, not a file" if Path(path).is_dir() else "no such file"
            yield f"evaluate.{key}: {path}: {found} (paths are relative to the folder you run in)"


def model_positions(name_or_path: Any) -> tuple[int, str] | None:
    """``(usable positions, model type)`` from a local model folder's ``config.json``, or None
    when it is not a local folder or does not say."""
    if not isinstance(name_or_path, str) or not name_or_path:
        return None
    try:
        from bgekit.model_paths import resolve_model_path

        folder = Path(resolve_model_path(name_or_path))
    except BgekitError:
        return None
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # loading the model will say what is wrong with it
    positions = config.get("max_position_embeddings") if isinstance(config, dict) else None
    if not isinstance(positions, int) or isinstance(positions, bool) or positions <= 0:
        return None
    model_type = str(config.get("model_type") or "")
    if model_type in PADDING_OFFSET_TYPES:
        pad = config.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) and not isinstance(pad, bool) else 1) + 1
    return positions, model_type


def _length_problems(values: dict[str, Any]) -> Iterator[str]:
    task = values.get("task")
    model = values.get("model") or {}
    found = model_positions(model.get("name_or_path"))
    if found and task in TRAINING_TASKS + ("evaluate", "mine"):
        limit, kind = found
        q, p = model.get("query_max_length"), model.get("passage_max_length")
        if task == "reranker" and isinstance(q, int) and isinstance(p, int):
            if q + p > limit:
                yield (f"model.query_max_length + model.passage_max_length = {q} + {p} = {q + p}, but "
                       f"{model['name_or_path']} ({kind or 'model'}) takes at most {limit} tokens per pair; "
                       "lower them so their sum is at most that")
        else:
            for key, value in (("query_max_length", q), ("passage_max_length", p)):
                if isinstance(value, int) and value > limit:
                    yield (f"model.{key} is {value}, but {model['name_or_path']} ({kind or 'model'}) has "
                           f"{limit} positions; set model.{key}={limit} or lower")
    for section, key in (("reranker", "max_length"), ("score", "max_length")):
        block = values.get(section) or {}
        model_ref = block.get("name_or_path") if section == "reranker" else block.get("reranker")
        if section == "score" and "score" not in (values.get("steps") or []) and task != "score":
            continue
        found = model_positions(model_ref)
        length = block.get(key)
        if found and isinstance(length, int) and length > found[0]:
            yield (f"{section}.{key} is {length}, but {model_ref} ({found[1] or 'model'}) has {found[0]} "
                   f"positions; set {section}.{key}={found[0]} or lower")
