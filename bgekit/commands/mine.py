"""``bgekit mine``: hard negatives for a training file, with any miner plugin."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from bgekit.errors import BgekitError


def default_cache_dir() -> Path:
    """``$BGEKIT_CACHE_DIR``, else ``~/.cache/bgekit``; encoded pools go in ``embeddings/``."""
    root = os.environ.get("BGEKIT_CACHE_DIR") or Path.home() / ".cache" / "bgekit"
    return Path(root) / "embeddings"


def _parse_param(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BgekitError(f"--param '{text}': write KEY=VALUE, e.g. --param ef_search=512")
    return key.strip(), yaml.safe_load(value)


def _check_params(miner: str, params: dict[str, Any]) -> None:
    """Validate the miner's parameters against its schema, naming the bad key."""
    import jsonschema

    from bgekit.plugins import get_registry
    from bgekit.registry import did_you_mean
    from bgekit.schema import component_params_schema

    spec = get_registry().get("miner", miner)
    known = spec.params_schema.get("properties", {})
    for key in params:
        if key not in known:
            raise BgekitError(f"miner '{miner}' has no parameter '{key}'{did_you_mean(key, known)}; "
                              f"it takes: {', '.join(sorted(known))}")
    errors = sorted(jsonschema.Draft7Validator(component_params_schema(spec)).iter_errors(
        {"name": miner, **params}), key=str)
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path)
        raise BgekitError(f"miner '{miner}': {where}: {errors[0].message}")


@click.command("mine")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True),
              help="training data (canonical JSONL or any format bgekit reads)")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="canonical JSONL to write: the input rows with mined 'neg'")
@click.option("--miner", default="dense", show_default=True, help="miner plugin: dense, bm25, random, ...")
@click.option("--model", "model_path", metavar="MODEL", help="model for the dense miner (folder, hub id, pkg:NAME)")
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False),
              help="candidate pool JSONL ({\"text\": ...} per line); default: every passage of the input")
@click.option("--range", "window", help="rank window START-END (0-based, END excluded) [default: 10-210]")
@click.option("--num-negatives", type=click.IntRange(min=0), help="negatives per row [default: 15]")
@click.option("--sampling", type=click.Choice(["top", "random"]), help="inside the window [default: random]")
@click.option("--max-score", type=float, help="drop candidates scoring above this")
@click.option("--absolute-margin", type=float, help="drop candidates scoring above positive - margin")
@click.option("--relative-margin", type=float, help="drop candidates scoring above positive * (1 - margin)")
@click.option("--seed", type=int, help="seed for sampling and filling [default: 42]")
@click.option("--scores", "with_scores", is_flag=True, default=None,
              help="also write the miner's scores as pos_scores/neg_scores")
@click.option("--mode", metavar="HEAD|hybrid",
              help="dense miner: which head scores: a head of the model (dense, sparse, colbert or a plugin's) "
                   "or hybrid [default: dense]")
@click.option("--index", "index_type", type=click.Choice(["Flat", "IVF", "HNSW"]),
              help="dense miner: FAISS index [default: Flat]")
@click.option("--param", "extra", multiple=True, metavar="KEY=VALUE",
              help="any other miner parameter, e.g. --param nprobe=64 (see bgekit schema)")
@click.option("--format", "fmt", default="auto", show_default=True, help="input data format")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1), help="texts encoded per batch")
@click.option("--query-max-length", type=click.IntRange(min=2), help="query tokens [default: the model's, 64]")
@click.option("--passage-max-length", type=click.IntRange(min=2), help="passage tokens [default: the model's, 512]")
@click.option("--device", default="auto", show_default=True, help="device backend: auto, cpu, cuda, ascend")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="where encoded pools are cached [default: $BGEKIT_CACHE_DIR or ~/.cache/bgekit]/embeddings")
@click.option("--no-cache", is_flag=True, help="do not read or write the embedding cache")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def mine(input_path: str, output_path: str, miner: str, model_path: str | None, corpus: str | None,
         window: str | None, num_negatives: int | None, sampling: str | None, max_score: float | None,
         absolute_margin: float | None, relative_margin: float | None, seed: int | None,
         with_scores: bool | None, mode: str | None, index_type: str | None, extra: tuple[str, ...], fmt: str,
         batch_size: int, query_max_length: int | None, passage_max_length: int | None, device: str,
         cache_dir: str | None, no_cache: bool, as_json: bool) -> None:
    """Mine hard negatives for every row of INPUT into OUTPUT.

    Each row's 'neg' is replaced by passages the miner ranks within the window,
    excluding its positives and passages identical to them or to the query;
    rows left short are filled at random from the pool (and counted).

    \b
    Example:
      bgekit mine --input train.jsonl --output mined.jsonl --model BAAI/bge-m3 --range 10-210
      bgekit mine --input train.jsonl --output mined.jsonl --miner bm25 --corpus pool.jsonl
      bgekit mine --input train.jsonl --output mined.jsonl --model ./m3 --mode hybrid --index HNSW
    """
    from bgekit.commands.progress import step_progress
    from bgekit.mine.retriever import MiningContext
    from bgekit.mine.run import format_summary, mine_file
    from bgekit.mine.settings import parse_range
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar is the one that matters

    params: dict[str, Any] = dict(_parse_param(p) for p in extra)
    given = {"range": list(parse_range(window)) if window else None, "num_negatives": num_negatives,
             "sampling": sampling, "max_score": max_score, "absolute_margin": absolute_margin,
             "relative_margin": relative_margin, "seed": seed, "with_scores": with_scores, "mode": mode,
             "index": index_type}
    params.update({k: v for k, v in given.items() if v is not None})
    _check_params(miner, params)
    if model_path:
        from bgekit.model_paths import resolve_model_path

        model_path = resolve_model_path(model_path)  # a bad reference fails in one line before any reading
    context = MiningContext(model=model_path, device=device, batch_size=batch_size,
                            query_max_length=query_max_length, passage_max_length=passage_max_length,
                            cache_dir=None if no_cache else Path(cache_dir) if cache_dir else default_cache_dir())
    with step_progress("mining", quiet=as_json) as progress:
        summary = mine_file(input_path, output_path, miner, params, context, corpus=corpus, fmt=fmt,
                            progress=progress.advance)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        for line in format_summary(summary):
            click.echo(line)
